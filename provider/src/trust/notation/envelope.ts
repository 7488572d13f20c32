/**
 * Notary Project signature envelopes (notaryproject/specifications `signature-envelope-jws.md` and
 * `signature-envelope-cose.md`): a JWS JSON serialisation (`application/jose+json`) read with `jose`, or a
 * COSE_Sign1 (`application/cose`, RFC 9052) decoded with `cbor-x` and verified with node's crypto over
 * the RFC 9052 §4.4 Sig_structure. Both yield the same fields; only a verified envelope is returned.
 */
import { constants, verify as verifySignature, X509Certificate } from 'node:crypto';
import { inspect } from 'node:util';
import { Decoder, encode, Tag } from 'cbor-x';
import { flattenedVerify, errors as joseErrors, type FlattenedJWS } from 'jose';

import { COSE_MEDIA_TYPE, JWS_MEDIA_TYPE } from './media-types.ts';
export { COSE_MEDIA_TYPE, JWS_MEDIA_TYPE, SIGNATURE_ARTIFACT_TYPE } from './media-types.ts';
/** The `cty` / COSE content type of the signed payload (signature-specification.md "Payload"). */
export const PAYLOAD_MEDIA_TYPE = 'application/vnd.cncf.notary.payload.v1+json';

export type SigningScheme = 'notary.x509' | 'notary.x509.signingAuthority';

/** The signed claims of an envelope whose signature verified under its leaf certificate's key. */
export interface VerifiedEnvelope {
  readonly format: 'jws' | 'cose';
  readonly targetArtifact: { readonly mediaType: string; readonly digest: string; readonly size: number };
  readonly signingScheme: SigningScheme;
  readonly signingTime: Date;
  /** `io.cncf.notary.expiry`, when the signer set one. */
  readonly expiry: Date | undefined;
  /** x5c / x5chain: the signing certificate first, then its issuers. */
  readonly chain: readonly X509Certificate[];
  /** The RFC 3161 TimeStampToken over the signature value (unsigned attribute), when present. */
  readonly timestampToken: Buffer | undefined;
  /** The signature value, the message a timestamp countersigns. */
  readonly signature: Buffer;
}

/** The envelope is not one the specification allows: unreadable, missing fields, unknown critical headers. */
export class MalformedEnvelope extends Error {}
/** The envelope is well formed but its signature does not verify under its own signing certificate. */
export class SignatureMismatch extends Error {}

const SIGNING_SCHEMES: ReadonlySet<string> = new Set(['notary.x509', 'notary.x509.signingAuthority']);
/** Extended attributes the verifier knows (signature-specification.md "Signed attributes"). */
const KNOWN_CRITICAL: readonly string[] = [
  'io.cncf.notary.signingScheme',
  'io.cncf.notary.expiry',
  'io.cncf.notary.authenticSigningTime',
  'io.cncf.notary.verificationPlugin',
  'io.cncf.notary.verificationPluginMinVersion',
];
/** signature-specification.md "Algorithm Selection": RSASSA-PSS and ECDSA only. */
const JWS_ALGORITHMS = ['PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512'];
/** COSE algorithm ids (IANA COSE Algorithms) → hash, and whether RSASSA-PSS. */
const COSE_ALGORITHMS: ReadonlyMap<number, { hash: string; pss: boolean; hashBytes: number }> = new Map([
  [-37, { hash: 'sha256', pss: true, hashBytes: 32 }],
  [-38, { hash: 'sha384', pss: true, hashBytes: 48 }],
  [-39, { hash: 'sha512', pss: true, hashBytes: 64 }],
  [-7, { hash: 'sha256', pss: false, hashBytes: 32 }],
  [-35, { hash: 'sha384', pss: false, hashBytes: 48 }],
  [-36, { hash: 'sha512', pss: false, hashBytes: 64 }],
]);
const COSE_SIGN1_TAG = 18;
const COSE_HEADER = { alg: 1, crit: 2, contentType: 3, x5chain: 33 } as const;

export async function verifyEnvelope(mediaType: string, bytes: Buffer): Promise<VerifiedEnvelope> {
  if (mediaType === JWS_MEDIA_TYPE) return verifyJws(bytes);
  if (mediaType === COSE_MEDIA_TYPE) return verifyCose(bytes);
  throw new MalformedEnvelope(
    `expected an envelope of media type ${JWS_MEDIA_TYPE} or ${COSE_MEDIA_TYPE}, found ${mediaType}`,
  );
}

