/**
 * The shared cache with a real redis-server: what one replica verified, another answers without the
 * registry; a Redis outage slows nothing down to a failure; transient failures are never shared.
 */
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig, type Config } from '../../../provider/src/config/index.ts';
import { Metrics } from '../../../provider/src/observability/index.ts';
import { Runtime } from '../../../provider/src/service/index.ts';
import { pushRandomImage } from '../../harness/images.ts';
import { freePort } from '../../harness/process.ts';
import { startRedis, type RedisServer } from '../../harness/redis.ts';
import { startDistributionRegistry, type RegistryServer } from '../../harness/registry.ts';

function config(registry: string, redisUrl: string): Config {
  return parseConfig(
    JSON.stringify({
      validators: [{ name: 'allow', type: 'static', approve: true }],
      policy: [{ pattern: `${registry}/*`, validator: 'allow' }],
      registries: [{ host: registry, insecure: true }],
      network: { requestTimeoutMs: 1000, maxRetries: 0 },
      cache: { ttlSeconds: 60, redis: redisUrl },
    }),
    'redis test',
    process.cwd(),
  );
}

function cachedCount(metrics: Metrics, cached: 'true' | 'false'): Promise<number> {
  return metrics.registry.getSingleMetricAsString('provenant_verifications_total').then((text) =>
    text
      .split('\n')
      .filter((l) => l.includes(`cached="${cached}"`))
      .reduce((sum, l) => sum + Number(l.split(' ').at(-1)), 0),
  );
}

describe('shared Redis cache', () => {
  let redis: RedisServer;
  let registry: RegistryServer;
  const runtimes: Runtime[] = [];
  const warnings: string[] = [];

  const replica = (url: string, registryHost = registry.host): { runtime: Runtime; metrics: Metrics } => {
    const metrics = new Metrics(false);
    const runtime = new Runtime(config(registryHost, url), 'redis test', {
      metrics,
      warn: (m) => warnings.push(m),
    });
    runtimes.push(runtime);
    return { runtime, metrics };
  };

  beforeAll(async () => {
    [redis, registry] = await Promise.all([
      startRedis({ password: 's3cret-pass' }),
      startDistributionRegistry(),
    ]);
  });
  afterAll(async () => {
    await Promise.all(runtimes.map((r) => r.close()));
    await Promise.all([redis?.stop(), registry?.stop()]);
  });

  it('answers on a second replica from what the first verified, without asking the registry', async () => {
    const image = await pushRandomImage(registry.url, 'team/app', 'v1');
    const a = replica(redis.url);
    const b = replica(redis.url);
    // Let both connect.
    await new Promise((r) => setTimeout(r, 300));
    const first = await a.runtime.verifier.verify(image.reference);
    expect(first.ok && first.verdict.digest).toBe(image.digest);
    await registry.stop(); // from now on only a cache can answer
    const second = await b.runtime.verifier.verify(image.reference);
    expect(second.ok && second.verdict.digest).toBe(image.digest);
    expect(await cachedCount(b.metrics, 'true')).toBe(1);
    expect(await cachedCount(b.metrics, 'false')).toBe(0);
    registry = await startDistributionRegistry();
  });

  it('never shares a transient failure: nothing about it is written to Redis', async () => {
    const down = `127.0.0.1:${await freePort()}`; // nobody listens: REGISTRY_UNREACHABLE, transient
    const a = replica(redis.url, down);
    await new Promise((r) => setTimeout(r, 300));
    const failed = await a.runtime.verifier.verify(`${down}/team/app:v1`);
    expect(!failed.ok && failed.error.code).toBe('REGISTRY_UNREACHABLE');
    const inspector = createClient({ url: redis.url });
    await inspector.connect();
    try {
      const keys = await inspector.keys('provenant:v1:*');
      expect(keys.length).toBeGreaterThan(0); // the first test's verdict is there
      expect(keys.filter((k) => k.includes(down))).toEqual([]);
    } finally {
      await inspector.close();
    }
  });

  it('keeps verifying when Redis is unreachable, and reports it without the password', async () => {
    const image = await pushRandomImage(registry.url, 'team/other', 'v1');
    const { runtime } = replica(`redis://:hunter2-secret@127.0.0.1:${await freePort()}`);
    await new Promise((r) => setTimeout(r, 300));
    const started = performance.now();
    const outcome = await runtime.verifier.verify(image.reference);
    expect(outcome.ok && outcome.verdict.digest).toBe(image.digest);
    expect(performance.now() - started).toBeLessThan(1000);
    expect(warnings.some((w) => w.startsWith('redis cache unavailable'))).toBe(true);
    expect(warnings.join('\n')).not.toContain('hunter2');
  });
});
