/**
 * `npm run bench`: Provenant against Ratify v1.4.6 and a bare Node HTTPS server (the floor), in one run,
 * with the same images, keys, registry and TLS, everything on loopback (README.md, Performance).
 *   cold: a pod's images in one request to a fresh process; single new images on an open connection;
 *         registry requests per image, counted at the registry (a counting proxy in front of it);
 *   warm: 1 to 1,000 cached keys per verify and mutate request at a fixed concurrency: req/s, p50/p99,
 *         server CPU per request, event-loop delay; RSS after warm-up and with 10,000 cached images;
 *         start-to-ready;
 *   shared cache (Provenant only): replicas sharing a redis-server on loopback: a second replica
 *         answering keys the first verified (1 to 100 per request, p50/p99, registry requests), and the
 *         registry requests of images each verified by three replicas.
 * Prints a Markdown table and writes the figures as JSON (bench/results/<date>.json; quick runs to the
 * temp dir unless --out says where).
 *   --quick (or BENCH_QUICK=1)   a smoke run in well under a minute: fewer images, rounds and seconds
 *   --systems=provenant,floor    which systems (default: all three; Ratify must be built)
 *   --kinds=cosign-sig,static    which validators (default: all; quick: cosign-sig and static)
 *   --out=FILE                   where the JSON goes
 *   --table=FILE                 print the table of an earlier results file (for README.md) and exit
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { makeCa, issueCert } from '../harness/pki.ts';
import { makeTempDir } from '../harness/process.ts';
import { PROJECT_ROOT } from '../harness/provenant.ts';
import { TOOLS_BIN_DIR } from '../harness/tools.ts';
import { KINDS, makeFixtures, type Fixtures, type Kind, type Sizes } from './fixtures.ts';
import {
  coldPod,
  coldSingles,
  load,
  percentile,
  rssAfter,
  ask,
  type ColdPod,
  type Load,
  type Route,
} from './measure.ts';
import { figure, machine, table, type Figure, type Results } from './report.ts';
import { createClient } from 'redis';
import { startRedis, type RedisServer } from '../harness/redis.ts';
import {
  floorStarter,
  provenantStarter,
  ratifyStarter,
  type BenchTls,
  type System,
  type SystemName,
  type SystemStarter,
} from './systems.ts';

export const SYSTEMS: readonly SystemName[] = ['provenant', 'ratify', 'floor'];

export interface BenchOptions {
  readonly quick: boolean;
  readonly systems: readonly SystemName[];
  readonly kinds: readonly Kind[];
  readonly log?: (line: string) => void;
  /** Smaller still than quick (the test suite's smoke run). */
  readonly overrides?: Partial<Plan>;
}

export interface Plan extends Sizes {
  readonly coldRounds: number;
  readonly warmSizes: readonly number[];
  readonly loadMs: number;
  /** Distinct cached images for the memory figure (beyond the warm keys). */
  readonly rssImages: number;
  readonly concurrency: number;
  /** Requests per size (1, 10, 100 keys) a second replica answers from Redis, each with keys it never saw. */
  readonly sharedRounds: number;
  /** Images each verified by three replicas sharing Redis. */
  readonly replicaImages: number;
}

/** Cold fills go in requests this small, so no system's request deadline decides the figure. */
const FILL_BATCH = 20;
/** A fill request that failed (a deadline on a busy machine) is sent again: fills are not measured. */
const FILL_ATTEMPTS = 3;
/** Gatekeeper's audit sends the keys of many objects at once: the memory figure uses its shape. */
const AUDIT_BATCH = 1000;
const MB = 2 ** 20;
/** The replicas' cache HMAC key (cache.hmacKey): any 32+ characters, the same for every replica. */
const BENCH_HMAC_KEY = 'provenant-bench-hmac-key-0123456789abcdef';
const REDIS_CONNECT_TIMEOUT_MS = 15_000;