async function verifyJws(bytes: Buffer): Promise<VerifiedEnvelope> {
  const jws = parseJson(bytes);
  const header = jws['header'];
  if (!isRecord(header) || !Array.isArray(header['x5c']) || header['x5c'].length === 0)
    throw new MalformedEnvelope('the JWS unprotected header has no x5c certificate chain');
  const chain = header['x5c'].map((c) => certificate(typeof c === 'string' ? Buffer.from(c, 'base64') : c));
  const leaf = chain[0] as X509Certificate;
  let result;
  try {
    result = await flattenedVerify(jws as unknown as FlattenedJWS, leaf.publicKey, {
      algorithms: JWS_ALGORITHMS,
      crit: Object.fromEntries(KNOWN_CRITICAL.map((k) => [k, true])),
    });
  } catch (err) {
    if (err instanceof joseErrors.JWSSignatureVerificationFailed)
      throw new SignatureMismatch('the JWS signature does not verify under the signing certificate');
    throw new MalformedEnvelope(`unreadable JWS: ${(err as Error).message}`);
  }
  const p = result.protectedHeader as Record<string, unknown>;
  if (p['cty'] !== PAYLOAD_MEDIA_TYPE)
    throw new MalformedEnvelope(`expected cty ${PAYLOAD_MEDIA_TYPE}, found ${shown(p['cty'])}`);
  const timestamp = header['io.cncf.notary.timestampSignature'];
  return {
    format: 'jws',
    targetArtifact: targetArtifact(Buffer.from(result.payload)),
    ...signedAttributes(
      p['io.cncf.notary.signingScheme'],
      p['io.cncf.notary.signingTime'] ?? p['io.cncf.notary.authenticSigningTime'],
      p['io.cncf.notary.expiry'],
      p['crit'],
    ),
    chain,
    timestampToken: typeof timestamp === 'string' ? Buffer.from(timestamp, 'base64') : undefined,
    signature: Buffer.from(String(jws['signature']), 'base64url'),
  };
}

function verifyCose(bytes: Buffer): VerifiedEnvelope {
  const decoder = new Decoder({ mapsAsObjects: false });
  let sign1: unknown;
  try {
    sign1 = decoder.decode(bytes);
  } catch (err) {
    throw new MalformedEnvelope(`unreadable CBOR: ${(err as Error).message}`);
  }
  const value: unknown =
    sign1 instanceof Tag && sign1.tag === COSE_SIGN1_TAG ? (sign1.value as unknown) : sign1;
  if (!Array.isArray(value) || value.length !== 4)
    throw new MalformedEnvelope('expected a COSE_Sign1 [protected, unprotected, payload, signature]');
  const [protectedBytes, unprotected, payload, signature] = value as unknown[];
  if (!isBytes(protectedBytes) || !(unprotected instanceof Map) || !isBytes(payload) || !isBytes(signature))
    throw new MalformedEnvelope('a COSE_Sign1 field has the wrong type');
  let headers: unknown;
  try {
    headers = decoder.decode(protectedBytes);
  } catch (err) {
    throw new MalformedEnvelope(`unreadable COSE protected header: ${(err as Error).message}`);
  }
  if (!(headers instanceof Map)) throw new MalformedEnvelope('the COSE protected header is not a map');
  const protectedHeaders = headers as Map<unknown, unknown>;
  const unprotectedHeaders = unprotected as Map<unknown, unknown>;
  const alg = COSE_ALGORITHMS.get(protectedHeaders.get(COSE_HEADER.alg) as number);
  if (alg === undefined)
    throw new MalformedEnvelope(`unsupported COSE algorithm ${shown(protectedHeaders.get(COSE_HEADER.alg))}`);
  const crit: unknown = protectedHeaders.get(COSE_HEADER.crit);
  if (
    !Array.isArray(crit) ||
    crit.some(
      (k: unknown) => typeof k !== 'string' || !KNOWN_CRITICAL.includes(k) || !protectedHeaders.has(k),
    )
  )
    throw new MalformedEnvelope(`unknown or absent critical COSE headers ${shown(crit)}`);
  if (protectedHeaders.get(COSE_HEADER.contentType) !== PAYLOAD_MEDIA_TYPE)
    throw new MalformedEnvelope(`expected content type ${PAYLOAD_MEDIA_TYPE}`);
  const x5chain: unknown = unprotectedHeaders.get(COSE_HEADER.x5chain);
  const ders: unknown[] = isBytes(x5chain) ? [x5chain] : Array.isArray(x5chain) ? (x5chain as unknown[]) : [];
  if (ders.length === 0 || !ders.every(isBytes))
    throw new MalformedEnvelope('the COSE unprotected header has no x5chain certificate chain');
  const chain = ders.map((d) => certificate(d));
  // RFC 9052 §4.4: Sig_structure = ["Signature1", body_protected, external_aad, payload].
  const toBeSigned = encode(['Signature1', protectedBytes, Buffer.alloc(0), payload]);
  const key = (chain[0] as X509Certificate).publicKey;
  const ok = verifySignature(
    alg.hash,
    toBeSigned,
    alg.pss
      ? { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: alg.hashBytes }
      : { key, dsaEncoding: 'ieee-p1363' },
    signature,
  );
  if (!ok) throw new SignatureMismatch('the COSE signature does not verify under the signing certificate');
  const timestamp: unknown = unprotectedHeaders.get('io.cncf.notary.timestampSignature');
  return {
    format: 'cose',
    targetArtifact: targetArtifact(Buffer.from(payload)),
    ...signedAttributes(
      protectedHeaders.get('io.cncf.notary.signingScheme'),
      protectedHeaders.get('io.cncf.notary.signingTime') ??
        protectedHeaders.get('io.cncf.notary.authenticSigningTime'),
      protectedHeaders.get('io.cncf.notary.expiry'),
      crit,
    ),
    chain,
    timestampToken: isBytes(timestamp) ? Buffer.from(timestamp) : undefined,
    signature: Buffer.from(signature),
  };
}

