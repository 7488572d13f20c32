/**
 * cosign signatures as a registry serves them: simple-signing payloads, in-toto statements, legacy
 * `.sig` layers restated as Sigstore bundles (legacy-bundle.ts), and cosign v3 Sigstore bundles. Any
 * signature is a verdict (`Check`), never an exception: one bad signature must not hide a good one, and
 * a signature over the admitted digest by the trusted key is accepted while one over another digest is
 * refused as a digest failure.
 */
import { generateKeyPairSync, sign } from 'node:crypto';

import { dsse } from '@sigstore/core';
import fc from 'fast-check';
import { describe, expect } from 'vitest';

import { fromKeyObject } from '../../src/trust/cosign/index.ts';
import { embeddedPublicGoodRoot } from '../../src/trust/sigstore/index.ts';
import { LegacyBundleError, legacyToBundle } from '../../src/validators/cosign/legacy-bundle.ts';
import {
  COSIGN_SIGN_PREDICATE,
  IN_TOTO_PAYLOAD_TYPE,
  parseSimpleSigning,
  parseStatement,
  SIMPLE_SIGNING_TYPE,
} from '../../src/validators/cosign/payload.ts';
import type { BundleSignature, LegacySignature } from '../../src/validators/cosign/signatures.ts';
import { checkSignature, type CheckOptions, type RootMaterial } from '../../src/validators/cosign/verify.ts';
import {
  hostileJsonText,
  hostileString,
  mutatedJsonText,
  outcome,
  property,
  rawBytes,
  timed,
} from './harness.ts';

const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const KEY_ROOT: RootMaterial = { name: 'release', kind: 'key', key: fromKeyObject(pair.publicKey) };
const KEYLESS_ROOT: RootMaterial = {
  name: 'keyless',
  kind: 'keyless',
  identity: { issuer: 'https://accounts.example', subject: 'signer@example.com' },
};
const hex64 = fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 64, maxLength: 64 });
const digest = hex64.map((h) => `sha256:${h}`);

const options = fc.record({
  digest,
  verifyTlog: fc.boolean(),
  verifySct: fc.boolean(),
  trustedRoot: fc.constant(embeddedPublicGoodRoot),
}) as fc.Arbitrary<CheckOptions>;

function simpleSigning(d: string): Record<string, unknown> {
  return {
    critical: {
      identity: { 'docker-reference': 'registry.test/app' },
      image: { 'docker-manifest-digest': d },
      type: SIMPLE_SIGNING_TYPE,
    },
    optional: null,
  };
}

function statement(d: string): Record<string, unknown> {
  return {
    _type: 'https://in-toto.io/Statement/v1',
    subject: [{ name: 'registry.test/app', digest: { sha256: d.slice('sha256:'.length) } }],
    predicateType: COSIGN_SIGN_PREDICATE,
    predicate: {},
  };
}

const SAMPLE_DIGEST = `sha256:${'a'.repeat(64)}`;
const SAMPLE_REKOR = {
  SignedEntryTimestamp: 'MEUCIQ==',
  Payload: {
    body: Buffer.from(JSON.stringify({ kind: 'hashedrekord', apiVersion: '0.0.1', spec: {} })).toString(
      'base64',
    ),
    integratedTime: 1_700_000_000,
    logIndex: 1,
    logID: 'c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d',
  },
};

function legacy(payload: Buffer, extra: Partial<LegacySignature> = {}): LegacySignature {
  return {
    kind: 'legacy',
    source: 'fuzz',
    payload,
    signature: sign('sha256', payload, pair.privateKey).toString('base64'),
    certificate: undefined,
    chain: undefined,
    rekorBundle: undefined,
    ...extra,
  };
}

/** A cosign v3 bundle: a DSSE envelope over an in-toto statement, signed with the trusted key. */
function bundleJson(payload: Buffer, payloadType = IN_TOTO_PAYLOAD_TYPE): Record<string, unknown> {
  const sig = sign('sha256', dsse.preAuthEncoding(payloadType, payload), pair.privateKey);
  return {
    mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
    verificationMaterial: {
      publicKey: { hint: 'release' },
      tlogEntries: [],
      timestampVerificationData: { rfc3161Timestamps: [] },
    },
    dsseEnvelope: {
      payload: payload.toString('base64'),
      payloadType,
      signatures: [{ sig: sig.toString('base64'), keyid: '' }],
    },
  };
}

const bundle = (bytes: Buffer): BundleSignature => ({ kind: 'bundle', source: 'fuzz', bytes });

