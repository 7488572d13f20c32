/**
 * Ed25519ph verification (RFC 8032 §5.1, "Ed25519ph" with an empty context). sigstore's Go signer uses
 * it for Ed25519 keys (`signature.LoadDefaultSignerVerifier` → ED25519_PH), so that is what cosign v3
 * writes for an imported Ed25519 key; node's crypto implements only pure Ed25519. The arithmetic is
 * @noble/curves' audited implementation.
 */
import { ed25519ph } from '@noble/curves/ed25519.js';

/** Whether `signature` is an Ed25519ph signature over `message` by the 32-byte `publicKey`. */
export function verifyEd25519ph(publicKey: Buffer, message: Buffer, signature: Buffer): boolean {
  if (publicKey.length !== 32 || signature.length !== 64) return false;
  try {
    // zip215: false is RFC 8032's strict decoding (canonical point encodings, S < L), not ZIP-215's
    // looser consensus rules: an odd encoding is refused rather than accepted.
    return ed25519ph.verify(signature, message, publicKey, { zip215: false });
  } catch {
    // Malformed points throw; they are simply not valid signatures.
    return false;
  }
}