/** The scheme must be a critical header (signature-specification.md); times are RFC 3339 or CBOR tag 1. */
function signedAttributes(
  scheme: unknown,
  signingTime: unknown,
  expiry: unknown,
  crit: unknown,
): Pick<VerifiedEnvelope, 'signingScheme' | 'signingTime' | 'expiry'> {
  if (typeof scheme !== 'string' || !SIGNING_SCHEMES.has(scheme))
    throw new MalformedEnvelope(
      `expected signing scheme notary.x509 or notary.x509.signingAuthority, found ${shown(scheme)}`,
    );
  if (!Array.isArray(crit) || !crit.includes('io.cncf.notary.signingScheme'))
    throw new MalformedEnvelope('the signing scheme is not marked critical');
  if (expiry !== undefined && !crit.includes('io.cncf.notary.expiry'))
    throw new MalformedEnvelope('the expiry is not marked critical');
  return {
    signingScheme: scheme as SigningScheme,
    signingTime: time(signingTime, 'signing time'),
    expiry: expiry === undefined ? undefined : time(expiry, 'expiry'),
  };
}

function time(value: unknown, what: string): Date {
  const date = value instanceof Date ? value : typeof value === 'string' ? new Date(value) : undefined;
  if (date === undefined || Number.isNaN(date.getTime())) throw new MalformedEnvelope(`unreadable ${what}`);
  return date;
}

/** signature-specification.md "Payload": `{"targetArtifact": <OCI descriptor>}`. */
function targetArtifact(payload: Buffer): VerifiedEnvelope['targetArtifact'] {
  const target = parseJson(payload)['targetArtifact'];
  if (
    !isRecord(target) ||
    typeof target['mediaType'] !== 'string' ||
    typeof target['digest'] !== 'string' ||
    typeof target['size'] !== 'number'
  )
    throw new MalformedEnvelope('the payload has no targetArtifact {mediaType, digest, size}');
  return { mediaType: target['mediaType'], digest: target['digest'], size: target['size'] };
}

function certificate(der: unknown): X509Certificate {
  try {
    if (!isBytes(der)) throw new Error('not DER bytes');
    const cert = new X509Certificate(Buffer.from(der));
    // X509Certificate parses a key it cannot decode (an unknown algorithm OID) and throws only when
    // publicKey is read: read it here so such a chain is malformed, not an exception of the verifier.
    void cert.publicKey;
    return cert;
  } catch (err) {
    throw new MalformedEnvelope(`unreadable certificate in the chain: ${(err as Error).message}`);
  }
}

function parseJson(bytes: Buffer): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new MalformedEnvelope(`unreadable JSON: ${(err as Error).message}`);
  }
  if (!isRecord(value)) throw new MalformedEnvelope('expected a JSON object');
  return value;
}

/**
 * A header value as an error message shows it. Headers are attacker-chosen: JSON.stringify throws on a
 * CBOR bignum and String() on `{"toString": 1}`, so they are inspected, never stringified.
 */
function shown(value: unknown): string {
  return inspect(value, { depth: 2, breakLength: Infinity, maxArrayLength: 8, maxStringLength: 100 }).slice(
    0,
    300,
  );
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isBytes(v: unknown): v is Uint8Array {
  return v instanceof Uint8Array;
}
