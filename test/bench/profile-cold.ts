/**
 * A profiling aid for the cold cosign path (issue 15): CPU per cold key, and a `--cpu-prof` profile of
 * it. Pushes `N` images to a loopback docker-registry, each signed by the real cosign CLI (legacy
 * `.sig`), then runs test/bench/profile-cold-run.mjs under `node --cpu-prof` against the compiled
 * provider (`npm run build` first: dist/): it verifies each image once, by tag, one at a time (every key
 * a distinct digest, nothing cached), and prints the process CPU per key.
 *
 *   npm run build && npx tsx test/bench/profile-cold.ts [N=120] [profile dir=$TMPDIR/provenant-profiles]
 *
 * Open the `.cpuprofile` in Chrome DevTools (Performance) or speedscope.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { cosignKeyPair, cosignSign } from '../harness/cosign.ts';
import { pushRandomImage } from '../harness/images.ts';
import { makeTempDir } from '../harness/process.ts';
import { startDistributionRegistry } from '../harness/registry.ts';
import { inParallel } from './fixtures.ts';

const count = Number(process.argv[2] ?? 120);
const profileDir = path.resolve(process.argv[3] ?? path.join(tmpdir(), 'provenant-profiles'));

if (!existsSync('dist/service/index.js')) throw new Error('dist/ is missing: run `npm run build` first');
const dir = await makeTempDir('profile-cold');
const registry = await startDistributionRegistry();
try {
  const key = await cosignKeyPair(dir, 'profile');
  const refs = await inParallel(
    Array.from({ length: count }, (_, i) => `cold/app${i}`),
    2,
    async (repo) => {
      const image = await pushRandomImage(registry.url, repo, 'v1');
      await cosignSign(`${registry.host}/${repo}@${image.digest}`, key, 'legacy');
      return `${registry.host}/${repo}:v1`;
    },
  );
  const config = path.join(dir, 'provenant.yaml');
  await writeFile(
    config,
    [
      'validators:',
      `  - { name: signed, type: cosign, trustRoots: [{ name: default, key: ${JSON.stringify(key.publicKey)} }] }`,
      'policy:',
      '  - { pattern: "*:*", validator: signed, with: { verifyInTransparencyLog: false } }',
      `registries: [{ host: "${registry.host}", insecure: true }]`,
      'sigstore: { offline: true }',
    ].join('\n'),
  );
  const refsFile = path.join(dir, 'refs.json');
  await writeFile(refsFile, JSON.stringify(refs));
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, 'test/bench/profile-cold-run.mjs', config, refsFile],
    { maxBuffer: 1 << 20 },
  );
  process.stdout.write(stdout);
  console.log(`profile written to ${profileDir}`);
} finally {
  await registry.stop();
  await rm(dir, { recursive: true, force: true });
}
