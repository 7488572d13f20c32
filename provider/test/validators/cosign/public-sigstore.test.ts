/**
 * Real public Sigstore data (shared/fixtures/sigstore, see its README): every bundle case gives exactly
 * the outcome cases.json lists against the public-good trusted_root.json, offline; the legacy `.sig`
 * signature passes, and the edits containers/image's tests make to it are each rejected.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleFromJSON } from '@sigstore/bundle';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { describe, expect, it } from 'vitest';
import { loadTrustedRootFile } from '../../../src/trust/sigstore/index.ts';
import { checkAttestation } from '../../../src/validators/cosign/attestations.ts';
import type { LegacySignature } from '../../../src/validators/cosign/signatures.ts';
import {
  checkArtifactBundle,
  checkSignature,
  type CheckOptions,
  type Failure,
  type RootMaterial,
} from '../../../src/validators/cosign/verify.ts';

const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const FIXTURES = path.resolve(PROJECT_ROOT, '../shared/fixtures/sigstore');
const fixture = (p: string): Buffer => readFileSync(path.join(FIXTURES, p));

interface BundleCase {
  name: string;
  expected: 'pass' | 'fail';
  bundle: string;
  artifact: string | null;
  artifactDigest: string;
  identity: string;
  issuer: string;
  trustedRoot: string;
}
interface LegacyCase {
  name: string;
  expected: 'pass';
  manifestDigest: string;
  extracted: Record<string, string>;
  identity: string;
  issuer: string;
  trustedRoot: string;
}
const cases = JSON.parse(fixture('cases.json').toString('utf8')) as {
  bundleCases: BundleCase[];
  cosignLegacyCases: LegacyCase[];
};

const publicGood = loadTrustedRootFile(path.join(FIXTURES, 'trust/public-good/trusted_root.json'));

function keyless(subject: string, issuer: string): Extract<RootMaterial, { kind: 'keyless' }> {
  return { name: 'public', kind: 'keyless', identity: { subject: subject.trim(), issuer: issuer.trim() } };
}

/**
 * The check each failing case must fail, from its one defect (fixtures/sigstore/README.md "Must fail"):
 * a case failing for another reason would hide a check that no longer works.
 */
const EXPECTED_FAILURE: Readonly<Record<string, readonly [Failure, RegExp]>> = {
  'happy-path-v0.3+wrong-identity': ['identity', /expected subject/],
  'happy-path-v0.3+wrong-issuer': ['identity', /expected subject/],
  'wrong-material_fail': ['signature', /signature verification failed/],
  // The signature no longer matches the one in the log entry, which is checked first.
  'signature-mismatch_fail': ['tlog-invalid', /signature mismatch/],
  'set-invalid-signature_fail': ['tlog-invalid', /inclusion promise/],
  'inclusion-proof-corrupted-hash_fail': ['tlog-invalid', /root hash does not match/],
  'invalid-checkpoint-signature_fail': ['tlog-invalid', /checkpoint signature/],
  'integrated-time-in-future_fail': ['certificate', /certificate chain/],
  'bundle-from-wrong-instance_fail': ['certificate', /certificate chain/],
  'dsse-invalid-sig_fail': ['tlog-invalid', /signature mismatch/],
};