function plan(quick: boolean, kinds: readonly Kind[], overrides: Partial<Plan> = {}): Plan {
  const warmSizes = overrides.warmSizes ?? (quick ? [1, 10, 100] : [1, 10, 100, 1000]);
  const rssImages = overrides.rssImages ?? (quick ? 200 : 10_000);
  const sharedRounds = overrides.sharedRounds ?? (quick ? 10 : 40);
  const replicaImages = overrides.replicaImages ?? (quick ? 100 : 1000);
  const largest = Math.max(...warmSizes);
  const sharedKeys = sharedSizes(warmSizes).reduce((n, size) => n + size * sharedRounds, 0);
  return {
    kinds,
    podImages: quick ? 4 : 10,
    singleImages: quick ? 3 : 30,
    coldRounds: quick ? 1 : 10,
    warmSizes,
    loadMs: quick ? 500 : 5000,
    rssImages,
    warmTags: largest + rssImages + sharedKeys + replicaImages,
    concurrency: 4,
    sharedRounds,
    replicaImages,
    ...overrides,
  };
}

/** Request sizes of the shared-cache figures: the warm sizes up to 100 keys. */
function sharedSizes(warmSizes: readonly number[]): number[] {
  return warmSizes.filter((size) => size <= 100);
}

/** Which systems verify which kinds: Ratify has no Notary v1 or static verifier, nor cosign v3 bundles. */
function supports(system: SystemName, kind: Kind): boolean {
  return system !== 'ratify' || kind === 'cosign-sig';
}

export async function runBench(opts: BenchOptions): Promise<Results> {
  const log = opts.log ?? ((line: string) => console.error(line));
  const p = plan(opts.quick, opts.kinds, opts.overrides);
  if (opts.systems.includes('ratify') && !existsSync(path.join(TOOLS_BIN_DIR, 'ratify')))
    throw new Error(
      `ratify is not built (${TOOLS_BIN_DIR}/ratify): run \`bash test/tools/install.sh bench\` (npm run bench does)`,
    );
  const dir = await makeTempDir('bench');
  let fixtures: Fixtures | undefined;
  let redis: RedisServer | undefined;
  try {
    const ca = await makeCa(dir, 'bench-ca');
    const tls: BenchTls = { ca, server: await issueCert(dir, ca, 'bench-server', 'server') };
    log(`bench: pushing and signing images (${p.kinds.join(', ')}) and ${p.warmTags} warm tags`);
    fixtures = await makeFixtures(dir, p);
    const starters: Partial<Record<SystemName, SystemStarter>> = {};
    for (const name of opts.systems) {
      starters[name] =
        name === 'provenant'
          ? await provenantStarter(fixtures, tls)
          : name === 'ratify'
            ? await ratifyStarter(fixtures, tls)
            : floorStarter(tls);
    }
    const results = await measureAll(opts, p, fixtures, starters, log);
    if (!opts.systems.includes('provenant')) return results;
    redis = await startRedis();
    const replica = await provenantStarter(fixtures, tls, {
      name: 'provenant-replica',
      redisUrl: redis.url,
      hmacKey: BENCH_HMAC_KEY,
    });
    const shared = await sharedCacheFigures(p, fixtures, replica, redis, log);
    return {
      ...results,
      figures: [...results.figures, ...shared.figures],
      registryRequests: { ...results.registryRequests, ...shared.registryRequests },
    };
  } finally {
    await redis?.stop();
    await fixtures?.close();
    await rm(dir, { recursive: true, force: true });
  }
}

