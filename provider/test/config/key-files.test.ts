import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

import { parseConfig, type Config } from '../../src/config/index.ts';
import { createValidator } from '../../src/validators/index.ts';
import { SigstoreTrust } from '../../src/trust/sigstore/index.ts';
import { RegistryClient } from '../../src/registry/index.ts';
import { provenantErrorFrom, TEST_SOURCE, makeTempDir } from './helpers.ts';

const README = new URL('../../../README.md', import.meta.url);

const publicKeyPem = (): string =>
  generateKeyPairSync('ec', { namedCurve: 'P-256' })
    .publicKey.export({ type: 'spki', format: 'pem' })
    .toString();

/** The README's YAML example that contains `needle`. */
function readmeExample(needle: string): string {
  const blocks = [...readFileSync(README, 'utf8').matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1] ?? '');
  const block = blocks.find((b) => b.includes(needle));
  if (block === undefined) throw new Error(`README has no YAML example containing ${needle}`);
  return block;
}

function cosignRoots(config: Config, validator: string): readonly { name: string; key?: string }[] {
  const v = config.validators.find((x) => x.name === validator);
  return v !== undefined && v.type === 'cosign' ? v.trustRoots : [];
}

describe('trust root keys in files', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
  });

  async function configDir(): Promise<string> {
    const dir = await makeTempDir();
    dirs.push(dir);
    return dir;
  }

  it("loads the README's attestation example, reading key: ci.pub next to the config file", async () => {
    const dir = await configDir();
    const pem = publicKeyPem();
    await writeFile(join(dir, 'ci.pub'), pem);
    const yaml = `${readmeExample('key: ci.pub')}policy:\n  - { pattern: "*:*", validator: slsa, with: { trustRoot: ci } }\n`;
    const config = parseConfig(yaml, join(dir, 'config.yaml'), dir);
    expect(cosignRoots(config, 'slsa')).toEqual([{ name: 'ci', key: pem }]);
    const registry = new RegistryClient({
      registries: [],
      requestTimeoutMs: 1000,
      maxRetries: 0,
      maxManifestBytes: 1024,
    });
    const [slsa] = config.validators;
    expect(slsa && createValidator(slsa, { registry, sigstore: new SigstoreTrust() }).name).toBe('slsa');
    await registry.close();
  });

  it('reads a key file in a subdirectory, and an absolute path', async () => {
    const dir = await configDir();
    await mkdir(join(dir, 'keys'));
    const [relative, absolute] = [publicKeyPem(), publicKeyPem()];
    await writeFile(join(dir, 'keys', 'a.pub'), relative);
    await writeFile(join(dir, 'b.pub'), absolute);
    const config = parseConfig(
      `validators:\n  - name: v\n    type: cosign\n    trustRoots: [{ name: default, key: keys/a.pub }, { name: b, key: "${join(dir, 'b.pub')}" }]\npolicy:\n  - { pattern: "*:*", validator: v }\n`,
      TEST_SOURCE,
      dir,
    );
    expect(cosignRoots(config, 'v').map((r) => r.key)).toEqual([relative, absolute]);
  });

  it('refuses a key file that does not exist, naming the field and the path, as CONFIG_INVALID', async () => {
    const dir = await configDir();
    const err = provenantErrorFrom(() =>
      parseConfig(
        'validators:\n  - name: v\n    type: cosign\n    trustRoots: [{ name: default, key: missing.pub }]\npolicy:\n  - { pattern: "*:*", validator: v }\n',
        TEST_SOURCE,
        dir,
      ),
    );
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toContain('/validators/0/trustRoots/0/key: expected PEM text or a readable PEM file');
    expect(err.message).toContain(`${join(dir, 'missing.pub')}: ENOENT`);
  });
});
