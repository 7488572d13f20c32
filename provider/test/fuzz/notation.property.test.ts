/**
 * Notary Project signature envelopes as a registry serves them: JWS JSON (`application/jose+json`) and
 * COSE_Sign1 (`application/cose`). `verifyEnvelope` answers with verified claims or throws
 * MalformedEnvelope / SignatureMismatch (which verify.ts maps to NOTATION_ENVELOPE_MALFORMED /
 * NOTATION_SIGNATURE_INVALID), never another exception; `verifySignature` always answers with a verdict.
 * The hostile envelopes are signed with a real key (openssl certificate) wherever that lets them reach
 * the code behind the signature check, and a valid envelope with bytes flipped never verifies with
 * claims other than the signed ones.
 */
import { createPrivateKey, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { rm } from 'node:fs/promises';

import { encode, Tag } from 'cbor-x';
import fc from 'fast-check';
import { afterAll, describe, expect } from 'vitest';

import { selfSignedCert } from '../../../test/harness/pki.ts';
import { makeTempDir } from '../../../test/harness/process.ts';
import {
  COSE_MEDIA_TYPE,
  JWS_MEDIA_TYPE,
  MalformedEnvelope,
  PAYLOAD_MEDIA_TYPE,
  SignatureMismatch,
  verifyEnvelope,
  type VerifiedEnvelope,
} from '../../src/trust/notation/envelope.ts';
import { LEVEL_ACTIONS, verifySignature, type PolicyOptions } from '../../src/trust/notation/verify.ts';
import {
  asyncOutcome,
  expectOneOf,
  HANG_LIMIT_MS,
  hostileJsonText,
  hostileString,
  hostileValue,
  mutatedJson,
  mutatedJsonText,
  property,
  rawBytes,
} from './harness.ts';

const dir = await makeTempDir('fuzz-notation');
afterAll(() => rm(dir, { recursive: true, force: true }));
const signer = await selfSignedCert(dir, 'notation-fuzz', {
  days: 2,
  extensions: ['keyUsage=critical,digitalSignature', 'extendedKeyUsage=codeSigning'],
});
const KEY: KeyObject = createPrivateKey(signer.keyPem);
const CERT = new X509Certificate(signer.certPem);
const DER = CERT.raw;

const TARGET = {
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  digest: `sha256:${'a'.repeat(64)}`,
  size: 1234,
};
const PAYLOAD = { targetArtifact: TARGET };
const SIGNING_TIME = '2026-12-01T00:00:00Z';
const SCHEME = 'io.cncf.notary.signingScheme';

const es256 = (message: Buffer): Buffer => sign('sha256', message, { key: KEY, dsaEncoding: 'ieee-p1363' });
const b64url = (v: unknown): string =>
  Buffer.from(typeof v === 'string' ? v : (JSON.stringify(v) ?? 'null')).toString('base64url');

// ---------------------------------------------------------------------------------------------
// JWS (signature-envelope-jws.md): {payload, protected, header: {x5c}, signature}.

const JWS_PROTECTED = {
  alg: 'ES256',
  cty: PAYLOAD_MEDIA_TYPE,
  crit: [SCHEME],
  [SCHEME]: 'notary.x509',
  'io.cncf.notary.signingTime': SIGNING_TIME,
};
const JWS_HEADER = { x5c: [DER.toString('base64')] };

/** A flattened JWS over base64url `protectedPart` and `payloadPart`, signed ES256 with the fuzz key. */
function jws(
  protectedPart: string,
  payloadPart: string,
  header: unknown = JWS_HEADER,
): Record<string, unknown> {
  const signature = es256(Buffer.from(`${protectedPart}.${payloadPart}`)).toString('base64url');
  return { payload: payloadPart, protected: protectedPart, header, signature };
}

const VALID_JWS = Buffer.from(JSON.stringify(jws(b64url(JWS_PROTECTED), b64url(PAYLOAD))));

const algorithms = fc.constantFrom(
  'none',
  'None',
  'HS256',
  'RS256',
  'ES256',
  'ES512',
  'PS256',
  'EdDSA',
  '',
  'ES256 ',
);
const crits = fc.oneof(
  fc.constantFrom(
    [],
    [SCHEME],
    [SCHEME, 'io.cncf.notary.expiry'],
    ['unknown'],
    [SCHEME, SCHEME],
    'x',
    [1],
    {},
    null,
  ),
  fc.array(fc.oneof(fc.string(), hostileString, fc.constant(SCHEME)), { maxLength: 5 }),
);
/** Protected headers with one field wrong, alg and crit variations, or signed attributes of wrong types. */
const hostileProtected = fc.oneof(
  mutatedJson(JWS_PROTECTED),
  fc
    .record({
      alg: fc.oneof(algorithms, hostileValue),
      crit: crits,
      when: fc.oneof(fc.constant(SIGNING_TIME), hostileValue),
    })
    .map(({ alg, crit, when }) => ({ ...JWS_PROTECTED, alg, crit, 'io.cncf.notary.signingTime': when })),
  fc
    .record({ expiry: hostileValue, crit: crits })
    .map(({ expiry, crit }) => ({ ...JWS_PROTECTED, crit, 'io.cncf.notary.expiry': expiry })),
);
const x5cs = fc.oneof(
  fc.constant(JWS_HEADER.x5c),
  fc.constantFrom(
    [],
    [DER.toString('base64url')],
    [DER.toString('hex')],
    'x5c',
    [[DER.toString('base64')]],
    [1],
    [null],
  ),
  fc.array(fc.oneof(hostileString, hostileValue), { maxLength: 3 }),
  fc.array(
    rawBytes.map((b) => b.toString('base64')),
    { minLength: 1, maxLength: 3 },
  ),
);
const hostileHeader = fc.oneof(
  mutatedJson(JWS_HEADER),
  fc
    .record({ x5c: x5cs, extra: hostileValue })
    .map(({ x5c, extra }) => ({ x5c, 'io.cncf.notary.timestampSignature': extra })),
  hostileValue,
);
const base64urlJunk = fc.oneof(
  fc.string({ unit: fc.constantFrom(...'ABCxyz019-_=+/.'), maxLength: 200 }),
  hostileString,
  rawBytes.map((b) => b.toString('base64url')),
);
const hostilePayloadPart = fc.oneof(
  fc.constant(b64url(PAYLOAD)),
  mutatedJsonText(PAYLOAD).map(b64url),
  hostileJsonText.map(b64url),
  base64urlJunk,
);

/** Structured but wrong JWS documents, most of them validly signed so they get past the signature. */
const hostileJws: fc.Arbitrary<Buffer> = fc
  .oneof(
    fc
      .record({
        protectedPart: fc.oneof(
          { weight: 4, arbitrary: hostileProtected.map(b64url) },
          { weight: 1, arbitrary: hostileJsonText.map(b64url) },
          { weight: 1, arbitrary: base64urlJunk },
        ),
        payloadPart: hostilePayloadPart,
        header: fc.oneof(fc.constant<unknown>(JWS_HEADER), hostileHeader),
      })
      .map(({ protectedPart, payloadPart, header }) =>
        JSON.stringify(jws(protectedPart, payloadPart, header)),
      ),
    mutatedJsonText(JSON.parse(VALID_JWS.toString()) as unknown),
    hostileJsonText,
  )
  .map((text) => Buffer.from(text));

// ---------------------------------------------------------------------------------------------
// COSE_Sign1 (signature-envelope-cose.md, RFC 9052): tag 18 [protected bstr, unprotected map, payload, signature].

const COSE_PROTECTED = new Map<unknown, unknown>([
  [1, -7],
  [2, [SCHEME]],
  [3, PAYLOAD_MEDIA_TYPE],
  [SCHEME, 'notary.x509'],
  ['io.cncf.notary.signingTime', new Date(SIGNING_TIME)],
]);
const COSE_UNPROTECTED = new Map<unknown, unknown>([[33, DER]]);
const PAYLOAD_BYTES = Buffer.from(JSON.stringify(PAYLOAD));

/** A COSE_Sign1 signed ES256 over the RFC 9052 §4.4 Sig_structure with the fuzz key. */
function cose(protectedBytes: Buffer, unprotected: unknown, payload: unknown, tagged: boolean): Buffer {
  const toBeSigned = encode(['Signature1', protectedBytes, Buffer.alloc(0), payload]);
  const sign1 = [protectedBytes, unprotected, payload, es256(toBeSigned)];
  return encode(tagged ? new Tag(sign1, 18) : sign1);
}

const VALID_COSE = cose(encode(COSE_PROTECTED), COSE_UNPROTECTED, PAYLOAD_BYTES, true);

/** CBOR values of the wrong kind: ints up to 64 bits, floats, text, bytes, maps, arrays, tags, dates. */
const cborValue: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom(null, undefined, true, false, 0, -1, 1.5, Number.NaN, -Infinity, 2 ** 53, -(2 ** 63)),
    fc.bigInt({ min: -(2n ** 64n) + 1n, max: 2n ** 64n - 1n }),
    fc.integer(),
    hostileString,
    fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)),
    fc.date({ noInvalidDate: true }),
    fc.array(tie('value'), { maxLength: 5 }),
    fc
      .array(fc.tuple(fc.oneof(fc.integer({ min: -40, max: 40 }), fc.string()), tie('value')), {
        maxLength: 5,
      })
      .map((e) => new Map(e)),
    fc.tuple(fc.nat({ max: 300 }), tie('value')).map(([t, v]) => new Tag(v, t)),
  ),
})).value;