async function measureAll(
  opts: BenchOptions,
  p: Plan,
  fixtures: Fixtures,
  starters: Partial<Record<SystemName, SystemStarter>>,
  log: (line: string) => void,
): Promise<Results> {
  const figures: Figure[] = [];
  const registryRequests: Record<string, Record<string, number>> = {};
  const systems = opts.systems;
  const startersFor = (kind: Kind): [SystemName, SystemStarter][] =>
    systems.filter((s) => supports(s, kind)).map((s) => [s, starters[s] as SystemStarter]);

  // Cold pods, each in fresh processes. The floor verifies nothing: one kind's figure stands for all.
  const ready: Partial<Record<SystemName, number[]>> = {};
  let floorPod: ColdPod | undefined;
  for (const kind of p.kinds) {
    const keys = fixtures.images[kind]?.pod ?? [];
    const pods: Partial<Record<SystemName, ColdPod>> = {};
    for (const [name, start] of startersFor(kind)) {
      if (name === 'floor' && floorPod !== undefined) {
        pods.floor = floorPod;
        continue;
      }
      log(`bench: cold ${kind} pod of ${keys.length} images, ${name}, ${p.coldRounds} fresh processes`);
      const pod = await coldPod(start, keys, p.coldRounds, fixtures.proxy);
      pods[name] = pod;
      (ready[name] ??= []).push(...pod.readyMs);
      if (name === 'floor') floorPod = pod;
      else registryRequests[`${name} ${kind}`] = pod.requestsByKind;
    }
    const each = (f: (pod: ColdPod) => number): Partial<Record<SystemName, number>> =>
      Object.fromEntries(Object.entries(pods).map(([n, pod]) => [n, f(pod)]));
    figures.push(
      figure(
        `cold-pod-p50-${kind}`,
        `cold ${p.podImages}-image pod, fresh process, p50 (${kind})`,
        'ms',
        'lower',
        each((x) => percentile(x.latenciesMs, 0.5)),
      ),
      figure(
        `cold-pod-p99-${kind}`,
        `cold ${p.podImages}-image pod, fresh process, p99 (${kind})`,
        'ms',
        'lower',
        each((x) => percentile(x.latenciesMs, 0.99)),
      ),
      figure(
        `registry-requests-${kind}`,
        `registry requests per tag-referenced image (${kind})`,
        'requests',
        'lower',
        {
          ...each((x) => x.registryRequestsPerImage),
          floor: undefined,
        },
      ),
    );
  }
  figures.push(
    figure(
      'ready-p50',
      'start to ready (spawn to first answer), p50',
      'ms',
      'lower',
      Object.fromEntries(Object.entries(ready).map(([n, ms]) => [n, percentile(ms, 0.5)])),
    ),
  );

  // One long-running process per system from here on; only one of them is under load at a time.
  const running: Partial<Record<SystemName, System>> = {};
  try {
    for (const name of systems) running[name] = await (starters[name] as SystemStarter)();
    for (const kind of p.kinds) {
      const singles: Partial<Record<SystemName, number>> = {};
      for (const name of systems.filter((s) => supports(s, kind))) {
        log(`bench: cold single ${kind} images on an open connection, ${name}`);
        const result = await coldSingles(
          running[name] as System,
          fixtures.images[kind]?.singles ?? [],
          fixtures.proxy,
        );
        singles[name] = percentile(result.latenciesMs, 0.5);
        if (name !== 'floor') registryRequests[`${name} ${kind} single`] = result.requestsByKind;
      }
      figures.push(
        figure(
          `cold-single-p50-${kind}`,
          `cold single new image, open connection, p50 (${kind})`,
          'ms',
          'lower',
          singles,
        ),
      );
    }
    figures.push(...(await warmFigures(p, fixtures, running, log)));
  } finally {
    for (const system of Object.values(running)) await system.stop();
  }
  return {
    schema: 'provenant-bench/v1',
    date: new Date().toISOString(),
    mode: opts.quick ? 'quick' : 'full',
    command: opts.quick ? 'npm run bench -- --quick' : 'npm run bench',
    systems,
    machine: machine(),
    setup: {
      registry:
        'docker-registry (distribution 2.8, in memory, no referrers API) behind a counting proxy, plain HTTP on loopback',
      tls: 'TLS 1.3, one P-256 server certificate for every system, keep-alive connections',
      cacheTtlSeconds: 600,
      concurrency: p.concurrency,
      loadSeconds: p.loadMs / 1000,
      podImages: p.podImages,
      coldRounds: p.coldRounds,
      singleImages: p.singleImages,
      rssImages: p.rssImages,
      ratify: 'v1.4.6, ratify serve (CLI config), --cache-enabled --cache-ttl 600s, RATIFY_LOG_LEVEL=error',
      provenant:
        'node bin/provenant.mjs serve on the compiled JavaScript (dist/, npm run build), log level error',
      redis:
        'redis-server (Debian) on loopback, no persistence: Provenant replicas with cache.redis for the shared-cache figures',
      sharedRounds: p.sharedRounds,
      replicaImages: p.replicaImages,
      floor: 'node test/bench/floor.ts: node:https, JSON.parse, one fixed value per key',
    },
    figures,
    registryRequests,
  };
}

