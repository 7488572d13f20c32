import { generateKeyPairSync, sign } from 'node:crypto';

import { describe, expect, it } from 'vitest';

import { canonicalJson } from '../../../src/trust/notaryv1/canonical.ts';
import {
  parseTrustRootKey,
  parseTufKey,
  tufKeyId,
  verifySignature,
} from '../../../src/trust/notaryv1/keys.ts';
import { makeKey, publicEntry } from './repo.ts';

describe('canonical JSON (docker/go canonical/json)', () => {
  it('sorts keys by their bytes and drops whitespace', () => {
    expect(canonicalJson({ b: 1, a: [true, null, 'x'], Z: { d: 2, c: 3 } }).toString()).toBe(
      '{"Z":{"c":3,"d":2},"a":[true,null,"x"],"b":1}',
    );
  });

  it('escapes only quotes and backslashes in strings', () => {
    expect(canonicalJson({ s: 'a"b\\c<&>\n' }).toString()).toBe('{"s":"a\\"b\\\\c<&>\n"}');
  });

  it('refuses floating-point numbers as Notary does', () => {
    expect(() => canonicalJson({ n: 1.5 })).toThrow(/not an integer/);
  });
});

describe('TUF keys as Notary stores them', () => {
  // IDs printed by the real notary-server / notary client for these public keys.
  it.each([
    [
      'ed25519',
      'MIQrzfy0OdOUezh1dwSfLj24PaU+GpdjVX2epnKbomk=',
      'b09f341412926eb6a3d7ec61a2050059de4fe3d9d9b3139896307d7620df4375',
    ],
    [
      'ecdsa',
      'MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEw5bLW+IuB899f7tkm33ywpVYX7XmEMNuedPWWT3eNIheGPzZ5j9AYdS06HpD2tQ8TVmmQiA2VNn4BbiBaW27Vw==',
      '156d29f9940307729b6083714159dcbd0c8f7c621bd35094024f70e8860d2357',
    ],
  ])('computes the %s key ID notary computes', (keytype, pub, id) => {
    expect(tufKeyId(keytype, pub)).toBe(id);
    expect(parseTufKey(id, { keytype, keyval: { private: null, public: pub } }).type).toBe(keytype);
  });

  it('refuses a key that carries private material', () => {
    const key = makeKey();
    expect(() =>
      parseTufKey(key.id, { keytype: 'ecdsa', keyval: { private: 'c2VjcmV0', public: key.public } }),
    ).toThrow(/no private key material/);
  });

  it('refuses an unknown key type', () => {
    expect(() => parseTufKey('x', { keytype: 'dsa', keyval: { public: 'AA==' } })).toThrow(
      /expected keytype/,
    );
  });

  it('accepts a signature only with the method of the key family', () => {
    const ec = makeKey('ecdsa');
    const parsed = parseTufKey(ec.id, publicEntry(ec));
    const data = Buffer.from('payload');
    const sig = sign('sha256', data, { key: ec.privateKey, dsaEncoding: 'ieee-p1363' });
    expect(verifySignature(parsed, 'ecdsa', data, sig)).toBe(true);
    expect(verifySignature(parsed, 'rsapss', data, sig)).toBe(false);
    expect(verifySignature(parsed, 'ecdsa', Buffer.from('other'), sig)).toBe(false);
    expect(verifySignature(parsed, 'ecdsa', data, Buffer.alloc(3))).toBe(false);
  });
});

describe('configured trust root keys', () => {
  it('accepts PEM ECDSA and RSA public keys', () => {
    for (const type of ['ec', 'rsa'] as const) {
      const { publicKey } =
        type === 'ec'
          ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
          : generateKeyPairSync('rsa', { modulusLength: 2048 });
      const pem = publicKey.export({ format: 'pem', type: 'spki' }).toString();
      expect(parseTrustRootKey(pem).asymmetricKeyType).toBe(type);
    }
  });

  it("refuses anything else with Connaisseur's message", () => {
    expect(() => parseTrustRootKey('not a key')).toThrow('wrong format, provide a PEM encoded public key');
    const { publicKey } = generateKeyPairSync('ed25519');
    expect(() => parseTrustRootKey(publicKey.export({ format: 'pem', type: 'spki' }).toString())).toThrow(
      /expected an ECDSA or RSA key, found ed25519/,
    );
  });
});
