/**
 * A private Sigstore deployment configured as `sigstore.trustedRoot`: keyless signatures whose
 * certificates chain to its CA and whose SETs its log key signed are admitted; the public-good ones
 * (and the public-good root for private signatures) are not.
 */
import { createHash, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../provider/src/config/index.ts';
import { Runtime, type Outcome } from '../../../provider/src/service/index.ts';
import { loadTrustedRootFile } from '../../../provider/src/trust/sigstore/index.ts';
import type { LegacySignature } from '../../../provider/src/validators/cosign/signatures.ts';
import { checkSignature } from '../../../provider/src/validators/cosign/verify.ts';
import { pushRandomImage } from '../../harness/images.ts';
import {
  issueSigningCert,
  keylessBundle,
  loggedSignature,
  pushBundleReferrer,
  makePrivateSigstore,
  pushLegacySignatures,
  type PrivateSigstore,
  type SigningIdentity,
} from '../../harness/private-sigstore.ts';
import { makeTempDir } from '../../harness/process.ts';
import { PROJECT_ROOT } from '../../harness/provenant.ts';
import { startDistributionRegistry, type RegistryServer } from '../../harness/registry.ts';

const ISSUER = 'https://oidc.private.test';
/** A whole verification (registry round trips included) with a keyless identity regex, on loopback. */
const REGEX_BUDGET_MS = 1500;
const PUBLIC_GOOD = path.resolve(PROJECT_ROOT, '../shared/fixtures/sigstore');

describe('cosign validator with a private Sigstore trusted root', () => {
  let registry: RegistryServer;
  let dir: string;
  let sigstore: PrivateSigstore;
  let alice: SigningIdentity;
  let mallory: SigningIdentity;
  let runtime: Runtime;
  let releaseKey: SigningIdentity;
  let p384Key: SigningIdentity;

  async function signedImage(repository: string, signer: SigningIdentity): Promise<string> {
    const image = await pushRandomImage(registry.url, repository, 'v1');
    const sig = loggedSignature(sigstore, signer, `${registry.host}/${repository}`, image.digest);
    await pushLegacySignatures(registry.url, repository, image.digest, [sig]);
    return image.digest;
  }

  async function verify(reference: string): Promise<Outcome> {
    return runtime.verifier.verify(reference);
  }

  beforeAll(async () => {
    [registry, dir] = await Promise.all([startDistributionRegistry(), makeTempDir('private-sigstore')]);
    sigstore = await makePrivateSigstore(dir);
    [alice, mallory] = await Promise.all([
      issueSigningCert(sigstore, 'alice', 'alice@acme.test', ISSUER),
      issueSigningCert(sigstore, 'mallory', 'mallory@evil.test', ISSUER),
    ]);
    releaseKey = { key: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey };
    const releasePem = createPublicKey(releaseKey.key).export({ type: 'spki', format: 'pem' }).toString();
    p384Key = { key: generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey };
    const p384Pem = createPublicKey(p384Key.key).export({ type: 'spki', format: 'pem' }).toString();
    const yaml = `
validators:
  - { name: deny, type: static, approve: false }
  - name: private
    type: cosign
    trustRoots:
      - { name: alice, keyless: { issuer: "${ISSUER}", subjectRegex: "^alice@acme\\\\.test$" } }
  - name: backtracking
    type: cosign
    trustRoots:
      - { name: default, keyless: { issuer: "${ISSUER}", subjectRegex: "^(a+)+$" } }
  - name: keyed
    type: cosign
    trustRoots:
      - { name: default, key: ${JSON.stringify(releasePem)} }
  - name: keyed384
    type: cosign
    trustRoots:
      - { name: default, key: ${JSON.stringify(p384Pem)} }
policy:
  - { pattern: "*:*", validator: deny }
  - { pattern: "${registry.host}/backtracking/*", validator: backtracking, with: { verifySCT: false } }
  - { pattern: "${registry.host}/keyed/*", validator: keyed }
  - { pattern: "${registry.host}/keyed384/*", validator: keyed384 }
  - { pattern: "${registry.host}/*", validator: private, with: { trustRoot: alice, verifySCT: false } }
registries:
  - { host: "${registry.host}", insecure: true }
sigstore:
  trustedRoot: trusted_root.json
`;
    // A relative path: resolved against the config file's directory, as for every file the config names.
    runtime = new Runtime(parseConfig(yaml, path.join(dir, 'config.yaml'), dir), 'private sigstore test');
  });

  afterAll(async () => {
    await runtime?.close();
    await registry?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('admits a keyless signature whose certificate chains to the private CA and whose SET the private log signed', async () => {
    const digest = await signedImage('team/app', alice);
    const outcome = await verify(`${registry.host}/team/app:v1`);
    expect(outcome.ok ? outcome.verdict : outcome.error.message).toMatchObject({
      digest,
      signers: ['alice'],
    });
  });

  it('matches subjectRegex in linear time (RE2): a catastrophic pattern against a long subject answers at once', async () => {
    // JavaScript's backtracking RegExp took 33 s here for ^(a+)+$ against 28 a's and a non-matching tail,
    // doubling with each further a; RE2 (as cosign's Go regexp) is linear.
    const subject = `${'a'.repeat(28)}@acme.test`;
    const signer = await issueSigningCert(sigstore, 'long-subject', subject, ISSUER);
    await signedImage('backtracking/app', signer);
    const started = performance.now();
    const outcome = await verify(`${registry.host}/backtracking/app:v1`);
    const elapsedMs = performance.now() - started;
    expect(outcome.ok ? 'admitted' : outcome.error.code).toBe('COSIGN_IDENTITY_MISMATCH');
    expect(outcome.ok ? '' : outcome.error.message).toContain(subject);
    expect(elapsedMs).toBeLessThan(REGEX_BUDGET_MS);
  });

  it('admits a key-based signature whose Rekor SET the private log signed (verifyInTransparencyLog on)', async () => {
    const digest = await signedImage('keyed/app', releaseKey);
    const outcome = await verify(`${registry.host}/keyed/app:v1`);
    expect(outcome.ok ? outcome.verdict : outcome.error.message).toMatchObject({
      digest,
      signers: ['default'],
    });
  });

  it('checks the log entry of a P-384 signature hashed with SHA-384', async () => {
    const image = await pushRandomImage(registry.url, 'keyed384/app', 'v1');
    const sig = loggedSignature(sigstore, p384Key, `${registry.host}/keyed384/app`, image.digest, 'sha384');
    await pushLegacySignatures(registry.url, 'keyed384/app', image.digest, [sig]);
    const outcome = await verify(`${registry.host}/keyed384/app:v1`);
    expect(outcome.ok ? outcome.verdict.digest : outcome.error.message).toBe(image.digest);
  });

  it('rejects a key-based signature whose SET was tampered with, with COSIGN_TLOG_INVALID', async () => {
    const image = await pushRandomImage(registry.url, 'keyed/tampered', 'v1');
    const sig = loggedSignature(sigstore, releaseKey, `${registry.host}/keyed/tampered`, image.digest);
    const bundle = JSON.parse(sig.annotations['dev.sigstore.cosign/bundle'] ?? '{}') as {
      Payload: { logIndex: number };
    };
    bundle.Payload.logIndex += 1; // the SET no longer covers the entry
    sig.annotations['dev.sigstore.cosign/bundle'] = JSON.stringify(bundle);
    await pushLegacySignatures(registry.url, 'keyed/tampered', image.digest, [sig]);
    const outcome = await verify(`${registry.host}/keyed/tampered:v1`);
    expect(outcome.ok ? 'admitted' : outcome.error.code).toBe('COSIGN_TLOG_INVALID');
    expect(outcome.ok ? '' : outcome.error.message).toContain(`${registry.host}/keyed/tampered:v1`);
  });

  it('skips a signature whose blob is gone and admits on the valid one beside it', async () => {
    const image = await pushRandomImage(registry.url, 'keyed/partly-broken', 'v1');
    // Two payloads that differ only in the docker-reference the signer named: two distinct blobs.
    const broken = loggedSignature(sigstore, releaseKey, `${registry.host}/elsewhere`, image.digest);
    const good = loggedSignature(sigstore, releaseKey, `${registry.host}/keyed/partly-broken`, image.digest);
    await pushLegacySignatures(registry.url, 'keyed/partly-broken', image.digest, [broken, good]);
    const gone = `sha256:${createHash('sha256').update(broken.payload).digest('hex')}`;
    const deleted = await fetch(`${registry.url}/v2/keyed/partly-broken/blobs/${gone}`, { method: 'DELETE' });
    expect(deleted.status).toBe(202);
    const outcome = await verify(`${registry.host}/keyed/partly-broken:v1`);
    expect(outcome.ok ? outcome.verdict.digest : outcome.error.message).toBe(image.digest);
  });

  it('admits a keyless cosign v3 bundle (DSSE, dsse log entry) stored as a referrer', async () => {
    const image = await pushRandomImage(registry.url, 'team/bundled', 'v1');
    const subject = { digest: image.digest, size: image.manifest.length, mediaType: image.mediaType };
    await pushBundleReferrer(
      registry.url,
      'team/bundled',
      subject,
      keylessBundle(sigstore, alice, image.digest),
    );
    const outcome = await verify(`${registry.host}/team/bundled:v1`);
    expect(outcome.ok ? outcome.verdict : outcome.error.message).toMatchObject({
      digest: image.digest,
      signers: ['alice'],
    });
    const other = await pushRandomImage(registry.url, 'team/bundled-mallory', 'v1');
    const otherSubject = { digest: other.digest, size: other.manifest.length, mediaType: other.mediaType };
    await pushBundleReferrer(
      registry.url,
      'team/bundled-mallory',
      otherSubject,
      keylessBundle(sigstore, mallory, other.digest),
    );
    const rejected = await verify(`${registry.host}/team/bundled-mallory:v1`);
    expect(rejected.ok ? 'admitted' : rejected.error.code).toBe('COSIGN_IDENTITY_MISMATCH');
  });

  it('rejects a certificate for another identity with COSIGN_IDENTITY_MISMATCH naming the image', async () => {
    await signedImage('team/mallory', mallory);
    const outcome = await verify(`${registry.host}/team/mallory:v1`);
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(outcome.error.code).toBe('COSIGN_IDENTITY_MISMATCH');
    expect(outcome.error.message).toContain(`${registry.host}/team/mallory:v1`);
    expect(outcome.error.message).toContain('mallory@evil.test');
  });

  it('rejects the public-good legacy signature: its certificate does not chain to the private CA', () => {
    const extracted = (f: string): string =>
      readFileSync(path.join(PUBLIC_GOOD, 'cosign-legacy/fulcio-rekor-valid/extracted', f), 'utf8');
    const publicSig: LegacySignature = {
      kind: 'legacy',
      source: 'public-good fixture',
      payload: Buffer.from(extracted('payload.json')),
      signature: extracted('signature.b64'),
      certificate: extracted('certificate.pem'),
      chain: extracted('chain.pem'),
      rekorBundle: extracted('bundle.json'),
    };
    const root = {
      name: 'mitr',
      kind: 'keyless' as const,
      identity: { subject: 'mitr@redhat.com', issuer: 'https://github.com/login/oauth' },
    };
    const options = (trustedRoot: string) => ({
      digest: 'sha256:0489474da8ea22426ece86ace6c1c0026ab2fd3cdfbbd62b7e94650266c37d9a',
      verifyTlog: true,
      verifySct: false,
      trustedRoot: () => loadTrustedRootFile(trustedRoot),
    });
    // The same signature passes under public-good, so only the trusted root differs.
    expect(
      checkSignature(publicSig, root, options(path.join(PUBLIC_GOOD, 'trust/public-good/trusted_root.json'))),
    ).toEqual({
      ok: true,
    });
    const check = checkSignature(publicSig, root, options(sigstore.trustedRootPath));
    expect(check.ok ? 'pass' : check.failure).toBe('certificate');
  });

  it('rejects a private signature under the public-good root with COSIGN_CERTIFICATE_INVALID', async () => {
    const digest = await signedImage('team/public-root', alice);
    const publicRuntime = new Runtime(
      parseConfig(
        `
validators:
  - name: public
    type: cosign
    trustRoots:
      - { name: alice, keyless: { issuer: "${ISSUER}", subject: alice@acme.test } }
policy:
  - { pattern: "*:*", validator: public, with: { trustRoot: alice, verifySCT: false } }
registries:
  - { host: "${registry.host}", insecure: true }
sigstore:
  trustedRoot: ${path.join(PUBLIC_GOOD, 'trust/public-good/trusted_root.json')}
`,
        'public root test',
        dir,
      ),
      'public root test',
    );
    try {
      const outcome = await publicRuntime.verifier.verify(`${registry.host}/team/public-root@${digest}`);
      expect(outcome.ok ? 'admitted' : outcome.error.code).toBe('COSIGN_CERTIFICATE_INVALID');
    } finally {
      await publicRuntime.close();
    }
  });

  it("accepts Connaisseur's host.rekorPubkey and host.fulcioCert instead of a trusted_root.json", async () => {
    const digest = await signedImage('team/host-overrides', alice);
    const rekorPem = createPublicKey(sigstore.rekorKey).export({ type: 'spki', format: 'pem' }).toString();
    const connaisseurRuntime = new Runtime(
      parseConfig(
        `
validators:
  - name: connaisseur
    type: cosign
    host: { rekorPubkey: ${JSON.stringify(rekorPem)}, fulcioCert: ${JSON.stringify(sigstore.ca.certPem)} }
    trustRoots:
      - { name: alice, keyless: { issuer: "${ISSUER}", subject: alice@acme.test } }
policy:
  - { pattern: "*:*", validator: connaisseur, with: { trustRoot: alice, verifySCT: false } }
registries:
  - { host: "${registry.host}", insecure: true }
`,
        'connaisseur host test',
        dir,
      ),
      'connaisseur host test',
    );
    try {
      const outcome = await connaisseurRuntime.verifier.verify(`${registry.host}/team/host-overrides:v1`);
      expect(outcome.ok ? outcome.verdict : outcome.error.message).toMatchObject({
        digest,
        signers: ['alice'],
      });
    } finally {
      await connaisseurRuntime.close();
    }
  });
});
