/**
 * Three replicas sharing one real redis-server, verifying real cosign signatures against a real
 * docker-registry behind the counting proxy: what any one of them verified, the other two answer warm,
 * with no registry request at all; and a config change rolled out one replica at a time (the trusted
 * key rotated) is never answered from verdicts made under the other config, in either direction.
 * test/integration/cache/redis.test.ts has the two-replica basics (password file, forged entries, Redis
 * unreachable); test/integration/faults/redis.test.ts Redis stopped under traffic and a config change
 * applied to every replica at once.
 */
import { rm } from 'node:fs/promises';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseConfig, type Config } from '../../../provider/src/config/index.ts';
import { Runtime } from '../../../provider/src/service/index.ts';
import { cosignKeyPair, cosignSign, type CosignKey } from '../../harness/cosign.ts';
import { startCountingProxy, type CountingProxy } from '../../harness/counting-proxy.ts';
import { pushRandomImage, type PushedManifest } from '../../harness/images.ts';
import { makeTempDir } from '../../harness/process.ts';
import { startRedis, type RedisServer } from '../../harness/redis.ts';
import { startDistributionRegistry, type RegistryServer } from '../../harness/registry.ts';

const HMAC_KEY = 'replicas-test-hmac-key-0123456789-abcdef';
/** Images per replica in the first test: each replica verifies its own, then everyone's. */
const IMAGES_PER_REPLICA = 4;
const WAIT = { timeout: 10_000, interval: 25 };

describe('three replicas sharing Redis', () => {
  let dir: string;
  let redis: RedisServer;
  let registry: RegistryServer;
  let proxy: CountingProxy;
  let inspector: ReturnType<typeof createClient>;
  let oldKey: CosignKey;
  let newKey: CosignKey;
  /** Signed by the old key only. */
  let images: PushedManifest[];
  const replicas: Runtime[] = [];

  /** `127.0.0.1:PORT/…` through the proxy: what the replicas ask about. */
  const viaProxy = (image: PushedManifest): string => image.reference.replace(registry.host, proxy.host);

  function config(trusted: CosignKey): Config {
    return parseConfig(
      JSON.stringify({
        validators: [
          { name: 'deny', type: 'static' },
          { name: 'signed', type: 'cosign', trustRoots: [{ name: 'default', key: trusted.publicKey }] },
        ],
        policy: [
          { pattern: '*:*', validator: 'deny' },
          { pattern: `${proxy.host}/team/*`, validator: 'signed', with: { verifyInTransparencyLog: false } },
        ],
        registries: [{ host: proxy.host, insecure: true }],
        sigstore: { offline: true },
        cache: { ttlSeconds: 300, negativeTtlSeconds: 300, redis: redis.url, hmacKey: HMAC_KEY },
      }),
      'replicas test',
      process.cwd(),
    );
  }

  /** Clients connected to redis-server right now (the inspector included). */
  const connectedClients = async (): Promise<number> =>
    (await inspector.clientList()).filter((c) => c.flags === 'N').length;

  beforeAll(async () => {
    dir = await makeTempDir('scale-replicas');
    [redis, registry] = await Promise.all([startRedis(), startDistributionRegistry()]);
    proxy = await startCountingProxy(registry.url);
    inspector = createClient({ url: redis.url });
    await inspector.connect();
    [oldKey, newKey] = await Promise.all([cosignKeyPair(dir, 'old'), cosignKeyPair(dir, 'new')]);
    images = [];
    for (let i = 0; i < 3 * IMAGES_PER_REPLICA + 2; i++) {
      const image = await pushRandomImage(registry.url, `team/app${i}`, 'v1');
      await cosignSign(image.reference.replace(':v1', `@${image.digest}`), oldKey, 'legacy');
      images.push(image);
    }
    // Each replica is used once redis-server sees its connection (lookups before it are misses).
    for (let i = 0; i < 3; i++) {
      const before = await connectedClients();
      replicas.push(new Runtime(config(oldKey), 'replicas test', { warn: () => {} }));
      await vi.waitFor(async () => expect(await connectedClients()).toBe(before + 1), WAIT);
    }
  }, 120_000);

  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.close()));
    await inspector?.close();
    await proxy?.close();
    await Promise.all([redis?.stop(), registry?.stop()]);
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  /** Each replica's verdict on `image`: its digest when approved, else the error code. */
  const verdicts = (image: PushedManifest, on: readonly Runtime[] = replicas): Promise<string[]> =>
    Promise.all(
      on.map(async (r) => {
        const outcome = await r.verifier.verify(viaProxy(image));
        return outcome.ok ? outcome.verdict.digest : outcome.error.code;
      }),
    );

  it('answers, on the other two replicas, every image one of them verified, without a registry request', async () => {
    const shared = images.slice(0, 3 * IMAGES_PER_REPLICA);
    proxy.take();
    for (const [i, replica] of replicas.entries()) {
      for (const image of shared.slice(i * IMAGES_PER_REPLICA, (i + 1) * IMAGES_PER_REPLICA))
        expect(await verdicts(image, [replica])).toEqual([image.digest]);
    }
    expect(proxy.take().total).toBeGreaterThanOrEqual(shared.length);
    for (const image of shared)
      expect(await verdicts(image)).toEqual([image.digest, image.digest, image.digest]);
    expect(proxy.take().log.map((r) => `${r.method} ${r.path}`)).toEqual([]);
  });

  it('never answers across a config change rolled out one replica at a time, in either direction', async () => {
    const [a, b, c] = replicas as [Runtime, Runtime, Runtime];
    const [seen, unseen] = images.slice(-2) as [PushedManifest, PushedManifest];
    expect(await verdicts(seen)).toEqual([seen.digest, seen.digest, seen.digest]);
    proxy.take();

    // A now trusts only the new key: the old key's signatures no longer admit anything, on A.
    await a.replace(config(newKey), 'key rotated');
    expect(await verdicts(seen)).toEqual(['COSIGN_SIGNATURE_INVALID', seen.digest, seen.digest]);
    // Only A asked the registry (B and C answered from their cache): it verified instead of reusing.
    expect(proxy.take().total).toBeGreaterThan(0);
    // An image A judges first under the new config: B and C, still on the old one, do not take A's denial.
    expect(await verdicts(unseen, [a])).toEqual(['COSIGN_SIGNATURE_INVALID']);
    expect(await verdicts(unseen, [b, c])).toEqual([unseen.digest, unseen.digest]);

    // The rollout completes: B and C now deny both, from A's verdicts in Redis, asking the registry nothing.
    proxy.take();
    await Promise.all([b.replace(config(newKey), 'key rotated'), c.replace(config(newKey), 'key rotated')]);
    for (const image of [seen, unseen])
      expect(await verdicts(image)).toEqual(Array(3).fill('COSIGN_SIGNATURE_INVALID'));
    expect(proxy.take().total).toBe(0);
  });
});
