/** One signature against one trust root: the failure names the furthest check it reached. */
import { generateKeyPairSync, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { fromKeyObject } from '../../../src/trust/cosign/index.ts';
import { embeddedPublicGoodRoot } from '../../../src/trust/sigstore/index.ts';
import { parseSimpleSigning, parseStatement } from '../../../src/validators/cosign/payload.ts';
import type { LegacySignature } from '../../../src/validators/cosign/signatures.ts';
import {
  checkSignature,
  type CheckOptions,
  type RootMaterial,
} from '../../../src/validators/cosign/verify.ts';

const DIGEST = `sha256:${'a'.repeat(64)}`;
const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const root: RootMaterial = { name: 'release', kind: 'key', key: fromKeyObject(pair.publicKey) };
const offline: CheckOptions = {
  digest: DIGEST,
  verifyTlog: false,
  verifySct: true,
  trustedRoot: embeddedPublicGoodRoot,
};

function simpleSigning(digest: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      critical: {
        identity: { 'docker-reference': 'registry.test/app' },
        image: { 'docker-manifest-digest': digest },
        type: 'cosign container image signature',
      },
      optional: null,
    }),
  );
}

function legacy(payload: Buffer, signer = pair.privateKey): LegacySignature {
  return {
    kind: 'legacy',
    source: 'test',
    payload,
    signature: sign('sha256', payload, signer).toString('base64'),
    certificate: undefined,
    chain: undefined,
    rekorBundle: undefined,
  };
}

const outcome = (sig: LegacySignature, opts = offline): string => {
  const check = checkSignature(sig, root, opts);
  return check.ok ? 'ok' : check.failure;
};

describe('checkSignature (legacy, key)', () => {
  it('accepts a signature over a payload for the admitted digest', () => {
    expect(outcome(legacy(simpleSigning(DIGEST)))).toBe('ok');
  });

  it('names the signature when another key signed', () => {
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    expect(outcome(legacy(simpleSigning(DIGEST), other))).toBe('signature');
  });

  it('names the digest when the payload is for another digest, and says which', () => {
    const check = checkSignature(legacy(simpleSigning(`sha256:${'b'.repeat(64)}`)), root, offline);
    expect(check).toMatchObject({
      ok: false,
      failure: 'digest',
      claim: { digests: [`sha256:${'b'.repeat(64)}`] },
    });
  });

  it('names a validly signed payload that is not simple signing as malformed', () => {
    expect(outcome(legacy(Buffer.from('{"hello":"world"}')))).toBe('malformed');
  });

  it('needs a log entry when verifyInTransparencyLog is on', () => {
    expect(outcome(legacy(simpleSigning(DIGEST)), { ...offline, verifyTlog: true })).toBe('tlog-missing');
  });

  it('calls an unparseable Rekor bundle malformed rather than throwing', () => {
    const sig = { ...legacy(simpleSigning(DIGEST)), rekorBundle: '{"SignedEntryTimestamp":1}' };
    expect(outcome(sig, { ...offline, verifyTlog: true })).toBe('malformed');
  });
});

describe('payload guards', () => {
  it('reads the digest and reference of a simple-signing payload, and nothing else', () => {
    expect(parseSimpleSigning(simpleSigning(DIGEST))).toEqual({
      digests: [DIGEST],
      dockerReference: 'registry.test/app',
    });
    expect(parseSimpleSigning(Buffer.from('[]'))).toBeUndefined();
    expect(parseSimpleSigning(Buffer.from('{"critical":{"type":"other"}}'))).toBeUndefined();
    expect(parseSimpleSigning(Buffer.from('not json'))).toBeUndefined();
  });

  it('reads sha256 subjects of an in-toto statement of the required predicate type', () => {
    const statement = Buffer.from(
      JSON.stringify({
        _type: 'https://in-toto.io/Statement/v1',
        subject: [
          { digest: { sha256: 'a'.repeat(64) } },
          { digest: { sha512: 'b' } },
          { digest: { sha256: 'short' } },
        ],
        predicateType: 'https://slsa.dev/provenance/v1',
        predicate: { x: 1 },
      }),
    );
    expect(parseStatement(statement, 'https://slsa.dev/provenance/v1')).toMatchObject({
      digests: [DIGEST],
      predicate: { x: 1 },
    });
    expect(parseStatement(statement, 'https://sigstore.dev/cosign/sign/v1')).toBeUndefined();
  });
});
