import { generateKeyPairSync, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { verifyEd25519ph } from '../../../src/trust/cosign/ed25519ph.ts';

// RFC 8032 §7.3, test vector "TEST abc" for Ed25519ph.
const publicKey = Buffer.from('ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf', 'hex');
const message = Buffer.from('abc');
const signature = Buffer.from(
  '98a70222f0b8121aa9d30f813d683f809e462b469c7ff87639499bb94e6dae41' +
    '31f85042463c2a355a2003d062adf5aaa10b8c61e636062aaad11c2a26083406',
  'hex',
);

describe('Ed25519ph', () => {
  it('verifies the RFC 8032 test vector', () => {
    expect(verifyEd25519ph(publicKey, message, signature)).toBe(true);
  });

  it('rejects another message, a flipped signature bit and S ≥ L', () => {
    expect(verifyEd25519ph(publicKey, Buffer.from('abd'), signature)).toBe(false);
    const flipped = Buffer.from(signature);
    flipped[5] = (flipped[5] ?? 0) ^ 1;
    expect(verifyEd25519ph(publicKey, message, flipped)).toBe(false);
    const bigS = Buffer.concat([signature.subarray(0, 32), Buffer.alloc(32, 0xff)]);
    expect(verifyEd25519ph(publicKey, message, bigS)).toBe(false);
  });

  it('does not accept a pure Ed25519 signature as Ed25519ph', () => {
    const pair = generateKeyPairSync('ed25519');
    const raw = pair.publicKey.export({ type: 'spki', format: 'der' }).subarray(-32);
    expect(verifyEd25519ph(raw, message, sign(null, message, pair.privateKey))).toBe(false);
  });

  it('refuses keys and signatures of the wrong length', () => {
    expect(verifyEd25519ph(publicKey.subarray(1), message, signature)).toBe(false);
    expect(verifyEd25519ph(publicKey, message, signature.subarray(1))).toBe(false);
  });
});
