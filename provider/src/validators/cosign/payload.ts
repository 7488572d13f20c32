/**
 * What a cosign signature says it signs, read through type guards (the payload is attacker-controlled):
 * - the simple-signing payload of legacy signatures (containers/image `docs/containers-signature.5.md`,
 *   cosign `pkg/cosign/payload`): `critical.image.docker-manifest-digest`, `critical.identity.docker-reference`,
 *   `critical.type` = "cosign container image signature";
 * - the in-toto Statement in a cosign v3 bundle's DSSE envelope: `subject[].digest.sha256` and the
 *   predicate type `https://sigstore.dev/cosign/sign/v1` for signatures.
 */
export const SIMPLE_SIGNING_TYPE = 'cosign container image signature';
export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';
export const COSIGN_SIGN_PREDICATE = 'https://sigstore.dev/cosign/sign/v1';

export interface SignedClaim {
  /** `sha256:<hex>` digests the signature vouches for. */
  readonly digests: readonly string[];
  /** The repository the signer named (simple signing only), for explaining copied signatures. */
  readonly dockerReference: string | undefined;
}

const SHA256_HEX = /^[a-f0-9]{64}$/;

export function parseSimpleSigning(payload: Buffer): SignedClaim | undefined {
  const json = parseObject(payload);
  const critical = asObject(json?.['critical']);
  if (critical === undefined || critical['type'] !== SIMPLE_SIGNING_TYPE) return undefined;
  const digest = asObject(critical['image'])?.['docker-manifest-digest'];
  if (typeof digest !== 'string') return undefined;
  const reference = asObject(critical['identity'])?.['docker-reference'];
  return { digests: [digest], dockerReference: typeof reference === 'string' ? reference : undefined };
}

/** An in-toto Statement (v0.1 or v1), with the predicate type it must carry if one is given. */
export function parseStatement(
  payload: Buffer,
  predicateType: string | undefined,
): (SignedClaim & { readonly predicateType: string; readonly predicate: unknown }) | undefined {
  const json = parseObject(payload);
  const type = json?.['predicateType'];
  if (json === undefined || typeof type !== 'string') return undefined;
  if (predicateType !== undefined && type !== predicateType) return undefined;
  const subjects = json['subject'];
  if (!Array.isArray(subjects)) return undefined;
  const digests = subjects
    .map((s) => asObject(asObject(s)?.['digest'])?.['sha256'])
    .filter((d): d is string => typeof d === 'string' && SHA256_HEX.test(d))
    .map((hex) => `sha256:${hex}`);
  return { digests, dockerReference: undefined, predicateType: type, predicate: json['predicate'] };
}

/** The JSON object in `bytes`, or undefined for anything else (invalid JSON, arrays, scalars). */
export function parseObject(bytes: Buffer | string): Record<string, unknown> | undefined {
  try {
    return asObject(JSON.parse(typeof bytes === 'string' ? bytes : bytes.toString('utf8')));
  } catch {
    return undefined;
  }
}

export function asObject(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}
