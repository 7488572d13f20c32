/**
 * The shared cache with a real redis-server: what one replica verified, another answers without the
 * registry; a Redis outage slows nothing down to a failure; transient failures are never shared; and
 * Redis is a trust boundary: an entry written by anyone without the HMAC key, or moved from another
 * key, is refused, counted and logged, and the image is verified for real.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseConfig, type Config } from '../../../provider/src/config/index.ts';
import { Metrics } from '../../../provider/src/observability/index.ts';
import { parseReference } from '../../../provider/src/reference/index.ts';
import { Runtime } from '../../../provider/src/service/index.ts';
import { pushRandomImage } from '../../harness/images.ts';
import { freePort, makeTempDir } from '../../harness/process.ts';
import { startRedis, type RedisServer } from '../../harness/redis.ts';
import { startDistributionRegistry, type RegistryServer } from '../../harness/registry.ts';

const HMAC_KEY = 'redis-test-hmac-key-0123456789-abcdef';
const REDIS_PASSWORD = 's3cret-pass';
const WAIT = { timeout: 10_000, interval: 25 };

/** Images under `<registry>/team/` are allowed, under `<registry>/denied/` denied. */
function config(registry: string, redisUrl: string, hmacKey = HMAC_KEY): Config {
  return parseConfig(
    JSON.stringify({
      validators: [
        { name: 'allow', type: 'static', approve: true },
        { name: 'deny', type: 'static', approve: false },
      ],
      policy: [
        { pattern: `${registry}/team/*`, validator: 'allow' },
        { pattern: `${registry}/denied/*`, validator: 'deny' },
      ],
      registries: [{ host: registry, insecure: true }],
      network: { requestTimeoutMs: 1000, maxRetries: 0 },
      cache: { ttlSeconds: 60, redis: redisUrl, hmacKey },
    }),
    'redis test',
    process.cwd(),
  );
}

function metricSum(metrics: Metrics, name: string, label: string): Promise<number> {
  return metrics.registry.getSingleMetricAsString(name).then((text) =>
    text
      .split('\n')
      .filter((l) => l.includes(label))
      .reduce((sum, l) => sum + Number(l.split(' ').at(-1)), 0),
  );
}

const cachedCount = (metrics: Metrics, cached: 'true' | 'false'): Promise<number> =>
  metricSum(metrics, 'provenant_verifications_total', `cached="${cached}"`);