/** The unmeasured warm-up pass: a fifth of a measured one, at least 200 ms. */
function warmUpMs(p: Plan): number {
  return Math.max(200, p.loadMs / 5);
}

async function warmFigures(
  p: Plan,
  fixtures: Fixtures,
  running: Partial<Record<SystemName, System>>,
  log: (line: string) => void,
): Promise<Figure[]> {
  const systems = Object.keys(running) as SystemName[];
  const largest = Math.max(...p.warmSizes);
  const warmKeys = fixtures.warmKeys.slice(0, largest);
  for (const name of systems) {
    log(`bench: filling ${name}'s cache with ${warmKeys.length} keys`);
    await fill(running[name] as System, warmKeys);
  }
  // Every system first runs every pass once, briefly and unmeasured, so the figures are those of a
  // warmed process (its hot code compiled), not of its first requests: without it, the floor's 1-key
  // verify pass, measured first, ran at 60 % of its 1-key mutate pass, which its code answers alike.
  for (const name of systems)
    for (const route of ['verify', 'mutate'] as Route[])
      for (const size of p.warmSizes) {
        log(`bench: warm-up ${route}, ${size} keys, ${name} (not measured)`);
        await load(running[name] as System, route, warmKeys.slice(0, size), p.concurrency, warmUpMs(p));
      }
  const figures: Figure[] = [];
  let eventLoop: Partial<Record<SystemName, number | undefined>> = {};
  for (const route of ['verify', 'mutate'] as Route[]) {
    for (const size of p.warmSizes) {
      const loads: Partial<Record<SystemName, Load>> = {};
      for (const name of systems) {
        log(`bench: warm ${route}, ${size} keys, concurrency ${p.concurrency}, ${name}`);
        loads[name] = await load(
          running[name] as System,
          route,
          warmKeys.slice(0, size),
          p.concurrency,
          p.loadMs,
        );
      }
      const each = (f: (l: Load) => number | undefined): Partial<Record<SystemName, number | undefined>> =>
        Object.fromEntries(Object.entries(loads).map(([n, l]) => [n, f(l)]));
      const at = `warm ${size}-key ${route}, concurrency ${p.concurrency}`;
      figures.push(
        figure(
          `warm-${route}-${size}-rps`,
          `${at}, throughput`,
          'req/s',
          'higher',
          each((l) => l.reqPerS),
        ),
        figure(
          `warm-${route}-${size}-p50`,
          `${at}, p50`,
          'ms',
          'lower',
          each((l) => l.p50Ms),
        ),
        figure(
          `warm-${route}-${size}-p99`,
          `${at}, p99`,
          'ms',
          'lower',
          each((l) => l.p99Ms),
        ),
        figure(
          `warm-${route}-${size}-cpu`,
          `${at}, server CPU per request`,
          'ms',
          'lower',
          each((l) => l.cpuMsPerRequest),
        ),
        figure(
          `warm-${route}-${size}-failed`,
          `${at}, failed requests`,
          '%',
          'lower',
          each((l) => l.failedPercent),
        ),
      );
      if (route === 'verify' && size === Math.min(100, largest)) eventLoop = each((l) => l.eventLoopP99Ms);
    }
  }
  figures.push(
    figure(
      'event-loop-p99',
      `event-loop delay p99 under warm ${Math.min(100, largest)}-key verify load`,
      'ms',
      'lower',
      eventLoop,
    ),
  );
  const afterWarm = Object.fromEntries(systems.map((n) => [n, (running[n] as System).rssBytes() / MB]));
  figures.push(figure('rss-warm', 'RSS after the warm passes', 'MB', 'lower', afterWarm));
  const rssKeys = fixtures.warmKeys.slice(largest, largest + p.rssImages);
  const withCache: Partial<Record<SystemName, number>> = {};
  for (const name of systems) {
    log(`bench: ${p.rssImages} more distinct images into ${name}'s cache`);
    await fill(running[name] as System, rssKeys);
    withCache[name] = (await rssAfter(running[name] as System, rssKeys, AUDIT_BATCH)) / MB;
  }
  figures.push(
    figure(
      'rss-cached',
      `RSS with ${p.rssImages.toLocaleString('en-US')} more cached images (audit-shaped requests of ${AUDIT_BATCH})`,
      'MB',
      'lower',
      withCache,
    ),
  );
  return figures;
}

