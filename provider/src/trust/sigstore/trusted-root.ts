/**
 * Sigstore trust material (Fulcio CAs, Rekor and CT log keys, TSAs) as a `TrustedRoot`
 * (protobuf-specs `dev.sigstore.trustroot.v1.TrustedRoot`, media type
 * `application/vnd.dev.sigstore.trustedroot+json;version=0.1`). Sources, in order of preference:
 * - `sigstore.trustedRoot`: a static trusted_root.json for a private Sigstore deployment;
 * - otherwise the public-good root embedded in @sigstore/tuf (its TUF seed), so verification works
 *   offline from the first request.
 * Nothing here touches the network; TUF refreshes (if configured) replace the root in the background.
 */
import { createHash, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { toTrustMaterial, type KeyFinderFunc, type TrustMaterial } from '@sigstore/verify';

const PUBLIC_GOOD_MIRROR = 'https://tuf-repo-cdn.sigstore.dev';
const TRUSTED_ROOT_MEDIA_TYPE_PREFIX = 'application/vnd.dev.sigstore.trustedroot';

export class TrustedRootError extends Error {
  override readonly name = 'TrustedRootError';
}

/** Parses trusted_root.json text; untrusted input enters through this guard only. */
export function parseTrustedRoot(text: string, source: string): TrustedRoot {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new TrustedRootError(`${source} is not JSON: expected a Sigstore trusted_root.json`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new TrustedRootError(`${source} is not a JSON object: expected a Sigstore trusted_root.json`);
  }
  const mediaType = (json as Record<string, unknown>)['mediaType'];
  if (typeof mediaType !== 'string' || !mediaType.startsWith(TRUSTED_ROOT_MEDIA_TYPE_PREFIX)) {
    throw new TrustedRootError(
      `${source} has mediaType ${JSON.stringify(mediaType ?? null)}: expected ${TRUSTED_ROOT_MEDIA_TYPE_PREFIX}+json;version=0.1`,
    );
  }
  try {
    return TrustedRoot.fromJSON(json);
  } catch (err) {
    throw new TrustedRootError(`${source} is not a valid trusted root: ${(err as Error).message}`);
  }
}

export function loadTrustedRootFile(path: string): TrustedRoot {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new TrustedRootError(`cannot read trusted root ${path}: ${(err as Error).message}`);
  }
  return parseTrustedRoot(text, path);
}

/** The public-good trusted root that ships with @sigstore/tuf as its TUF seed target. */
export function embeddedPublicGoodRoot(): TrustedRoot {
  const require = createRequire(import.meta.url);
  const seeds = require('@sigstore/tuf/seeds.json') as Record<
    string,
    { targets?: Record<string, string> } | undefined
  >;
  const encoded = seeds[PUBLIC_GOOD_MIRROR]?.targets?.['trusted_root.json'];
  if (encoded === undefined)
    throw new TrustedRootError('@sigstore/tuf has no embedded public-good trusted root');
  return parseTrustedRoot(
    Buffer.from(encoded, 'base64').toString('utf8'),
    '@sigstore/tuf seed trusted_root.json',
  );
}

/** Parsed certificates and keys per trusted root: parsing them costs more than a verification. */
const materials = new WeakMap<TrustedRoot, TrustMaterial>();

/** Trust material for @sigstore/verify; `keys` resolves a bundle's public-key hint (key-based roots). */
export function trustMaterial(root: TrustedRoot, keys?: KeyFinderFunc): TrustMaterial {
  if (keys !== undefined) return { ...trustMaterial(root), publicKey: keys };
  let material = materials.get(root);
  if (material === undefined) {
    material = toTrustMaterial(root);
    materials.set(root, material);
  }
  return material;
}

/** Connaisseur's per-validator `host.rekorPubkey`, `host.ctLogPubkey`, `host.fulcioCert` (PEM). */
export interface TrustOverrides {
  readonly rekorPubkey?: string | undefined;
  readonly ctLogPubkey?: string | undefined;
  readonly fulcioCert?: string | undefined;
}

/**
 * `base` with the transparency log, CT log or Fulcio CA replaced by the given PEM material, as
 * Connaisseur replaces cosign's TUF-provided keys (reference/connaisseur-config.md §1.2). A log's ID is
 * the SHA-256 of its DER public key, as Rekor and CT logs define it.
 */
export function overrideTrustedRoot(base: TrustedRoot, overrides: TrustOverrides): TrustedRoot {
  const json = TrustedRoot.toJSON(base) as Record<string, unknown>;
  const log = (pem: string, baseUrl: string): unknown => {
    const der = createPublicKey(pem).export({ type: 'spki', format: 'der' });
    return {
      baseUrl,
      hashAlgorithm: 'SHA2_256',
      publicKey: {
        rawBytes: der.toString('base64'),
        keyDetails: 'PKIX_ECDSA_P256_SHA_256',
        validFor: { start: EPOCH },
      },
      logId: { keyId: createHash('sha256').update(der).digest('base64') },
    };
  };
  if (overrides.rekorPubkey !== undefined)
    json['tlogs'] = [log(overrides.rekorPubkey, 'https://rekor.configured')];
  if (overrides.ctLogPubkey !== undefined)
    json['ctlogs'] = [log(overrides.ctLogPubkey, 'https://ctlog.configured')];
  if (overrides.fulcioCert !== undefined) {
    const certificates = pemCertificates(overrides.fulcioCert).map((der) => ({
      rawBytes: der.toString('base64'),
    }));
    if (certificates.length === 0) throw new TrustedRootError('host.fulcioCert holds no PEM certificate');
    json['certificateAuthorities'] = [
      {
        subject: { organization: 'configured', commonName: 'fulcio' },
        uri: 'https://fulcio.configured',
        certChain: { certificates },
        validFor: { start: EPOCH },
      },
    ];
  }
  return TrustedRoot.fromJSON(json);
}

const EPOCH = '1970-01-01T00:00:00Z';

function pemCertificates(pem: string): Buffer[] {
  return [...pem.matchAll(/-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----/g)].map(
    (m) => Buffer.from((m[1] ?? '').replace(/\s+/g, ''), 'base64'),
  );
}