describe('shared Redis cache', () => {
  let redis: RedisServer;
  let registry: RegistryServer;
  let inspector: ReturnType<typeof createClient>;
  const runtimes: Runtime[] = [];
  const warnings: string[] = [];

  /** Clients connected to redis-server right now, the inspector included. */
  const connectedClients = async (): Promise<number> =>
    (await inspector.clientList()).filter((c) => c.flags === 'N').length;

  /** A replica, returned once redis-server sees its connection. */
  const replica = async (
    registryHost = registry.host,
    hmacKey = HMAC_KEY,
  ): Promise<{ runtime: Runtime; metrics: Metrics }> => {
    const before = await connectedClients();
    const metrics = new Metrics(false);
    const runtime = new Runtime(config(registryHost, redis.url, hmacKey), 'redis test', {
      metrics,
      warn: (m) => warnings.push(m),
    });
    runtimes.push(runtime);
    await vi.waitFor(async () => expect(await connectedClients()).toBe(before + 1), WAIT);
    return { runtime, metrics };
  };

  /** Every provenant key in Redis and its raw value. */
  const entries = async (): Promise<Map<string, string>> => {
    const keys = await inspector.keys('provenant:*');
    const values = await Promise.all(keys.map((k) => inspector.get(k)));
    return new Map(keys.map((k, i) => [k, values[i] ?? '']));
  };

  /** The Redis key a replica with the same config uses for `image`, from one it wrote for `written`. */
  const keyFor = async (image: string, written: string): Promise<string> => {
    const normalized = parseReference(written).normalized;
    const key = [...(await entries()).keys()].find((k) => k.endsWith(`|${normalized}`));
    if (key === undefined) throw new Error(`no Redis entry for ${normalized}`);
    return `${key.slice(0, key.length - normalized.length)}${parseReference(image).normalized}`;
  };

  beforeAll(async () => {
    [redis, registry] = await Promise.all([
      startRedis({ password: REDIS_PASSWORD }),
      startDistributionRegistry(),
    ]);
    inspector = createClient({ url: redis.url });
    await inspector.connect();
  });
  afterAll(async () => {
    await Promise.all(runtimes.map((r) => r.close()));
    await inspector?.close();
    await Promise.all([redis?.stop(), registry?.stop()]);
  });

  it('answers on a second replica from what the first verified, without asking the registry', async () => {
    const image = await pushRandomImage(registry.url, 'team/app', 'v1');
    const a = await replica();
    const b = await replica();
    const first = await a.runtime.verifier.verify(image.reference);
    expect(first.ok && first.verdict.digest).toBe(image.digest);
    const key = await keyFor(image.reference, image.reference);
    expect((await entries()).has(key)).toBe(true);
    await registry.stop(); // from now on only a cache can answer
    const second = await b.runtime.verifier.verify(image.reference);
    expect(second.ok && second.verdict.digest).toBe(image.digest);
    expect(await cachedCount(b.metrics, 'true')).toBe(1);
    expect(await cachedCount(b.metrics, 'false')).toBe(0);
    registry = await startDistributionRegistry();
  });

  it('authenticates with the password of cache.redisPasswordFile, a URL without one', async () => {
    const dir = await makeTempDir('redis-password');
    const passwordFile = path.join(dir, 'redis-password');
    await writeFile(passwordFile, `${REDIS_PASSWORD}\n`); // as a mounted Secret may end it
    const url = redis.url.replace(`:${encodeURIComponent(REDIS_PASSWORD)}@`, '');
    expect(url).not.toContain(REDIS_PASSWORD);
    const base = config(registry.host, url);
    const before = await connectedClients();
    const runtime = new Runtime(
      { ...base, cache: { ...base.cache, redisPasswordFile: passwordFile } },
      'redis test',
    );
    runtimes.push(runtime);
    await vi.waitFor(async () => expect(await connectedClients()).toBe(before + 1), WAIT);
    const image = await pushRandomImage(registry.url, 'team/app', 'password-file');
    expect((await runtime.verifier.verify(image.reference)).ok).toBe(true);
    await vi.waitFor(
      async () => expect((await entries()).has(await keyFor(image.reference, image.reference))).toBe(true),
      WAIT,
    );
  });

  it('never shares a transient failure: nothing about it is written to Redis', async () => {
    const down = `127.0.0.1:${await freePort()}`; // nobody listens: REGISTRY_UNREACHABLE, transient
    const { runtime } = await replica(down);
    const before = await entries();
    const failed = await runtime.verifier.verify(`${down}/team/app:v1`);
    expect(!failed.ok && failed.error.code).toBe('REGISTRY_UNREACHABLE');
    // The same replica does share a verdict it reaches (a static deny needs no registry).
    const denied = await runtime.verifier.verify(`${down}/denied/app:v1`);
    expect(!denied.ok && denied.error.code).toBe('POLICY_STATIC_DENY');
    const after = [...(await entries()).keys()].filter((k) => !before.has(k));
    expect(after).toEqual([`${await keyFor(`${down}/denied/app:v1`, `${down}/denied/app:v1`)}`]);
  });

  describe('forged entries', () => {
    it.each([
      ['a plain verdict written without the key', (verdict: string) => verdict],
      [
        'a verdict under an HMAC made with another key',
        (verdict: string) => `AAAA.${Date.now() + 60_000}.${verdict}`,
      ],
    ])('refuses %s: the image is verified for real and denied', async (_title, forge) => {
      const allowed = await pushRandomImage(registry.url, 'team/real', 'v1');
      const denied = await pushRandomImage(registry.url, 'denied/evil', 'v1');
      const { runtime, metrics } = await replica();
      const ok = await runtime.verifier.verify(allowed.reference);
      expect(ok.ok).toBe(true);
      const verdict = JSON.stringify({
        verdict: {
          image: denied.reference,
          digest: denied.digest,
          validator: 'allow',
          signers: [],
          rule: `${registry.host}/*`,
          mode: 'mutate',
        },
      });
      await inspector.set(await keyFor(denied.reference, allowed.reference), forge(verdict), { EX: 60 });
      const outcome = await runtime.verifier.verify(denied.reference);
      expect(!outcome.ok && outcome.error.code).toBe('POLICY_STATIC_DENY');
      expect(await metricSum(metrics, 'provenant_cache_entries_rejected_total', 'reason="mac"')).toBe(1);
    });

    it("refuses another image's genuine entry moved to the denied image's key", async () => {
      const allowed = await pushRandomImage(registry.url, 'team/moved', 'v1');
      const denied = await pushRandomImage(registry.url, 'denied/moved', 'v1');
      const { runtime, metrics } = await replica();
      expect((await runtime.verifier.verify(allowed.reference)).ok).toBe(true);
      const genuine = (await entries()).get(await keyFor(allowed.reference, allowed.reference));
      expect(genuine).toBeDefined();
      await inspector.set(await keyFor(denied.reference, allowed.reference), genuine ?? '', { EX: 60 });
      const outcome = await runtime.verifier.verify(denied.reference);
      expect(!outcome.ok && outcome.error.code).toBe('POLICY_STATIC_DENY');
      expect(await metricSum(metrics, 'provenant_cache_entries_rejected_total', 'reason="mac"')).toBe(1);
      expect(warnings.some((w) => w.startsWith('redis cache entry refused'))).toBe(true);
      expect(warnings.join('\n')).not.toContain(HMAC_KEY);
      expect(warnings.join('\n')).not.toContain(REDIS_PASSWORD);
    });

    it('refuses entries of a replica with another HMAC key, and verifies instead', async () => {
      const image = await pushRandomImage(registry.url, 'team/otherkey', 'v1');
      const a = await replica(registry.host, 'another-hmac-key-0123456789-abcdefgh');
      const b = await replica();
      expect((await a.runtime.verifier.verify(image.reference)).ok).toBe(true);
      const second = await b.runtime.verifier.verify(image.reference);
      expect(second.ok && second.verdict.digest).toBe(image.digest);
      expect(await cachedCount(b.metrics, 'true')).toBe(0);
      expect(await metricSum(b.metrics, 'provenant_cache_entries_rejected_total', 'reason="mac"')).toBe(1);
    });
  });

  it('keeps verifying when Redis is unreachable, and reports it without the password', async () => {
    const image = await pushRandomImage(registry.url, 'team/other', 'v1');
    const url = `redis://:hunter2-secret@127.0.0.1:${await freePort()}`;
    const unreachable: string[] = [];
    const runtime = new Runtime(config(registry.host, url), 'redis test', {
      warn: (m) => unreachable.push(m),
    });
    runtimes.push(runtime);
    await vi.waitFor(
      () => expect(unreachable.some((w) => w.startsWith('redis cache unavailable'))).toBe(true),
      WAIT,
    );
    const started = performance.now();
    const outcome = await runtime.verifier.verify(image.reference);
    expect(outcome.ok && outcome.verdict.digest).toBe(image.digest);
    expect(performance.now() - started).toBeLessThan(1000);
    expect(unreachable.join('\n')).not.toContain('hunter2');
  });
});
