/**
 * The cosign validator against signatures the real cosign CLI (v3, offline, `--new-bundle-format=false`)
 * stores in the legacy `sha256-<hex>.sig` tag of a loopback docker-registry, through the same Runtime
 * `provenant serve` builds.
 */
import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../provider/src/config/index.ts';
import { Runtime, type Outcome } from '../../../provider/src/service/index.ts';
import {
  cosignAttachForeignPayload,
  cosignKeyPair,
  cosignSign,
  type CosignKey,
} from '../../harness/cosign.ts';
import { pushIndex, pushRandomImage, type PushedManifest } from '../../harness/images.ts';
import { makeTempDir } from '../../harness/process.ts';
import { startDistributionRegistry, type RegistryServer } from '../../harness/registry.ts';
import { toolPath } from '../../harness/tools.ts';

const run = promisify(execFile);

describe('cosign validator, legacy .sig signatures made by the cosign CLI', () => {
  let registry: RegistryServer;
  let dir: string;
  let keys: Record<'alice' | 'bob' | 'carol' | 'rsa' | 'p384' | 'p521' | 'ed25519' | 'stranger', CosignKey>;
  let runtime: Runtime;

  const pinned = (image: PushedManifest, repository: string): string =>
    `${registry.host}/${repository}@${image.digest}`;

  /** A new image in `repository`, signed by each key given. */
  async function signedImage(repository: string, ...signers: CosignKey[]): Promise<PushedManifest> {
    const image = await pushRandomImage(registry.url, repository, 'v1');
    for (const key of signers) await cosignSign(pinned(image, repository), key);
    return image;
  }

  function verify(reference: string): Promise<Outcome> {
    return runtime.verifier.verify(reference);
  }

  async function rejection(reference: string): Promise<{ code: string; message: string }> {
    const outcome = await verify(reference);
    if (outcome.ok) throw new Error(`expected ${reference} to be rejected, it was admitted`);
    return { code: outcome.error.code, message: outcome.error.message };
  }

  beforeAll(async () => {
    [registry, dir] = await Promise.all([startDistributionRegistry(), makeTempDir('cosign-keys')]);
    const [alice, bob, carol, rsa, p384, p521, ed25519, stranger] = await Promise.all([
      cosignKeyPair(dir, 'alice'),
      cosignKeyPair(dir, 'bob'),
      cosignKeyPair(dir, 'carol'),
      cosignKeyPair(dir, 'rsa', 'rsa'),
      cosignKeyPair(dir, 'p384', 'ecdsa-p384'),
      cosignKeyPair(dir, 'p521', 'ecdsa-p521'),
      cosignKeyPair(dir, 'ed25519', 'ed25519'),
      cosignKeyPair(dir, 'stranger'),
    ]);
    keys = { alice, bob, carol, rsa, p384, p521, ed25519, stranger };
    const root = (name: keyof typeof keys): string =>
      `      - { name: ${name}, key: ${JSON.stringify(keys[name].publicKey)} }`;
    const offline = 'verifyInTransparencyLog: false';
    const yaml = `
validators:
  - { name: deny, type: static, approve: false }
  - name: team
    type: cosign
    trustRoots:
${(['alice', 'bob', 'carol'] as const).map(root).join('\n')}
  - name: algorithms
    type: cosign
    trustRoots:
${(['rsa', 'p384', 'p521', 'ed25519'] as const).map(root).join('\n')}
policy:
  - { pattern: "*:*", validator: deny }
  - { pattern: "${registry.host}/alice/*", validator: team, with: { trustRoot: alice, ${offline} } }
  - { pattern: "${registry.host}/tlog/*", validator: team, with: { trustRoot: alice } }
  - { pattern: "${registry.host}/all/*", validator: team, with: { trustRoot: "*", ${offline} } }
  - { pattern: "${registry.host}/two/*", validator: team, with: { trustRoot: "*", threshold: 2, ${offline} } }
  - { pattern: "${registry.host}/carol-required/*", validator: team, with: { trustRoot: "*", threshold: 2, required: [carol], ${offline} } }
  - { pattern: "${registry.host}/rsa/*", validator: algorithms, with: { trustRoot: rsa, ${offline} } }
  - { pattern: "${registry.host}/p384/*", validator: algorithms, with: { trustRoot: p384, ${offline} } }
  - { pattern: "${registry.host}/p521/*", validator: algorithms, with: { trustRoot: p521, ${offline} } }
  - { pattern: "${registry.host}/ed25519/*", validator: algorithms, with: { trustRoot: ed25519, ${offline} } }
registries:
  - { host: "${registry.host}", insecure: true }
`;
    runtime = new Runtime(parseConfig(yaml, 'cosign legacy test', dir), 'cosign legacy test');
  });

  afterAll(async () => {
    await runtime?.close();
    await registry?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('admits an image signed by the named trust root, pinned to the digest cosign signed', async () => {
    const image = await signedImage('alice/app', keys.alice);
    const outcome = await verify(`${registry.host}/alice/app:v1`);
    expect(outcome.ok && outcome.verdict).toMatchObject({
      digest: image.digest,
      signers: ['alice'],
      validator: 'team',
      pinned: `${registry.host}/alice/app:v1@${image.digest}`,
    });
  });

  it.each(['rsa', 'p384', 'p521', 'ed25519'] as const)(
    'admits a signature made with an imported %s key',
    async (name) => {
      const image = await signedImage(`${name}/app`, keys[name]);
      const outcome = await verify(pinned(image, `${name}/app`));
      expect(outcome.ok && outcome.verdict.signers).toEqual([name]);
    },
  );

  it('admits a multi-platform image by the signature on its index digest, not a platform image', async () => {
    const index = await pushIndex(registry.url, 'alice/multi', 'v1');
    await cosignSign(`${registry.host}/alice/multi@${index.digest}`, keys.alice);
    const outcome = await verify(`${registry.host}/alice/multi:v1`);
    expect(outcome.ok && outcome.verdict.digest).toBe(index.digest);
    // A platform image of it carries no signature of its own.
    const platform = index.images[0]?.digest ?? '';
    const error = await rejection(`${registry.host}/alice/multi@${platform}`);
    expect(error.code).toBe('COSIGN_NO_SIGNATURES');
  });

  it('rejects an unsigned image with COSIGN_NO_SIGNATURES naming it', async () => {
    const image = await pushRandomImage(registry.url, 'alice/unsigned', 'v1');
    const error = await rejection(`${registry.host}/alice/unsigned:v1`);
    expect(error.code).toBe('COSIGN_NO_SIGNATURES');
    expect(error.message).toContain(`${registry.host}/alice/unsigned:v1`);
    expect(error.message).toContain(image.digest);
  });

  it('rejects a signature by another key with COSIGN_SIGNATURE_INVALID naming the image', async () => {
    await signedImage('alice/strange', keys.stranger);
    const error = await rejection(`${registry.host}/alice/strange:v1`);
    expect(error.code).toBe('COSIGN_SIGNATURE_INVALID');
    expect(error.message).toContain(`${registry.host}/alice/strange:v1`);
    expect(error.message).toContain('trust root "alice"');
  });

  it("rejects the same signature copied to another image's tag with COSIGN_SIGNATURE_COPIED", async () => {
    const original = await signedImage('alice/original', keys.alice);
    const victim = await pushRandomImage(registry.url, 'alice/victim', 'v1');
    const sigTag = (d: string): string => `${d.replace(':', '-')}.sig`;
    await run(toolPath('crane'), [
      'copy',
      '--insecure',
      `${registry.host}/alice/original:${sigTag(original.digest)}`,
      `${registry.host}/alice/victim:${sigTag(victim.digest)}`,
    ]);
    // The copy is byte for byte the signature that admits the original.
    expect((await verify(`${registry.host}/alice/original:v1`)).ok).toBe(true);
    const error = await rejection(`${registry.host}/alice/victim:v1`);
    expect(error.code).toBe('COSIGN_SIGNATURE_COPIED');
    expect(error.message).toContain(`${registry.host}/alice/victim:v1`);
    expect(error.message).toContain(`found one for ${registry.host}/alice/original@${original.digest}`);
  });

  it('rejects a validly signed payload for another digest with COSIGN_DIGEST_MISMATCH', async () => {
    const other = await pushRandomImage(registry.url, 'alice/app2', 'other');
    const target = await pushRandomImage(registry.url, 'alice/app2', 'v1');
    await cosignAttachForeignPayload(
      dir,
      pinned(other, 'alice/app2'),
      pinned(target, 'alice/app2'),
      keys.alice,
    );
    const error = await rejection(`${registry.host}/alice/app2:v1`);
    expect(error.code).toBe('COSIGN_DIGEST_MISMATCH');
    expect(error.message).toContain(`${registry.host}/alice/app2:v1`);
    expect(error.message).toContain(`expected ${target.digest}, found ${other.digest}`);
  });

  it('rejects a signature without a transparency log entry when verifyInTransparencyLog is on (the default)', async () => {
    await signedImage('tlog/app', keys.alice);
    const error = await rejection(`${registry.host}/tlog/app:v1`);
    expect(error.code).toBe('COSIGN_TLOG_MISSING');
    expect(error.message).toContain(`${registry.host}/tlog/app:v1`);
  });

  it('with trustRoot "*" admits an image every root signed and names them all', async () => {
    const image = await signedImage('all/app', keys.alice, keys.bob, keys.carol);
    const outcome = await verify(pinned(image, 'all/app'));
    expect(outcome.ok && outcome.verdict.signers).toEqual(['alice', 'bob', 'carol']);
  });

  it('with trustRoot "*" alone rejects an image two of three roots signed with COSIGN_THRESHOLD_NOT_MET', async () => {
    await signedImage('all/partial', keys.alice, keys.bob);
    const error = await rejection(`${registry.host}/all/partial:v1`);
    expect(error.code).toBe('COSIGN_THRESHOLD_NOT_MET');
    expect(error.message).toContain('expected at least 3 from distinct signers, found 2');
    expect(error.message).toContain(`${registry.host}/all/partial:v1`);
  });

  it('with threshold 2 admits two signers and rejects one with COSIGN_THRESHOLD_NOT_MET', async () => {
    await signedImage('two/app', keys.alice, keys.carol);
    const admitted = await verify(`${registry.host}/two/app:v1`);
    expect(admitted.ok && admitted.verdict.signers).toEqual(['alice', 'carol']);
    await signedImage('two/single', keys.bob);
    const error = await rejection(`${registry.host}/two/single:v1`);
    expect(error.code).toBe('COSIGN_THRESHOLD_NOT_MET');
    expect(error.message).toContain('expected at least 2 from distinct signers, found 1');
  });

  it('rejects an image whose required root did not sign with COSIGN_REQUIRED_SIGNER_MISSING', async () => {
    await signedImage('carol-required/app', keys.alice, keys.bob);
    const error = await rejection(`${registry.host}/carol-required/app:v1`);
    expect(error.code).toBe('COSIGN_REQUIRED_SIGNER_MISSING');
    expect(error.message).toContain('"carol"');
    expect(error.message).toContain(`${registry.host}/carol-required/app:v1`);
    await signedImage('carol-required/signed', keys.alice, keys.carol);
    const admitted = await verify(`${registry.host}/carol-required/signed:v1`);
    expect(admitted.ok && admitted.verdict.signers).toEqual(['alice', 'carol']);
  });
});