/** Protected headers with one entry replaced by a value of the wrong type (or removed), or junk. */
const hostileCoseProtected: fc.Arbitrary<Buffer> = fc.oneof(
  fc
    .tuple(
      fc.constantFrom(...COSE_PROTECTED.keys(), 'io.cncf.notary.expiry', 'unknown'),
      fc.option(cborValue, { nil: undefined }),
    )
    .map(([key, value]) => {
      const headers = new Map(COSE_PROTECTED);
      if (value === undefined) headers.delete(key);
      else headers.set(key, value);
      return Buffer.from(encode(headers));
    }),
  fc
    .record({
      alg: fc.oneof(fc.constantFrom(-7, -35, -36, -37, -257, 0, 'ES256'), cborValue),
      crit: fc.oneof(crits, cborValue),
    })
    .map(({ alg, crit }) => Buffer.from(encode(new Map([...COSE_PROTECTED, [1, alg], [2, crit]])))),
  cborValue.map((v) => Buffer.from(encode(v))),
  rawBytes,
);
const hostileUnprotected = fc.oneof(
  fc.constant<unknown>(COSE_UNPROTECTED),
  fc.tuple(fc.oneof(cborValue, fc.array(cborValue, { maxLength: 3 }), rawBytes), cborValue).map(
    ([chain, ts]) =>
      new Map<unknown, unknown>([
        [33, chain],
        ['io.cncf.notary.timestampSignature', ts],
      ]),
  ),
  cborValue,
);
const hostileCosePayload = fc.oneof(
  fc.constant<unknown>(PAYLOAD_BYTES),
  mutatedJsonText(PAYLOAD).map((t) => Buffer.from(t)),
  hostileJsonText.map((t) => Buffer.from(t)),
  cborValue,
);