describe('public Sigstore bundles (sigstore-conformance, cosign)', () => {
  it('covers every case in cases.json', () => {
    expect(cases.bundleCases.length).toBeGreaterThanOrEqual(16);
    expect(cases.bundleCases.filter((c) => c.expected === 'fail').length).toBeGreaterThanOrEqual(10);
  });

  it.each(cases.bundleCases.map((c) => [c.name, c] as const))('%s gives its listed outcome', (_, c) => {
    const bundle = bundleFromJSON(JSON.parse(fixture(c.bundle).toString('utf8')));
    const bytes = c.artifact === null ? undefined : fixture(c.artifact);
    if (bytes !== undefined) {
      // The fixture's own bookkeeping: the digest it lists is the artifact's.
      expect(`sha256:${createHash('sha256').update(bytes).digest('hex')}`).toBe(c.artifactDigest);
    }
    const check = checkArtifactBundle(
      bundle,
      { bytes, digest: c.artifactDigest },
      keyless(c.identity, c.issuer),
      { verifyTlog: true, verifySct: true, trustedRoot: () => publicGood },
    );
    if (c.expected === 'pass') {
      expect(check.ok ? 'pass' : check.detail).toBe('pass');
      return;
    }
    const [failure, detail] = EXPECTED_FAILURE[c.name] ?? ['no expected failure listed', /^$/];
    expect(check.ok ? 'pass' : check.failure).toBe(failure);
    expect(check.ok ? '' : check.detail).toMatch(detail);
  });

  it('rejects the cosign attestation for any other image digest', () => {
    const c = cases.bundleCases.find((x) => x.name === 'cosign-oci-attestation');
    expect(c).toBeDefined();
    const bundle = bundleFromJSON(JSON.parse(fixture(c?.bundle ?? '').toString('utf8')));
    const check = checkArtifactBundle(
      bundle,
      { digest: `sha256:${'0'.repeat(64)}` },
      keyless(c?.identity ?? '', c?.issuer ?? ''),
      { verifyTlog: true, verifySct: true, trustedRoot: () => publicGood },
    );
    expect(check.ok ? 'pass' : check.failure).toBe('digest');
  });

  it("verifies cosign's real v3 attestation bundle as an image attestation of its predicate type", () => {
    const c = cases.bundleCases.find((x) => x.name === 'cosign-oci-attestation') as BundleCase;
    const attestation = { kind: 'bundle' as const, source: 'fixture', bytes: fixture(c.bundle) };
    const opts = {
      digest: c.artifactDigest,
      verifyTlog: true,
      verifySct: true,
      trustedRoot: () => publicGood,
    };
    const root = keyless(c.identity, c.issuer);
    const check = checkAttestation(attestation, root, opts, {
      predicateType: 'https://cosign.sigstore.dev/attestation/v1',
      policy: { allows: ({ predicate }) => JSON.stringify(predicate).includes('foo') },
    });
    expect(check.ok ? check.predicate : check.detail).toMatchObject({ Data: '{"foo": "bar"}\n' });
    const denied = checkAttestation(attestation, root, opts, {
      predicateType: 'https://cosign.sigstore.dev/attestation/v1',
      policy: { allows: () => false },
    });
    expect(denied.ok ? 'ok' : denied.failure).toBe('policy');
    const otherType = checkAttestation(attestation, root, opts, {
      predicateType: 'https://slsa.dev/provenance/v1',
    });
    expect(otherType.ok ? 'ok' : otherType.failure).toBe('malformed');
  });

  it('names the failed check: identity for the wrong SAN, certificate for the wrong instance', () => {
    const failure = (name: string): string => {
      const c = cases.bundleCases.find((x) => x.name === name) as BundleCase;
      const check = checkArtifactBundle(
        bundleFromJSON(JSON.parse(fixture(c.bundle).toString('utf8'))),
        { bytes: fixture(c.artifact ?? ''), digest: c.artifactDigest },
        keyless(c.identity, c.issuer),
        { verifyTlog: true, verifySct: true, trustedRoot: () => publicGood },
      );
      return check.ok ? 'pass' : check.failure;
    };
    expect(failure('happy-path-v0.3+wrong-identity')).toBe('identity');
    expect(failure('happy-path-v0.3+wrong-issuer')).toBe('identity');
    expect(failure('bundle-from-wrong-instance_fail')).toBe('certificate');
    expect(failure('set-invalid-signature_fail')).toBe('tlog-invalid');
  });
});

