/**
 * `provenant migrate connaisseur` on Connaisseur's cosign suite, reproduced locally: the suite's values
 * with its keys replaced by test keys, migrated by the CLI; its images pushed to a loopback registry that
 * stands in for Docker Hub (a `registries:` mirror) and signed by the real cosign. The migrated config
 * admits and denies what the suite's rules say (one root, every root, a threshold, required signers).
 */
import { execFile } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cosignKeyPair, cosignSign, type CosignKey } from '../../harness/cosign.ts';
import { pushRandomImage } from '../../harness/images.ts';
import { makeTempDir } from '../../harness/process.ts';
import { PROJECT_ROOT } from '../../harness/provenant.ts';
import { startDistributionRegistry, type RegistryServer } from '../../harness/registry.ts';

const run = promisify(execFile);
const FIXTURES = path.resolve(PROJECT_ROOT, '../shared/fixtures/connaisseur');
const HUB_PREFIX = 'hub';

/** tag → the signers of its image, and whether the suite's rules admit it. */
const CASES: Record<string, { signers: string[]; trusted: boolean }> = {
  'co-signed': { signers: ['default'], trusted: true },
  'co-unsigned': { signers: [], trusted: false },
  'co-signed-alice': { signers: ['alice'], trusted: false },
  'multi-cosigned-alice-only': { signers: ['alice'], trusted: false },
  'multi-cosigned-alice-all': { signers: ['alice', 'bob', 'charlie'], trusted: true },
  'multi-cosigned-bob-charlie': { signers: ['bob', 'charlie'], trusted: true },
  'multi-cosigned-bob-only': { signers: ['bob'], trusted: false },
  'multi-cosigned-charlie-alice': { signers: ['alice', 'charlie'], trusted: true },
  'multi-cosigned-charlie-bob': { signers: ['charlie', 'bob'], trusted: false },
};

describe('provenant migrate connaisseur, on the cosign suite reproduced locally', () => {
  let registry: RegistryServer;
  let dir: string;
  let report: string;
  let config: string;

  beforeAll(async () => {
    registry = await startDistributionRegistry();
    dir = await makeTempDir('migrate');
    const keys: Record<string, CosignKey> = {};
    for (const name of ['default', 'alice', 'bob', 'charlie']) keys[name] = await cosignKeyPair(dir, name);
    // The suite's values with its public keys replaced by the test keys of the same roots.
    const suite = parse(await readFile(path.join(FIXTURES, 'install', 'cosign.yaml'), 'utf8')) as {
      application: { validators: { name: string; trustRoots: { name: string; key?: string }[] }[] };
    };
    for (const v of suite.application.validators.filter((x) => x.name === 'default' || x.name === 'multi')) {
      for (const root of v.trustRoots) {
        const key = keys[root.name];
        if (key !== undefined) root.key = key.publicKey;
      }
    }
    await writeFile(path.join(dir, 'cosign.yaml'), stringify(suite));
    const out = path.join(dir, 'out');
    const migrated = await run(
      'node',
      [
        'bin/provenant.mjs',
        'migrate',
        'connaisseur',
        path.join(FIXTURES, 'values.yaml'),
        path.join(dir, 'cosign.yaml'),
        '--out',
        out,
      ],
      { cwd: PROJECT_ROOT },
    );
    report = migrated.stdout;
    // Docker Hub, played by the loopback registry.
    config = path.join(out, 'provenant.yaml');
    const doc = parse(await readFile(config, 'utf8')) as Record<string, unknown>;
    doc['registries'] = [
      { host: 'docker.io', mirror: `${registry.host}/${HUB_PREFIX}` },
      { host: registry.host, insecure: true },
    ];
    await writeFile(config, stringify(doc));
    for (const [tag, { signers }] of Object.entries(CASES)) {
      const image = await pushRandomImage(
        registry.url,
        `${HUB_PREFIX}/securesystemsengineering/testimage`,
        tag,
      );
      for (const s of signers)
        await cosignSign(
          `${registry.host}/${HUB_PREFIX}/securesystemsengineering/testimage@${image.digest}`,
          keys[s] as CosignKey,
        );
    }
  }, 300_000);

  afterAll(async () => {
    await registry?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('reports the anchored patterns and threshold counting, and says the config loads', () => {
    expect(report).toContain(
      '"securesystemsengineering/testimage:multi-cosigned-bob*" → "docker.io/securesystemsengineering/testimage:multi-cosigned-bob*"',
    );
    expect(report).toContain('[rule changed: threshold counting');
    expect(report).toContain('The migrated config loads.');
  });

  it("admits and denies the suite's images as its rules say", async () => {
    const images = Object.keys(CASES).map((tag) => `securesystemsengineering/testimage:${tag}`);
    const { stdout } = await run(
      'node',
      ['bin/provenant.mjs', 'verify', '--json', ...images, '--config', config],
      {
        cwd: PROJECT_ROOT,
      },
    ).catch((err: { stdout: string }) => err);
    const results = JSON.parse(stdout) as { key: string; trusted: boolean; code?: string }[];
    const verdicts = Object.fromEntries(results.map((r) => [r.key.split(':')[1] ?? r.key, r.trusted]));
    expect(verdicts).toEqual(
      Object.fromEntries(Object.entries(CASES).map(([tag, c]) => [tag, c.trusted] as const)),
    );
    // Every denial is a signature verdict, not a registry or configuration failure.
    for (const r of results.filter((x) => !x.trusted)) expect(r.code).toMatch(/^COSIGN_/);
  }, 120_000);
});