/**
 * Replicas sharing one Redis, each a fresh `provenant serve` with cache.redis. Replica A verifies keys
 * (cold, through the registry); replica B, which never saw them, answers them in requests of 1 to 100
 * keys, one request at a time: latency of an answer from Redis, and the registry requests it caused
 * (none expected). Then fresh images, verified by A, B and a third replica C in turn: registry requests
 * per image across the three (one replica's worth expected).
 */
async function sharedCacheFigures(
  p: Plan,
  fixtures: Fixtures,
  start: SystemStarter,
  redis: RedisServer,
  log: (line: string) => void,
): Promise<{ figures: Figure[]; registryRequests: Record<string, Record<string, number>> }> {
  const sizes = sharedSizes(p.warmSizes);
  let next = Math.max(...p.warmSizes) + p.rssImages;
  const take = (count: number): string[] => fixtures.warmKeys.slice(next, (next += count));
  const rounds = sizes.map((size) => Array.from({ length: p.sharedRounds }, () => take(size)));
  const replicaKeys = take(p.replicaImages);
  const inspector = createClient({ url: redis.url });
  await inspector.connect();
  const replicas: System[] = [];
  const startReplica = async (): Promise<System> => {
    const replica = await start();
    replicas.push(replica);
    await redisClients(inspector, replicas.length + 1);
    return replica;
  };
  try {
    const [a, b] = [await startReplica(), await startReplica()];
    log(`bench: replica A verifies ${rounds.flat(2).length} keys; replica B answers them from Redis`);
    await fill(a, rounds.flat(2));
    fixtures.proxy.take();
    const agent = b.agent(1);
    const figures: Figure[] = [];
    for (const [i, size] of sizes.entries()) {
      const latencies: number[] = [];
      for (const keys of rounds[i] ?? []) latencies.push(await ask(b, agent, 'verify', keys));
      const at = `second replica, ${size}-key verify of keys the first verified (Redis)`;
      figures.push(
        figure(`shared-${size}-p50`, `${at}, p50`, 'ms', 'lower', { provenant: percentile(latencies, 0.5) }),
        figure(`shared-${size}-p99`, `${at}, p99`, 'ms', 'lower', { provenant: percentile(latencies, 0.99) }),
      );
    }
    figures.push(
      figure(
        'shared-registry-requests',
        `registry requests while the second replica answered ${rounds.flat(2).length} keys the first verified`,
        'requests',
        'lower',
        { provenant: fixtures.proxy.take().total },
      ),
    );
    const c = await startReplica();
    log(`bench: ${replicaKeys.length} images verified by three replicas sharing Redis, in turn`);
    const perReplica: Record<string, number> = {};
    for (const [name, replica] of [
      ['A', a],
      ['B', b],
      ['C', c],
    ] as const) {
      await fill(replica, replicaKeys);
      perReplica[`replica ${name}`] = fixtures.proxy.take().total / replicaKeys.length;
    }
    figures.push(
      figure(
        'replicas-registry-requests',
        `registry requests per image, ${replicaKeys.length} images each verified by three replicas sharing Redis`,
        'requests',
        'lower',
        { provenant: Object.values(perReplica).reduce((sum, n) => sum + n, 0) },
      ),
    );
    return { figures, registryRequests: { 'provenant three replicas sharing Redis': perReplica } };
  } finally {
    for (const replica of replicas) await replica.stop();
    await inspector.close();
  }
}

