/**
 * `npm run bench`: latency of the provider over HTTPS against a real docker-registry on loopback.
 *   cold: a 10-image ProviderRequest whose images nobody has asked about (one HEAD per image);
 *   warm: the same request again (answers from the cache).
 * Prints p50 / p95 / max per scenario. Figures, not assertions: tests check behaviour.
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { Agent, request } from 'undici';
import { parseConfig } from '../../provider/src/config/index.ts';
import { startServer } from '../../provider/src/http/index.ts';
import { Metrics, createLogger } from '../../provider/src/observability/index.ts';
import { Runtime } from '../../provider/src/service/index.ts';
import { pushRandomImage } from '../harness/images.ts';
import { startDistributionRegistry } from '../harness/registry.ts';

const IMAGES_PER_REQUEST = 10;
const COLD_ROUNDS = 20;
const WARM_ROUNDS = 500;

function summary(name: string, samplesMs: number[]): string {
  const sorted = [...samplesMs].sort((a, b) => a - b);
  const at = (q: number): string =>
    (sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN).toFixed(2);
  return `${name.padEnd(44)} n=${String(sorted.length).padStart(4)}  p50=${at(0.5)} ms  p95=${at(0.95)} ms  max=${at(1)} ms`;
}

async function main(): Promise<void> {
  const registry = await startDistributionRegistry();
  const config = parseConfig(
    `validators: [{ name: allow, type: static, approve: true }]
policy: [{ pattern: "${registry.host}/*", validator: allow }]
server: { host: 127.0.0.1, port: 0 }
registries: [{ host: "${registry.host}", insecure: true }]
cache: { ttlSeconds: 600 }
log: { level: error }`,
    'bench',
    process.cwd(),
  );
  const metrics = new Metrics(false);
  const runtime = new Runtime(config, 'bench', { metrics });
  const server = await startServer({
    runtime,
    metrics,
    logger: createLogger('error'),
    server: config.server,
    port: 0,
  });
  const caFile = /--cacert (\S+)\)/.exec(server.tlsDescription)?.[1] as string;
  const dispatcher = new Agent({ connect: { ca: readFileSync(caFile, 'utf8') } });

  const ask = async (keys: string[]): Promise<number> => {
    const started = performance.now();
    const res = await request(`${server.url}/v1/mutate`, {
      method: 'POST',
      dispatcher,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        apiVersion: 'externaldata.gatekeeper.sh/v1beta1',
        kind: 'ProviderRequest',
        request: { keys },
      }),
    });
    const body = (await res.body.json()) as { response: { items: { error: string }[]; systemError: string } };
    if (body.response.systemError !== '' || body.response.items.some((i) => i.error !== ''))
      throw new Error(JSON.stringify(body));
    return performance.now() - started;
  };

  const cold: number[] = [];
  const warm: number[] = [];
  const warmOne: number[] = [];
  for (let round = 0; round < COLD_ROUNDS; round++) {
    const keys = await Promise.all(
      Array.from({ length: IMAGES_PER_REQUEST }, async (_, i) => {
        await pushRandomImage(registry.url, `bench/app${i}`, `r${round}`);
        return `${registry.host}/bench/app${i}:r${round}`;
      }),
    );
    cold.push(await ask(keys));
  }
  const keys = Array.from({ length: IMAGES_PER_REQUEST }, (_, i) => `${registry.host}/bench/app${i}:r0`);
  for (let i = 0; i < WARM_ROUNDS; i++) warm.push(await ask(keys));
  for (let i = 0; i < WARM_ROUNDS; i++) warmOne.push(await ask([keys[0] as string]));

  console.log(
    `provenant bench (node ${process.version}, static validator, docker-registry on loopback, HTTPS keep-alive)`,
  );
  console.log(summary(`cold: ${IMAGES_PER_REQUEST} uncached images per request`, cold));
  console.log(summary(`warm: ${IMAGES_PER_REQUEST} cached images per request`, warm));
  console.log(summary('warm: 1 cached image per request', warmOne));

  await dispatcher.close();
  await server.close();
  await runtime.close();
  await registry.stop();
}

await main();
