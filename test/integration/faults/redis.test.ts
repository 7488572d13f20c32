/**
 * Redis faults under traffic, with a real redis-server and registry and two replicas (Runtimes, as
 * `provenant serve` builds them) sharing the cache: Redis stopped while both keep verifying, then
 * started again on the same address (verdicts are shared again); and a config change while Redis holds
 * verdicts of the old config (none of them is served). test/integration/cache/redis.test.ts has the
 * single-replica cases (an unreachable Redis from the start, forged entries).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig, type Config } from '../../../provider/src/config/index.ts';
import { Metrics } from '../../../provider/src/observability/index.ts';
import { Runtime } from '../../../provider/src/service/index.ts';
import { pushRandomImage, type PushedManifest } from '../../harness/images.ts';
import { freePort } from '../../harness/process.ts';
import { startRedis, type RedisServer } from '../../harness/redis.ts';
import { startDistributionRegistry, type RegistryServer } from '../../harness/registry.ts';

const HMAC_KEY = 'fault-test-hmac-key-0123456789-abcdef';
/** Short, so the traffic keeps meeting Redis (and the registry) instead of the in-memory cache. */
const TTL_SECONDS = 2;
const IMAGES = 6;
const OUTAGE_MS = 3000;

function config(registry: string, redisUrl: string, allowTeam: boolean): Config {
  return parseConfig(
    JSON.stringify({
      validators: [
        { name: 'allow', type: 'static', approve: true },
        { name: 'deny', type: 'static', approve: false },
      ],
      policy: [{ pattern: `${registry}/team/*`, validator: allowTeam ? 'allow' : 'deny' }],
      registries: [{ host: registry, insecure: true }],
      network: { requestTimeoutMs: 1000, maxRetries: 0 },
      cache: { ttlSeconds: TTL_SECONDS, redis: redisUrl, hmacKey: HMAC_KEY },
    }),
    'redis fault test',
    process.cwd(),
  );
}

async function cachedHits(metrics: Metrics): Promise<number> {
  const text = await metrics.registry.getSingleMetricAsString('provenant_verifications_total');
  return text
    .split('\n')
    .filter((l) => l.includes('cached="true"'))
    .reduce((sum, l) => sum + Number(l.split(' ').at(-1)), 0);
}

describe('Redis faults under traffic', () => {
  let redisPort: number;
  let redis: RedisServer;
  let registry: RegistryServer;
  let images: PushedManifest[];
  const replicas: { runtime: Runtime; metrics: Metrics }[] = [];
  const replica = (allowTeam = true): { runtime: Runtime; metrics: Metrics } => {
    const metrics = new Metrics(false);
    const runtime = new Runtime(config(registry.host, redis.url, allowTeam), 'redis fault test', {
      metrics,
      warn: () => {},
    });
    replicas.push({ runtime, metrics });
    return { runtime, metrics };
  };

  /** Every replica verifies every image in turn until stopped; what was not the expected verdict is kept. */
  function traffic(expected: () => 'approve' | 'deny' | 'either'): { stop: () => Promise<string[]> } {
    const problems: string[] = [];
    let running = true;
    const loop = async (r: Runtime): Promise<void> => {
      for (let i = 0; running; i++) {
        const image = images[i % images.length]!;
        const expect = expected();
        const outcome = await r.verifier.verify(image.reference);
        const approved = outcome.ok && outcome.verdict.digest === image.digest;
        const denied = !outcome.ok && outcome.error.code === 'POLICY_STATIC_DENY';
        const fine = expect === 'approve' ? approved : expect === 'deny' ? denied : approved || denied;
        if (!fine) problems.push(`${image.reference}: ${JSON.stringify(outcome).slice(0, 300)}`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    };
    const loops = replicas.map((r) => loop(r.runtime));
    return {
      stop: async () => {
        running = false;
        await Promise.all(loops);
        return problems;
      },
    };
  }

  beforeAll(async () => {
    redisPort = await freePort();
    [redis, registry] = await Promise.all([startRedis({ port: redisPort }), startDistributionRegistry()]);
    images = [];
    for (let i = 0; i < IMAGES; i++) images.push(await pushRandomImage(registry.url, 'team/app', `v${i}`));
    replica();
    replica();
  });
  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.runtime.close()));
    await Promise.all([redis?.stop(), registry?.stop()]);
  });

  it('verifies every image correctly while Redis is down, and shares verdicts again once it is back', async () => {
    const [a, b] = replicas as [(typeof replicas)[0], (typeof replicas)[0]];
    const load = traffic(() => 'approve');
    await redis.stop();
    await new Promise((resolve) => setTimeout(resolve, OUTAGE_MS));
    redis = await startRedis({ port: redisPort });
    // Shared again: an image A verifies is answered by B from Redis (B never saw it).
    await expect
      .poll(
        async () => {
          const fresh = await pushRandomImage(registry.url, 'team/app', `fresh-${Date.now()}`);
          const first = await a.runtime.verifier.verify(fresh.reference);
          const hits = await cachedHits(b.metrics);
          const second = await b.runtime.verifier.verify(fresh.reference);
          return first.ok && second.ok && second.verdict.digest === fresh.digest
            ? (await cachedHits(b.metrics)) - hits
            : -1;
        },
        { timeout: 20_000, interval: 500 },
      )
      .toBe(1);
    expect(await load.stop()).toEqual([]);
  });

  it('serves no verdict of the old config from Redis after a config change', async () => {
    const [a, b] = replicas as [(typeof replicas)[0], (typeof replicas)[0]];
    for (const image of images) {
      const outcome = await a.runtime.verifier.verify(image.reference);
      expect(outcome.ok).toBe(true);
    }
    // Answers begun while the replicas reload may carry either verdict; none begun after it the old one.
    let phase: 'approve' | 'either' | 'deny' = 'approve';
    const load = traffic(() => phase);
    phase = 'either';
    await Promise.all(
      [a, b].map((r) => r.runtime.replace(config(registry.host, redis.url, false), 'changed config')),
    );
    phase = 'deny';
    // A replica started with the new config meets the old verdicts in Redis too.
    const c = replica(false);
    for (const image of images) {
      const outcome = await c.runtime.verifier.verify(image.reference);
      expect(!outcome.ok && outcome.error.code).toBe('POLICY_STATIC_DENY');
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(await load.stop()).toEqual([]);
  });
});
