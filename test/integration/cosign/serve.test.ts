/**
 * cosign end to end: the real `provenant serve` process answering Gatekeeper's /v1/verify and
 * /v1/mutate for images signed by the real cosign CLI in a loopback docker-registry.
 */
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cosignKeyPair, cosignSign, type CosignKey } from '../../harness/cosign.ts';
import { pushRandomImage } from '../../harness/images.ts';
import { makeTempDir } from '../../harness/process.ts';
import { devCertAgent, startProvenant, type RunningProvenant } from '../../harness/provenant.ts';
import { startDistributionRegistry, type RegistryServer } from '../../harness/registry.ts';
import { askProvider, type ProviderAnswer } from '../../harness/world.ts';

describe('provenant serve with a cosign validator', () => {
  let registry: RegistryServer;
  let dir: string;
  let alice: CosignKey;
  let mallory: CosignKey;
  let provenant: RunningProvenant;
  let dispatcher: Agent;

  async function call(route: 'verify' | 'mutate', keys: string[]): Promise<ProviderAnswer['items']> {
    const answer = await askProvider(provenant.url, dispatcher, route, keys);
    expect(answer.status).toBe(200);
    expect(answer.systemError).toBe('');
    return answer.items;
  }

  beforeAll(async () => {
    [registry, dir] = await Promise.all([startDistributionRegistry(), makeTempDir('cosign-serve')]);
    [alice, mallory] = await Promise.all([cosignKeyPair(dir, 'alice'), cosignKeyPair(dir, 'mallory')]);
    const configPath = path.join(dir, 'provenant.yaml');
    await writeFile(
      configPath,
      `
validators:
  - { name: deny, type: static, approve: false }
  - name: team
    type: cosign
    trustRoots:
      - { name: alice, key: ${JSON.stringify(alice.publicKey)} }
policy:
  - { pattern: "*:*", validator: deny }
  - { pattern: "${registry.host}/team/*", validator: team, with: { trustRoot: alice, verifyInTransparencyLog: false } }
registries:
  - { host: "${registry.host}", insecure: true }
server: { port: 0, host: 127.0.0.1 }
`,
    );
    provenant = await startProvenant(['node', 'bin/provenant.mjs', 'serve', '--config', configPath]);
    dispatcher = devCertAgent(provenant);
  });

  afterAll(async () => {
    await dispatcher?.close();
    await provenant?.stop();
    await registry?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('verifies and pins a signed image, and rejects one signed by another key, per item', async () => {
    const signed = await pushRandomImage(registry.url, 'team/app', 'v1');
    await cosignSign(`${registry.host}/team/app@${signed.digest}`, alice);
    const forged = await pushRandomImage(registry.url, 'team/forged', 'v1');
    await cosignSign(`${registry.host}/team/forged@${forged.digest}`, mallory);
    const good = `${registry.host}/team/app:v1`;
    const bad = `${registry.host}/team/forged:v1`;

    const verified = await call('verify', [good, bad]);
    expect(verified.find((i) => i.key === good)).toEqual({
      key: good,
      error: '',
      value: expect.objectContaining({
        digest: signed.digest,
        validator: 'team',
        signers: ['alice'],
      }) as unknown,
    });
    const rejected = verified.find((i) => i.key === bad);
    expect(rejected?.value).toBeFalsy();
    expect(rejected?.error).toMatch(new RegExp(`^COSIGN_SIGNATURE_INVALID: .*${bad.replace(/[.]/g, '\\.')}`));

    const mutated = await call('mutate', [good]);
    expect(mutated).toEqual([{ key: good, value: `${good}@${signed.digest}`, error: '' }]);
  });
});