const hostilePayload = fc.oneof(
  rawBytes,
  hostileJsonText.map((t) => Buffer.from(t)),
  mutatedJsonText(simpleSigning(SAMPLE_DIGEST)).map((t) => Buffer.from(t)),
  mutatedJsonText(statement(SAMPLE_DIGEST)).map((t) => Buffer.from(t)),
);

/** Legacy signatures: hostile payloads (signed, so they reach the payload parser), certificates, Rekor bundles. */
const hostileLegacy = fc
  .tuple(
    hostilePayload,
    fc.option(
      fc.oneof(hostileString, fc.constant('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----')),
      { nil: undefined },
    ),
    fc.option(fc.oneof(hostileJsonText, mutatedJsonText(SAMPLE_REKOR)), { nil: undefined }),
    fc.option(hostileString, { nil: undefined }),
  )
  .map(([payload, certificate, rekorBundle, signature]) =>
    legacy(payload, { certificate, rekorBundle, ...(signature === undefined ? {} : { signature }) }),
  );

const hostileBundle = fc
  .oneof(
    rawBytes,
    hostileJsonText.map((t) => Buffer.from(t)),
    hostilePayload.map((p) => Buffer.from(JSON.stringify(bundleJson(p)))),
    mutatedJsonText(bundleJson(Buffer.from(JSON.stringify(statement(SAMPLE_DIGEST))))).map((t) =>
      Buffer.from(t),
    ),
  )
  .map(bundle);

function expectVerdict(check: unknown): void {
  expect(check).toEqual(expect.objectContaining({ ok: expect.any(Boolean) as unknown }));
}

describe('cosign payloads, legacy signatures and Sigstore bundles', () => {
  property(
    'any payload is a claim or undefined to both payload parsers, never an exception',
    'cosign payload parsers',
    fc.tuple(hostilePayload, fc.option(hostileString, { nil: undefined })),
    ([payload, predicateType]) => {
      const simple = timed(() => parseSimpleSigning(payload));
      if (simple !== undefined) for (const d of simple.digests) expect(typeof d).toBe('string');
      const st = timed(() => parseStatement(payload, predicateType));
      if (st !== undefined) for (const d of st.digests) expect(d).toMatch(/^sha256:[0-9a-f]{64}$/);
    },
    { runs: 800 },
  );

  property(
    'a legacy signature becomes a Sigstore bundle or a LegacyBundleError, or is refused by the bundle schema',
    'cosign legacyToBundle',
    fc.tuple(hostileLegacy, fc.option(fc.string(), { nil: undefined })),
    ([sig, hint]) => {
      const result = outcome(() => legacyToBundle(sig, hint));
      // bundleFromJSON refuses what the schema does not allow with its own Error (mapped to "malformed").
      if (!result.ok && !(result.error instanceof LegacyBundleError))
        expect(result.error).toBeInstanceOf(Error);
      if (!result.ok) expect((result.error as Error).constructor).not.toBe(RangeError);
    },
    { runs: 500 },
  );

  property(
    'any legacy signature or bundle is a verdict for a key or a keyless root, never an exception',
    'cosign checkSignature',
    fc.tuple(fc.oneof(hostileLegacy, hostileBundle), fc.constantFrom(KEY_ROOT, KEYLESS_ROOT), options),
    ([sig, root, opts]) => {
      expectVerdict(timed(() => checkSignature(sig, root, opts)));
    },
    { runs: 500 },
  );

  property(
    'a signature by the trusted key counts exactly when it names the admitted digest',
    'cosign checkSignature (correct answers)',
    fc.tuple(digest, fc.boolean(), fc.boolean()),
    ([signed, sameDigest, asBundle]) => {
      const admitted = sameDigest ? signed : `sha256:${'f'.repeat(64)}`;
      const sig = asBundle
        ? bundle(Buffer.from(JSON.stringify(bundleJson(Buffer.from(JSON.stringify(statement(signed)))))))
        : legacy(Buffer.from(JSON.stringify(simpleSigning(signed))));
      const check = checkSignature(sig, KEY_ROOT, {
        digest: admitted,
        verifyTlog: false,
        verifySct: false,
        trustedRoot: embeddedPublicGoodRoot,
      });
      if (signed === admitted) expect(check).toEqual({ ok: true, ...(asBundle ? { predicate: {} } : {}) });
      else expect(check).toEqual(expect.objectContaining({ ok: false, failure: 'digest' }));
    },
    { runs: 200 },
  );
});
