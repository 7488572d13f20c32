/**
 * TUF keys as Notary v1 stores them (notary `tuf/data/keys.go`) and signature checks
 * (`tuf/signed/verifiers.go`).
 *
 * - `ecdsa` / `rsa`: `keyval.public` is base64 of a DER SubjectPublicKeyInfo.
 * - `ecdsa-x509` / `rsa-x509`: base64 of a PEM certificate; the public key is the certificate's.
 * - `ed25519`: base64 of the raw 32-byte key (notary-server's local signing service uses it).
 *
 * A key's ID is sha256 over the canonical JSON of the key *as stored* (`TUFKey.ID()`), so a root
 * certificate and the public key inside it have different IDs.
 */
import { createHash, createPublicKey, verify, X509Certificate, constants, type KeyObject } from 'node:crypto';

import { preview } from '../../types/preview.ts';
import { canonicalJson } from './canonical.ts';

export type KeyType = 'ecdsa' | 'ecdsa-x509' | 'rsa' | 'rsa-x509' | 'ed25519';
const KEY_TYPES: ReadonlySet<string> = new Set<KeyType>([
  'ecdsa',
  'ecdsa-x509',
  'rsa',
  'rsa-x509',
  'ed25519',
]);

export interface TufKey {
  readonly id: string;
  readonly type: KeyType;
  readonly publicKey: KeyObject;
  /** The certificate of an `*-x509` key. */
  readonly certificate: X509Certificate | undefined;
}

export class KeyFormatError extends Error {
  override readonly name = 'KeyFormatError';
}

/** The ID Notary gives a key: sha256 (hex) of `{"keytype":…,"keyval":{"private":null,"public":…}}`. */
export function tufKeyId(keytype: string, publicB64: string): string {
  const json = canonicalJson({ keytype, keyval: { private: null, public: publicB64 } });
  return createHash('sha256').update(json).digest('hex');
}

/** Parses one entry of a `keys` map; `id` is the map key, which must be the key's real ID. */
export function parseTufKey(id: string, raw: unknown): TufKey {
  const entry = raw as { keytype?: unknown; keyval?: { public?: unknown; private?: unknown } } | null;
  const keytype = entry?.keytype;
  const publicB64 = entry?.keyval?.public;
  if (typeof keytype !== 'string' || !KEY_TYPES.has(keytype))
    throw new KeyFormatError(
      `key ${id}: expected keytype one of ${[...KEY_TYPES].join(', ')}, found ${preview(keytype ?? null)}`,
    );
  if (typeof publicB64 !== 'string' || publicB64 === '')
    throw new KeyFormatError(`key ${id}: expected a base64 public key, found none`);
  if (entry?.keyval?.private !== null && entry?.keyval?.private !== undefined)
    throw new KeyFormatError(`key ${id}: expected no private key material in public metadata`);
  const computed = tufKeyId(keytype, publicB64);
  if (computed !== id) throw new KeyFormatError(`key ${id}: expected its ID to be ${computed}`);
  const type = keytype as KeyType;
  try {
    const { publicKey, certificate } = publicKeyOf(type, Buffer.from(publicB64, 'base64'));
    return { id, type, publicKey, certificate };
  } catch (err) {
    throw new KeyFormatError(`key ${id}: unreadable ${type} public key`, { cause: err });
  }
}

function publicKeyOf(
  type: KeyType,
  bytes: Buffer,
): { publicKey: KeyObject; certificate: X509Certificate | undefined } {
  switch (type) {
    case 'ecdsa':
    case 'rsa':
      return {
        publicKey: createPublicKey({ key: bytes, format: 'der', type: 'spki' }),
        certificate: undefined,
      };
    case 'ecdsa-x509':
    case 'rsa-x509': {
      const certificate = new X509Certificate(bytes);
      return { publicKey: certificate.publicKey, certificate };
    }
    case 'ed25519':
      return {
        publicKey: createPublicKey({
          key: { kty: 'OKP', crv: 'Ed25519', x: bytes.toString('base64url') },
          format: 'jwk',
        }),
        certificate: undefined,
      };
  }
}

/** DER SubjectPublicKeyInfo: two keys are the same key exactly when these bytes are equal. */
export function spki(key: KeyObject): Buffer {
  return key.export({ format: 'der', type: 'spki' });
}

/**
 * Checks one signature. Notary signs sha256 of the canonical `signed` bytes for every method
 * (`tuf/signed/verifiers.go`): ECDSA as fixed-size r||s, RSA-PSS with salt length = hash length.
 */
export function verifySignature(key: TufKey, method: string, data: Buffer, signature: Buffer): boolean {
  const family = key.type.replace('-x509', '');
  try {
    switch (method) {
      case 'ecdsa':
        return (
          family === 'ecdsa' &&
          verify('sha256', data, { key: key.publicKey, dsaEncoding: 'ieee-p1363' }, signature)
        );
      case 'rsapss':
        return (
          family === 'rsa' &&
          verify(
            'sha256',
            data,
            { key: key.publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 },
            signature,
          )
        );
      case 'rsapkcs1v15':
        return (
          family === 'rsa' &&
          verify('sha256', data, { key: key.publicKey, padding: constants.RSA_PKCS1_PADDING }, signature)
        );
      case 'eddsa':
        return family === 'ed25519' && verify(null, data, key.publicKey, signature);
      default:
        return false;
    }
  } catch {
    // A malformed signature (wrong length, bad encoding) is simply not a valid one.
    return false;
  }
}

/** Connaisseur's rule for `trustRoots[].key`: a PEM public key, ECDSA or RSA. */
export function parseTrustRootKey(pem: string): KeyObject {
  const text = pem.trim();
  if (!text.startsWith('-----BEGIN PUBLIC KEY-----') || !text.endsWith('-----END PUBLIC KEY-----'))
    throw new TypeError('wrong format, provide a PEM encoded public key');
  const key = createPublicKey(text);
  if (key.asymmetricKeyType !== 'ec' && key.asymmetricKeyType !== 'rsa')
    throw new TypeError(`expected an ECDSA or RSA key, found ${String(key.asymmetricKeyType)}`);
  return key;
}
