/**
 * No secret reaches a log line or an error message: the real `provenant serve` (at start and on each
 * reload) and `provenant verify` run with a config holding a secret wherever a config can hold one,
 * broken in many ways, and everything they print is searched for every secret.
 */
import { execFile } from 'node:child_process';
import { rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { brokenSecretConfigs, secretConfig, SECRETS } from '../../../provider/test/config/secrets.ts';
import { pushRandomImage } from '../../harness/images.ts';
import { makeTempDir } from '../../harness/process.ts';
import {
  devCertAgent,
  PROJECT_ROOT,
  startProvenant,
  type RunningProvenant,
} from '../../harness/provenant.ts';
import { startDistributionRegistry, type RegistryServer } from '../../harness/registry.ts';

const run = promisify(execFile);
/** Processes started at once: each is a node process compiling the sources (seconds of CPU). */
const CONCURRENCY = 3;
/**
 * Each process start costs seconds, so starts and `verify` runs take one variant of each kind of
 * breakage; the reload test (one process) and the unit test (provider/test/config/problems.test.ts)
 * take them all.
 */
const PROCESS_VARIANTS = [
  'an unclosed flow map on a password line',
  'a bad escape in a quoted password',
  'a tab before the Redis URL',
  'a password that is a number',
  'a password glued to its key (one YAML key)',
  'an HMAC key that is too short',
  "Connaisseur's username/password validator auth",
];
const PROCESS_TIMEOUT_MS = 300_000;
const WAIT = { timeout: 10_000, interval: 50 };

interface CliResult {
  code: number;
  output: string;
}

async function provenant(...args: string[]): Promise<CliResult> {
  try {
    const { stdout, stderr } = await run('node', ['bin/provenant.mjs', ...args], {
      cwd: PROJECT_ROOT,
      timeout: 60_000,
    });
    return { code: 0, output: stdout + stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, output: e.stdout + e.stderr };
  }
}

async function inBatches<T, R>(
  items: readonly T[],
  work: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results: R[] = [];
  for (let i = 0; i < items.length; i += CONCURRENCY)
    results.push(...(await Promise.all(items.slice(i, i + CONCURRENCY).map((item, j) => work(item, i + j)))));
  return results;
}

/** Every secret (and the broken forms the variants give some of them) found in `text`. */
function secretsIn(text: string): string[] {
  const secrets = [...Object.values(SECRETS), '1234567890987', SECRETS.hmacKey.slice(0, 20)];
  return secrets.filter((s) => text.includes(s));
}

describe('secrets in output', () => {
  let registry: RegistryServer;
  let dir: string;
  let image: string;
  let broken: [string, string][];
  let sample: [string, string][];

  beforeAll(async () => {
    // The registry wants other credentials than the config's, so verification meets a 401 on the way.
    registry = await startDistributionRegistry({ htpasswd: { username: 'robot', password: 'the-real-one' } });
    dir = await makeTempDir('secrets');
    image = `${registry.host}/team/app:v1`;
    await pushRandomImage(`http://robot:the-real-one@${registry.host}`, 'team/app', 'v1').catch(
      () => undefined,
    );
    broken = brokenSecretConfigs({ registry: registry.host });
    sample = broken.filter(([title]) => PROCESS_VARIANTS.includes(title));
    expect(sample.length).toBe(PROCESS_VARIANTS.length);
  });
  afterAll(async () => {
    await registry?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it(
    'provenant verify prints no secret, for a good config or a broken one',
    async () => {
      const good = path.join(dir, 'good.yaml');
      await writeFile(good, secretConfig({ registry: registry.host }));
      const verified = await provenant('verify', image, '--config', good);
      expect(verified.code).not.toBe(0); // the registry refused the configured password
      expect(secretsIn(verified.output)).toEqual([]);
      const results = await inBatches(sample, async ([title, text], i) => {
        const file = path.join(dir, `verify-${i}.yaml`);
        await writeFile(file, text);
        return { title, ...(await provenant('verify', image, '--config', file)) };
      });
      for (const r of results) {
        expect(r.code, r.title).toBe(2);
        expect(r.output, r.title).toContain('CONFIG_INVALID');
        expect(secretsIn(r.output), r.title).toEqual([]);
      }
    },
    PROCESS_TIMEOUT_MS,
  );

  it(
    'provenant serve prints no secret when it refuses to start on a broken config',
    async () => {
      const results = await inBatches(sample, async ([title, text], i) => {
        const file = path.join(dir, `serve-${i}.yaml`);
        await writeFile(file, text);
        return { title, ...(await provenant('serve', '--config', file)) };
      });
      for (const r of results) {
        expect(r.code, r.title).toBe(2);
        expect(r.output, r.title).toContain('CONFIG_INVALID');
        expect(secretsIn(r.output), r.title).toEqual([]);
      }
    },
    PROCESS_TIMEOUT_MS,
  );

  describe('a running provenant serve', () => {
    let server: RunningProvenant;
    let config: string;

    beforeAll(async () => {
      config = path.join(dir, 'serve.yaml');
      await writeFile(config, secretConfig({ registry: registry.host }));
      server = await startProvenant(['node', 'bin/provenant.mjs', 'serve', '--config', config]);
    });
    afterAll(async () => {
      await server?.stop();
    });

    const refusals = (): number => server.output().split('config reload refused').length - 1;

    it('prints no secret while it reports an unreachable Redis and meets refused credentials', async () => {
      const dispatcher = devCertAgent(server);
      try {
        const res = await request(`${server.url}/v1/mutate`, {
          method: 'POST',
          dispatcher,
          body: JSON.stringify({
            apiVersion: 'externaldata.gatekeeper.sh/v1beta1',
            kind: 'ProviderRequest',
            request: { keys: [image] },
          }),
        });
        const reply = (await res.body.json()) as { response: { items: { error: string }[] } };
        expect(reply.response.items[0]?.error).toMatch(/^REGISTRY_UNAUTHORIZED/);
        expect(secretsIn(JSON.stringify(reply))).toEqual([]);
      } finally {
        await dispatcher.close();
      }
      await vi.waitFor(() => expect(server.output()).toContain('redis cache unavailable'), WAIT);
      expect(secretsIn(server.output())).toEqual([]);
    });

    it('prints no secret when each broken config is refused on reload', async () => {
      for (const [title, text] of broken) {
        const before = refusals();
        // Replaced in one step, as Kubernetes swaps a ConfigMap, so each version is read whole.
        await writeFile(`${config}.next`, text);
        await rename(`${config}.next`, config);
        await vi.waitFor(() => expect(refusals(), title).toBe(before + 1), WAIT);
      }
      expect(refusals()).toBe(broken.length);
      expect(server.output()).toContain('CONFIG_INVALID');
      expect(secretsIn(server.output())).toEqual([]);
    });
  });
});