describe('public legacy cosign .sig signature (containers/image fixture)', () => {
  const c = cases.cosignLegacyCases[0] as LegacyCase;
  const text = (annotation: string): string => fixture(c.extracted[annotation] ?? '').toString('utf8');
  const valid: LegacySignature = {
    kind: 'legacy',
    source: 'fixture',
    payload: fixture(c.extracted['payload'] ?? ''),
    signature: text('dev.cosignproject.cosign/signature'),
    certificate: text('dev.sigstore.cosign/certificate'),
    chain: text('dev.sigstore.cosign/chain'),
    rekorBundle: text('dev.sigstore.cosign/bundle'),
  };
  /** Changes one base64 character in the middle of the PEM body (inside the TBS certificate). */
  const garble = (pem: string): string => {
    const lines = pem.split('\n');
    const i = Math.floor(lines.length / 2);
    const line = lines[i] ?? '';
    lines[i] = `${line.slice(0, 20)}${line[20] === 'A' ? 'B' : 'A'}${line.slice(21)}`;
    return lines.join('\n');
  };
  const options = (trustedRoot: TrustedRoot = publicGood): CheckOptions => ({
    digest: c.manifestDigest,
    verifyTlog: true,
    verifySct: true,
    trustedRoot: () => trustedRoot,
  });
  const outcome = (sig: LegacySignature, root = keyless(c.identity, c.issuer), opts = options()): string => {
    const check = checkSignature(sig, root, opts);
    return check.ok ? 'pass' : check.failure;
  };

  it('passes for its identity and issuer, and the manifest digest it signed', () => {
    expect(
      `sha256:${createHash('sha256').update(fixture('cosign-legacy/fulcio-rekor-valid/manifest.json')).digest('hex')}`,
    ).toBe(c.manifestDigest);
    expect(outcome(valid)).toBe('pass');
  });

  it('passes without the chain annotation: intermediates come from the trusted root', () => {
    expect(outcome({ ...valid, chain: undefined })).toBe('pass');
  });

  it.each([
    [
      'without the SET (no verified time for the short-lived certificate)',
      { rekorBundle: undefined },
      'certificate',
    ],
    ['without the certificate', { certificate: undefined }, 'certificate'],
    [
      'with a garbled certificate',
      { certificate: garble(text('dev.sigstore.cosign/certificate')) },
      'certificate',
    ],
    [
      'with a garbled SET',
      {
        rekorBundle: text('dev.sigstore.cosign/bundle').replace(
          /"SignedEntryTimestamp":"[^"]{10}/,
          '"SignedEntryTimestamp":"MEUCIQDAAA',
        ),
      },
      'tlog-invalid',
    ],
  ])('rejects it %s', (_, edit, failure) => {
    expect(outcome({ ...valid, ...edit })).not.toBe('pass');
    expect(outcome({ ...valid, ...edit })).toBe(failure);
  });

  it('rejects it for another email', () => {
    expect(outcome(valid, keyless('this-does-not-match@example.com', c.issuer))).toBe('identity');
  });

  it('rejects it for another image digest', () => {
    expect(outcome(valid, undefined, { ...options(), digest: `sha256:${'1'.repeat(64)}` })).toBe('digest');
  });

  it('rejects it when the trusted root has another Rekor key', () => {
    const json = TrustedRoot.toJSON(publicGood) as { tlogs: { publicKey: { rawBytes: string } }[] };
    const foreignKey = TrustedRoot.toJSON(publicGood) as { ctlogs: { publicKey: { rawBytes: string } }[] };
    // A CT log key is a real P-256 key that is not Rekor's: swap it in as every log's key.
    const swapped = TrustedRoot.fromJSON({
      ...json,
      tlogs: json.tlogs.map((t) => ({
        ...t,
        publicKey: { ...t.publicKey, rawBytes: foreignKey.ctlogs[0]?.publicKey.rawBytes },
      })),
    });
    expect(outcome(valid, undefined, options(swapped))).toBe('tlog-invalid');
  });
});
