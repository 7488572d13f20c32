/** `provenant verify --explain`: why an image was admitted or denied, step by step. */
import { execFile } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cosignKeyPair, cosignSign } from '../../harness/cosign.ts';
import { pushRandomImage, type PushedManifest } from '../../harness/images.ts';
import { makeTempDir } from '../../harness/process.ts';
import { PROJECT_ROOT } from '../../harness/provenant.ts';
import { startDistributionRegistry, type RegistryServer } from '../../harness/registry.ts';

const run = promisify(execFile);

async function explain(config: string, image: string): Promise<{ code: number; stdout: string }> {
  try {
    const { stdout } = await run(
      'node',
      ['bin/provenant.mjs', 'verify', '--explain', image, '--config', config],
      {
        cwd: PROJECT_ROOT,
      },
    );
    return { code: 0, stdout };
  } catch (err) {
    const e = err as { code: number; stdout: string };
    return { code: e.code, stdout: e.stdout };
  }
}

describe('provenant verify --explain', () => {
  let registry: RegistryServer;
  let dir: string;
  let config: string;
  let image: PushedManifest;

  beforeAll(async () => {
    registry = await startDistributionRegistry();
    dir = await makeTempDir('explain');
    const release = await cosignKeyPair(dir, 'release');
    const intruder = await cosignKeyPair(dir, 'intruder');
    image = await pushRandomImage(registry.url, 'team/app', 'v1');
    await cosignSign(`${registry.host}/team/app@${image.digest}`, intruder);
    config = path.join(dir, 'config.yaml');
    await writeFile(
      config,
      `validators:
  - { name: deny, type: static, approve: false }
  - name: team-cosign
    type: cosign
    trustRoots:
      - name: release
        key: |
${release.publicKey.replace(/^/gm, '          ')}
policy:
  - { pattern: "*:*", validator: deny }
  - { pattern: "${registry.host}/*", validator: deny }
  - { pattern: "${registry.host}/team/*", validator: team-cosign, with: { trustRoot: release, verifyInTransparencyLog: false } }
registries:
  - { host: "${registry.host}", insecure: true }
`,
    );
  }, 120_000);

  afterAll(async () => {
    await registry?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('names the rule and its ranking, the validator, the fetched signature and why it did not count', async () => {
    const { code, stdout } = await explain(config, image.reference);
    expect(code).toBe(1);
    const lines = stdout.split('\n').map((l) => l.trim());
    expect(lines[0]).toBe(image.reference);
    expect(stdout).toContain(`reference ${image.reference} is ${image.reference}`);
    expect(stdout).toContain('cache     no cached verdict');
    // Ranking: three rules match; the most components win.
    expect(stdout).toContain('rule      rule 0 "*:*" matches');
    expect(stdout).toMatch(
      /rule 2 ".*\/team\/\*" matches; against rule 1 ".*\/\*": 1\. components: 3 vs 2 → rule 2 leads/,
    );
    expect(stdout).toContain(`decides: rule 2 "${registry.host}/team/*" → validator "team-cosign"`);
    expect(stdout).toContain(
      'validator cosign validator "team-cosign"; trust roots: release (key); rule selects trustRoot "release"',
    );
    // What was fetched from where: the tag, then the signature tag.
    expect(stdout).toContain(`fetch     GET ${registry.url}/v2/team/app/manifests/v1 → 200`);
    expect(stdout).toContain(`/v2/team/app/manifests/${image.digest.replace(':', '-')}.sig → 200`);
    expect(stdout).toMatch(/signature 1 cosign signature\(s\) found/);
    expect(stdout).toMatch(/signature .*\.sig.*: does not count for trust root "release": signature: /);
    expect(stdout).toContain('signature policy: not met: no checked trust root has a valid signature');
    expect(stdout).toMatch(/verdict {3}denied: COSIGN_SIGNATURE_INVALID: /);
  }, 60_000);

  it('says when a cached verdict would have answered', async () => {
    // The CLI's cache lives for one run: a second image in the same run finds the first one cached.
    const { stdout } = await run(
      'node',
      [
        'bin/provenant.mjs',
        'verify',
        '--explain',
        '--json',
        image.reference,
        image.reference,
        '--config',
        config,
      ],
      { cwd: PROJECT_ROOT },
    ).catch((err: { stdout: string }) => err);
    const [first, second] = JSON.parse(stdout) as { steps: { kind: string; text: string }[] }[];
    expect(first?.steps.find((s) => s.kind === 'cache')?.text).toMatch(/^no cached verdict/);
    expect(second?.steps.find((s) => s.kind === 'cache')?.text).toBe(
      'a cached verdict (COSIGN_SIGNATURE_INVALID) would answer; verified again to explain it',
    );
  }, 60_000);
});
