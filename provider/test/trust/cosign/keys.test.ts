import { constants, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { KeyFormatError, parsePublicKey } from '../../../src/trust/cosign/index.ts';

const data = Buffer.from('{"critical":{"type":"cosign container image signature"}}');

function pem(key: KeyObject): string {
  return key.export({ type: 'spki', format: 'pem' }).toString();
}

describe('cosign public keys', () => {
  it.each([
    ['P-256', 'sha256', 'ecdsa-p256'],
    ['P-384', 'sha384', 'ecdsa-p384'],
    ['P-521', 'sha512', 'ecdsa-p521'],
    ['P-384', 'sha256', 'ecdsa-p384'],
  ] as const)('verifies ECDSA %s signatures over %s', (namedCurve, hash, algorithm) => {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve });
    const key = parsePublicKey(pem(publicKey));
    expect(key.algorithm).toBe(algorithm);
    expect(key.verify(data, sign(hash, data, privateKey))).toBe(true);
    expect(key.verify(Buffer.from('other'), sign(hash, data, privateKey))).toBe(false);
  });

  it('verifies RSA PKCS#1 v1.5 and PSS signatures under one RSA key', () => {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const key = parsePublicKey(pem(publicKey));
    expect(key.verify(data, sign('sha256', data, privateKey))).toBe(true);
    const pss = sign('sha256', data, {
      key: privateKey,
      padding: constants.RSA_PKCS1_PSS_PADDING,
      saltLength: 32,
    });
    expect(key.verify(data, pss)).toBe(true);
    expect(key.verify(Buffer.from('other'), pss)).toBe(false);
  });

  it('accepts only PSS under an RSASSA-PSS key', () => {
    const { publicKey, privateKey } = generateKeyPairSync('rsa-pss', { modulusLength: 2048 });
    const key = parsePublicKey(pem(publicKey));
    expect(key.algorithm).toBe('rsa-pss');
    const pss = sign('sha256', data, {
      key: privateKey,
      padding: constants.RSA_PKCS1_PSS_PADDING,
      saltLength: 32,
    });
    expect(key.verify(data, pss)).toBe(true);
  });

  it('verifies Ed25519 signatures', () => {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const key = parsePublicKey(pem(publicKey));
    expect(key.algorithm).toBe('ed25519');
    expect(key.verify(data, sign(null, data, privateKey))).toBe(true);
    expect(key.verify(Buffer.from('other'), sign(null, data, privateKey))).toBe(false);
  });

  it('treats malformed signatures as invalid instead of throwing', () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    expect(parsePublicKey(pem(publicKey)).verify(data, Buffer.from('not DER'))).toBe(false);
  });

  it('refuses a private key, a KMS reference and garbage', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const privatePem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    expect(() => parsePublicKey(privatePem)).toThrow(KeyFormatError);
    expect(() => parsePublicKey('k8s://ns/secret')).toThrow(/KMS references are not supported/);
    expect(() => parsePublicKey('-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----')).toThrow(
      /not a valid PEM public key/,
    );
  });

  it('refuses curves and key types cosign does not sign with', () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'secp256k1' });
    expect(() => parsePublicKey(pem(publicKey))).toThrow(/unsupported ECDSA curve secp256k1/);
    const x = generateKeyPairSync('x25519').publicKey;
    expect(() => parsePublicKey(pem(x))).toThrow(/unsupported key type x25519/);
  });
});
