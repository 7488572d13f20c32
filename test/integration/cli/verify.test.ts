/** `provenant verify`: the server's code path from a terminal, with its exit codes. */
import { execFile } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pushRandomImage, type PushedManifest } from '../../harness/images.ts';
import { makeTempDir } from '../../harness/process.ts';
import { PROJECT_ROOT } from '../../harness/provenant.ts';
import { startDistributionRegistry, type RegistryServer } from '../../harness/registry.ts';

const run = promisify(execFile);

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

async function provenant(...args: string[]): Promise<CliResult> {
  try {
    const { stdout, stderr } = await run('node', ['bin/provenant.mjs', ...args], { cwd: PROJECT_ROOT });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('provenant verify', () => {
  let registry: RegistryServer;
  let dir: string;
  let config: string;
  let image: PushedManifest;

  beforeAll(async () => {
    registry = await startDistributionRegistry();
    dir = await makeTempDir('cli');
    image = await pushRandomImage(registry.url, 'trusted/app', 'v2');
    config = path.join(dir, 'config.yaml');
    await writeFile(
      config,
      `validators:
  - { name: deny, type: static, approve: false }
  - { name: allow, type: static, approve: true }
policy:
  - { pattern: "*:*", validator: deny }
  - { pattern: "${registry.host}/trusted/*", validator: allow }
  - { pattern: "127.0.0.1:1/*", validator: allow }
registries:
  - { host: "${registry.host}", insecure: true }
  - { host: "127.0.0.1:1", insecure: true }
`,
    );
  });
  afterAll(async () => {
    await registry?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('exits 0 and prints the pinned reference for a trusted image', async () => {
    const result = await provenant('verify', `${registry.host}/trusted/app:v2`, '--config', config);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`-> ${registry.host}/trusted/app:v2@${image.digest}`);
  });

  it('exits 1 when any image is not trusted, and says why in --json', async () => {
    const result = await provenant(
      'verify',
      `${registry.host}/trusted/app:v2`,
      'busybox',
      '--config',
      config,
      '--json',
    );
    expect(result.code).toBe(1);
    const [trusted, denied] = JSON.parse(result.stdout) as {
      trusted: boolean;
      digest?: string;
      code?: string;
    }[];
    expect(trusted).toMatchObject({ trusted: true, digest: image.digest });
    expect(denied).toMatchObject({ trusted: false, code: 'POLICY_STATIC_DENY' });
  });

  it('exits 2 when the registry cannot be reached (a system error, not a verdict)', async () => {
    const result = await provenant('verify', '127.0.0.1:1/app:1', '--config', config);
    expect(result.code).toBe(2);
    expect(result.stdout).toContain('REGISTRY_UNREACHABLE');
  });

  it('exits 2 and lists every problem of a broken config', async () => {
    const broken = path.join(dir, 'broken.yaml');
    await writeFile(broken, 'validators: [{ name: x, type: magic }]\npolicy: []\nextra: 1\n');
    const result = await provenant('verify', 'nginx', '--config', broken);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('CONFIG_INVALID');
    expect(result.stderr).toContain('/validators/0/type');
    expect(result.stderr).toContain('/policy');
    // Unknown fields are pointed at by line, never quoted (a broken file can turn a secret into a key).
    expect(result.stderr).toContain('/: unknown field at line 3, column 1');
  });

  it('exits 2 with usage help for an unknown command', async () => {
    const result = await provenant('frobnicate');
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('unknown command "frobnicate"');
  });
});
