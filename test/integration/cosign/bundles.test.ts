/**
 * cosign v3's default storage: a Sigstore bundle (DSSE over an in-toto statement naming the image
 * digest) in a manifest whose `subject` is the image, found through the OCI referrers API (olareg) or
 * the referrers tag fallback `sha256-<hex>` (docker-registry, which has no referrers API).
 */
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../provider/src/config/index.ts';
import { Runtime, type Outcome } from '../../../provider/src/service/index.ts';
import { cosignKeyPair, cosignSign, type CosignKey } from '../../harness/cosign.ts';
import { pushRandomImage, type PushedManifest } from '../../harness/images.ts';
import { makeTempDir } from '../../harness/process.ts';
import {
  startDistributionRegistry,
  startReferrersRegistry,
  type RegistryServer,
} from '../../harness/registry.ts';

describe.each([
  ['the OCI referrers API (olareg)', startReferrersRegistry],
  ['the referrers tag fallback (docker-registry)', () => startDistributionRegistry()],
])('cosign validator, v3 bundles found through %s', (_, startRegistry) => {
  let registry: RegistryServer;
  let dir: string;
  let alice: CosignKey;
  let bob: CosignKey;
  let runtime: Runtime;

  async function signedImage(repository: string, ...signers: CosignKey[]): Promise<PushedManifest> {
    const image = await pushRandomImage(registry.url, repository, 'v1');
    for (const key of signers)
      await cosignSign(`${registry.host}/${repository}@${image.digest}`, key, 'bundle');
    return image;
  }

  async function rejection(reference: string): Promise<{ code: string; message: string }> {
    const outcome: Outcome = await runtime.verifier.verify(reference);
    if (outcome.ok) throw new Error(`expected ${reference} to be rejected, it was admitted`);
    return outcome.error;
  }

  beforeAll(async () => {
    [registry, dir] = await Promise.all([startRegistry(), makeTempDir('cosign-bundles')]);
    [alice, bob] = await Promise.all([cosignKeyPair(dir, 'alice'), cosignKeyPair(dir, 'bob')]);
    const yaml = `
validators:
  - { name: deny, type: static, approve: false }
  - name: team
    type: cosign
    trustRoots:
      - { name: alice, key: ${JSON.stringify(alice.publicKey)} }
      - { name: bob, key: ${JSON.stringify(bob.publicKey)} }
policy:
  - { pattern: "*:*", validator: deny }
  - { pattern: "${registry.host}/alice/*", validator: team, with: { trustRoot: alice, verifyInTransparencyLog: false } }
  - { pattern: "${registry.host}/tlog/*", validator: team, with: { trustRoot: alice } }
  - { pattern: "${registry.host}/both/*", validator: team, with: { trustRoot: "*", verifyInTransparencyLog: false } }
registries:
  - { host: "${registry.host}", insecure: true }
`;
    runtime = new Runtime(parseConfig(yaml, 'cosign bundle test', dir), 'cosign bundle test');
  });

  afterAll(async () => {
    await runtime?.close();
    await registry?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('admits an image whose bundle the trust root signed', async () => {
    const image = await signedImage('alice/app', alice);
    const outcome = await runtime.verifier.verify(`${registry.host}/alice/app:v1`);
    expect(outcome.ok && outcome.verdict).toMatchObject({ digest: image.digest, signers: ['alice'] });
  });

  it('rejects a bundle signed by another key with COSIGN_SIGNATURE_INVALID naming the image', async () => {
    await signedImage('alice/bobs', bob);
    const error = await rejection(`${registry.host}/alice/bobs:v1`);
    expect(error.code).toBe('COSIGN_SIGNATURE_INVALID');
    expect(error.message).toContain(`${registry.host}/alice/bobs:v1`);
  });

  it('rejects a bundle without a log entry with COSIGN_TLOG_MISSING by default', async () => {
    await signedImage('tlog/app', alice);
    expect((await rejection(`${registry.host}/tlog/app:v1`)).code).toBe('COSIGN_TLOG_MISSING');
  });

  it('counts one bundle per signer for trustRoot "*"', async () => {
    await signedImage('both/app', alice, bob);
    const outcome = await runtime.verifier.verify(`${registry.host}/both/app:v1`);
    expect(outcome.ok && outcome.verdict.signers).toEqual(['alice', 'bob']);
    await signedImage('both/half', alice);
    const error = await rejection(`${registry.host}/both/half:v1`);
    expect(error.code).toBe('COSIGN_THRESHOLD_NOT_MET');
    expect(error.message).toContain('expected at least 2 from distinct signers, found 1');
  });

  it('rejects an unsigned image with COSIGN_NO_SIGNATURES', async () => {
    await pushRandomImage(registry.url, 'alice/unsigned', 'v1');
    expect((await rejection(`${registry.host}/alice/unsigned:v1`)).code).toBe('COSIGN_NO_SIGNATURES');
  });
});