/** Waits until redis-server has `count` clients (the replicas connect in the background at start). */
async function redisClients(inspector: ReturnType<typeof createClient>, count: number): Promise<void> {
  const deadline = performance.now() + REDIS_CONNECT_TIMEOUT_MS;
  while ((await inspector.clientList()).filter((c) => c.flags === 'N').length < count) {
    if (performance.now() > deadline)
      throw new Error(`redis-server did not see ${count} clients within ${REDIS_CONNECT_TIMEOUT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Verifies `keys` once, a few requests at a time, so they are cached. */
async function fill(system: System, keys: readonly string[]): Promise<void> {
  const agent = system.agent(1);
  for (let i = 0; i < keys.length; i += FILL_BATCH) {
    const batch = keys.slice(i, i + FILL_BATCH);
    for (let attempt = 1; ; attempt++) {
      try {
        await ask(system, agent, 'verify', batch);
        break;
      } catch (error) {
        if (attempt >= FILL_ATTEMPTS) throw error;
      }
    }
  }
}

function options(argv: string[]): BenchOptions & { out: string | undefined; table: string | undefined } {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      systems: { type: 'string' },
      kinds: { type: 'string' },
      out: { type: 'string' },
      table: { type: 'string' },
    },
  });
  const quick = values.quick === true || process.env['BENCH_QUICK'] === '1';
  const list = <T extends string>(
    value: string | undefined,
    all: readonly T[],
    fallback: readonly T[],
  ): T[] => {
    if (value === undefined) return [...fallback];
    const picked = value.split(',').filter((v) => v !== '');
    const unknown = picked.filter((v) => !all.includes(v as T));
    if (unknown.length > 0)
      throw new Error(`unknown ${unknown.join(', ')}: expected some of ${all.join(', ')}`);
    return picked as T[];
  };
  return {
    quick,
    systems: list(values.systems, SYSTEMS, SYSTEMS),
    kinds: list(values.kinds, KINDS, quick ? ['cosign-sig', 'static'] : KINDS),
    out: values.out,
    table: values.table,
  };
}

async function main(): Promise<void> {
  const opts = options(process.argv.slice(2));
  if (opts.table !== undefined) {
    console.log(table(JSON.parse(await readFile(opts.table, 'utf8')) as Results));
    return;
  }
  const results = await runBench(opts);
  const out =
    opts.out ??
    (opts.quick
      ? path.join(os.tmpdir(), `provenant-bench-${results.date}.json`)
      : path.join(PROJECT_ROOT, 'bench/results', `${results.date.slice(0, 10)}.json`));
  await mkdir(path.dirname(out), { recursive: true });
  await writeFile(out, `${JSON.stringify(results, null, 2)}\n`);
  const m = results.machine;
  console.log(
    `\nProvenant benchmark (${results.mode}), ${results.date}, ${m.cores}× ${m.cpu}, ${m.memoryGB} GB, ${m.os}, Node ${m.node}, commit ${m.commit}\n`,
  );
  console.log(table(results));
  console.log(`\nregistry requests per image, by method, kind and status:`);
  for (const [who, counts] of Object.entries(results.registryRequests))
    console.log(
      `  ${who}: ${Object.entries(counts)
        .map(([k, n]) => `${k} ×${n}`)
        .join(', ')}`,
    );
  console.log(`\nwritten to ${out}`);
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === path.resolve(import.meta.filename))
  await main();