/** Structured but wrong COSE_Sign1 messages: signed with wrong fields, wrong arity, wrong types, raw CBOR. */
const hostileCose: fc.Arbitrary<Buffer> = fc.oneof(
  fc
    .tuple(hostileCoseProtected, hostileUnprotected, hostileCosePayload, fc.boolean())
    .map(([p, u, payload, tagged]) => cose(p, u, payload, tagged)),
  fc
    .tuple(
      fc.array(cborValue, { maxLength: 7 }),
      fc.oneof(fc.constant(18), fc.nat({ max: 100 })),
      fc.boolean(),
    )
    .map(([items, tag, tagged]) => Buffer.from(encode(tagged ? new Tag(items, tag) : items))),
  // Lengths that claim more than there is (2^64-1 items, bytes), and nesting deep enough to overflow.
  fc.constantFrom(
    Buffer.from([0xd2, 0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
    Buffer.from([0xd2, 0x84, 0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
    Buffer.from([0xd2, 0x84, 0x40, 0xbb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
    Buffer.concat([Buffer.alloc(20_000, 0x81), Buffer.from([0x00])]),
    Buffer.concat([Buffer.alloc(20_000, 0xd2), Buffer.from([0x00])]),
  ),
  rawBytes.map((b) => Buffer.concat([Buffer.from([0xd2, 0x84]), b])),
);

/**
 * Found by this suite: a critical-headers value that is a CBOR bignum made the error message's
 * JSON.stringify throw a TypeError. Found reading that fix: a JWS `cty` of `{"toString": 1}` made
 * String() throw one too.
 */
const COSE_BIGINT_CRIT = cose(
  Buffer.from(encode(new Map([...COSE_PROTECTED, [2, 0n]]))),
  COSE_UNPROTECTED,
  PAYLOAD_BYTES,
  true,
);
const JWS_UNPRINTABLE_CTY = Buffer.from(
  JSON.stringify(jws(b64url({ ...JWS_PROTECTED, cty: { toString: 1 } }), b64url(PAYLOAD))),
);

/**
 * Found by the long run (after 12 656 inputs): one bit flipped in the certificate's key algorithm OID
 * (id-ecPublicKey 1.2.840.10045.2.1 → an unknown one) left the certificate readable but reading its
 * publicKey threw a plain Error. The flip is (fraction of the length, xor) in the valid COSE_Sign1.
 */
const SPKI_OID_AT = VALID_COSE.indexOf(CERT.publicKey.export({ format: 'der', type: 'spki' })) + 6;
const SPKI_OID_FLIP: [number, number] = [(SPKI_OID_AT + 0.5) / VALID_COSE.length, 1];

// ---------------------------------------------------------------------------------------------

const mediaTypes = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(JWS_MEDIA_TYPE, COSE_MEDIA_TYPE) },
  { weight: 1, arbitrary: hostileString },
);

/** verifyEnvelope on one input: verified claims, or MalformedEnvelope / SignatureMismatch, in time. */
async function envelopeOutcome(mediaType: string, bytes: Buffer): Promise<VerifiedEnvelope | undefined> {
  const started = performance.now();
  const result = await asyncOutcome(() => verifyEnvelope(mediaType, bytes));
  const elapsed = performance.now() - started;
  expect(elapsed, `one input took ${elapsed.toFixed(0)} ms`).toBeLessThan(HANG_LIMIT_MS);
  if (!result.ok) {
    expectOneOf(result.error, [MalformedEnvelope, SignatureMismatch]);
    return undefined;
  }
  return result.value;
}

/** What a verified envelope vouches for: only the signed claims and the key that signed them. */
function signedClaims(e: VerifiedEnvelope): unknown {
  return {
    target: e.targetArtifact,
    scheme: e.signingScheme,
    time: e.signingTime.getTime(),
    expiry: e.expiry?.getTime(),
    key: e.chain[0]?.publicKey.export({ format: 'der', type: 'spki' }).toString('hex'),
  };
}

const POLICY: PolicyOptions = {
  target: TARGET,
  trusted: [{ name: 'fuzz', cert: CERT, type: 'ca' }],
  actions: LEVEL_ACTIONS.strict,
  now: new Date(),
  tsaRoots: [],
  verifyTimestamp: 'afterCertExpiry',
  fetchRevocation: () => Promise.reject(new Error('no revocation service in the fuzz suite')),
};

describe('Notation signature envelopes (JWS and COSE_Sign1)', () => {
  property(
    'any bytes under either media type are verified claims or a malformed or mismatched envelope',
    'notation verifyEnvelope (raw bytes)',
    fc.tuple(
      mediaTypes,
      fc.oneof(
        rawBytes,
        hostileJsonText.map((t) => Buffer.from(t)),
      ),
    ),
    async ([mediaType, bytes]) => {
      await envelopeOutcome(mediaType, bytes);
    },
    { runs: 300 },
  );

  property(
    'a JWS with wrong types, missing or extra fields, odd alg, crit or x5c is claims or a coded envelope error',
    'notation verifyEnvelope (JWS)',
    hostileJws,
    async (bytes) => {
      const verified = await envelopeOutcome(JWS_MEDIA_TYPE, bytes);
      if (verified !== undefined)
        expect(['notary.x509', 'notary.x509.signingAuthority']).toContain(verified.signingScheme);
    },
    { runs: 300, examples: [JWS_UNPRINTABLE_CTY] },
  );

  property(
    'a COSE_Sign1 of wrong arity, field types, protected headers or huge lengths is claims or a coded envelope error',
    'notation verifyEnvelope (COSE)',
    hostileCose,
    async (bytes) => {
      const verified = await envelopeOutcome(COSE_MEDIA_TYPE, bytes);
      if (verified !== undefined)
        expect(['notary.x509', 'notary.x509.signingAuthority']).toContain(verified.signingScheme);
    },
    { runs: 300, examples: [COSE_BIGINT_CRIT] },
  );

  property(
    'a valid envelope with bytes flipped never verifies with claims other than the signed ones',
    'notation verifyEnvelope (byte flips)',
    fc.tuple(
      fc.constantFrom([JWS_MEDIA_TYPE, VALID_JWS] as const, [COSE_MEDIA_TYPE, VALID_COSE] as const),
      fc.array(
        fc.tuple(
          fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
          fc.integer({ min: 1, max: 255 }),
        ),
        {
          minLength: 1,
          maxLength: 4,
        },
      ),
    ),
    async ([[mediaType, valid], flips]) => {
      const bytes = Buffer.from(valid);
      for (const [at, xor] of flips) {
        const i = Math.floor(at * bytes.length);
        bytes[i] = (bytes[i] as number) ^ xor;
      }
      const original = await verifyEnvelope(mediaType, valid);
      const verified = await envelopeOutcome(mediaType, bytes);
      // Unsigned parts (the certificate's own signature, x5c encoding) may change; the claims may not.
      if (verified !== undefined) expect(signedClaims(verified)).toEqual(signedClaims(original));
    },
    { runs: 300, examples: [[[COSE_MEDIA_TYPE, VALID_COSE], [SPKI_OID_FLIP]]] },
  );

  property(
    'any envelope is a verdict of the strict policy check, never an exception',
    'notation verifySignature',
    fc.oneof(
      fc.tuple(fc.constant(JWS_MEDIA_TYPE), hostileJws),
      fc.tuple(fc.constant(COSE_MEDIA_TYPE), hostileCose),
      fc.tuple(mediaTypes, rawBytes),
    ),
    async ([mediaType, bytes]) => {
      const verdict = await verifySignature(mediaType, bytes, POLICY);
      if (!verdict.ok) expect(verdict.failure.code).toMatch(/^NOTATION_/);
    },
    { runs: 200 },
  );
});
