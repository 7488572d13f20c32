/**
 * The soak: a real `provenant serve` on loopback under a sustained, mixed load at a fixed request rate
 * for a fixed time, every answer checked against the verdict it must be. The mix: warm keys (the
 * signed and unsigned images of every validator with a harness, cached for a few seconds, so they
 * turn cold again and are re-verified), cold keys (a tag never seen before: a fresh registry lookup
 * each time), and two hostile registries (one answering 503 to everything, one slow but correct).
 * Bounded: it stops after `durationS` and never has more than `concurrency` requests open.
 *
 * Pass criteria (the Result's `failures`): no HTTP 5xx, no transport error, no wrong verdict, no
 * transient answer for a healthy registry's key; RSS at the end within 10 % of RSS after warm-up (the
 * largest of three samples, GC noise aside); the p99 latency of the healthy registries' keys in the
 * second half of the measured time (after warm-up) at most P99_STABLE_FACTOR × the first half's +
 * P99_STABLE_SLACK_MS: halves, not single windows, so a burst of the machine's other work in one window
 * does not decide the verdict.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  manifestBytes,
  serveManifest,
  sha256Digest,
  startHostileServer,
  type HostileServer,
} from '../../provider/test/helpers/hostile-server.ts';
import { makeTempDir } from '../harness/process.ts';
import { devCertAgent, startProvenant, type RunningProvenant } from '../harness/provenant.ts';
import { judge, startWorld, verify, type Expected, type World } from '../harness/world.ts';

export interface SoakOptions {
  readonly durationS: number;
  /** Requests started per second (open loop, capped by `concurrency`). */
  readonly rate: number;
  /** Not measured for RSS and p99: JIT, caches and pools fill up. */
  readonly warmupS: number;
  /** Length of a p99 window. */
  readonly windowS: number;
  readonly concurrency: number;
  readonly log?: (line: string) => void;
}

export const DEFAULT_SOAK: SoakOptions = {
  durationS: 30 * 60,
  rate: 50,
  warmupS: 60,
  windowS: 60,
  concurrency: 32,
};

export const RSS_GROWTH_LIMIT = 0.1;
export const P99_STABLE_FACTOR = 2;
export const P99_STABLE_SLACK_MS = 50;
/** A slow registry's every answer waits this long: slow, but well inside network.requestTimeoutMs. */
const SLOW_REGISTRY_MS = 100;

export interface SoakResult {
  readonly options: SoakOptions;
  readonly requests: number;
  readonly byKind: Record<string, number>;
  readonly judgements: { correct: number; transient: number; wrong: number };
  readonly http5xx: number;
  readonly transportErrors: number;
  /** Requests the rate asked for that were not started because `concurrency` were already open. */
  readonly skipped: number;
  readonly achievedRate: number;
  readonly latencyMs: { p50: number; p99: number; max: number; p99FirstHalf: number; p99SecondHalf: number };
  readonly windows: { startS: number; requests: number; p50: number; p99: number; rssMiB: number }[];
  readonly rssMiB: { afterWarmup: number; end: number; growth: number };
  readonly failures: string[];
}

interface Target {
  readonly kind: string;
  readonly key: () => string;
  readonly expect: Expected | 'transient';
  /** The weight in the mix. */
  readonly weight: number;
}

export async function runSoak(options: SoakOptions): Promise<SoakResult> {
  const log = options.log ?? (() => {});
  const dir = await makeTempDir('soak');
  const slowManifest = manifestBytes('soak-slow');
  const [world, storm, slow] = await Promise.all([
    startWorld(),
    startHostileServer((_req, res) => res.writeHead(503, { 'retry-after': '1' }).end()),
    startHostileServer((req, res) => {
      setTimeout(() => serveManifest(req, res, slowManifest), SLOW_REGISTRY_MS);
    }),
  ]);
  let provenant: RunningProvenant | undefined;
  try {
    const configPath = path.join(dir, 'provenant.yaml');
    await writeFile(configPath, soakConfig(world, storm, slow));
    provenant = await startProvenant(['node', 'bin/provenant.mjs', 'serve', '--config', configPath]);
    log(
      `soak: provenant ${provenant.url} (pid ${provenant.pid}), ${options.rate} req/s for ${options.durationS} s`,
    );
    return await load(provenant, targets(world, storm, slow, sha256Digest(slowManifest)), options, log);
  } finally {
    await provenant?.stop();
    await Promise.all([world.stop(), storm.close(), slow.close()]);
    await rm(dir, { recursive: true, force: true });
  }
}

function soakConfig(world: World, storm: HostileServer, slow: HostileServer): string {
  return `${world.configYaml({
    rules: [
      `{ pattern: "${storm.host}/*", validator: allow }`,
      `{ pattern: "${slow.host}/*", validator: allow }`,
    ],
    registries: [`{ host: "${storm.host}", insecure: true }`, `{ host: "${slow.host}", insecure: true }`],
  })}
server: { host: 127.0.0.1, port: 0, requestDeadlineMs: 5000 }
network: { requestTimeoutMs: 2000, maxRetries: 1 }
cache: { ttlSeconds: 5, negativeTtlSeconds: 2 }
log: { level: warn }
`;
}

function targets(world: World, storm: HostileServer, slow: HostileServer, slowDigest: string): Target[] {
  const warm = world.cases.map((c): Target => ({
    kind: `warm-${c.validator}`,
    key: () => c.key,
    expect: c.expect,
    weight: 4,
  }));
  const allowed = world.cases[0]!.key.replace(/:v1$/, '');
  return [
    ...warm,
    // A tag never asked for before: no cache helps, the registry answers 404, the verdict is a denial.
    {
      kind: 'cold',
      key: () => `${allowed}:cold-${randomBytes(6).toString('hex')}`,
      expect: { deny: true },
      weight: 4,
    },
    { kind: 'hostile-503', key: () => `${storm.host}/storm/app:v1`, expect: 'transient', weight: 1 },
    {
      kind: 'hostile-slow',
      key: () => `${slow.host}/slow/app:v1`,
      expect: { digest: slowDigest },
      weight: 2,
    },
  ];
}

function pick(list: readonly Target[], total: number): Target {
  let r = Math.random() * total;
  for (const t of list) if ((r -= t.weight) < 0) return t;
  return list[list.length - 1]!;
}

interface Sample {
  readonly atS: number;
  readonly ms: number;
}

async function load(
  provenant: RunningProvenant,
  mix: readonly Target[],
  options: SoakOptions,
  log: (line: string) => void,
): Promise<SoakResult> {
  const dispatcher = devCertAgent(provenant);
  const totalWeight = mix.reduce((s, t) => s + t.weight, 0);
  const byKind: Record<string, number> = {};
  const judgements = { correct: 0, transient: 0, wrong: 0 };
  const failures: string[] = [];
  const samples: Sample[] = [];
  const rss: { atS: number; mib: number }[] = [];
  let http5xx = 0;
  let transportErrors = 0;
  let skipped = 0;
  let answered = 0;
  let open = 0;
  const inFlight = new Set<Promise<void>>();
  const start = performance.now();
  const elapsedS = (): number => (performance.now() - start) / 1000;
  const fail = (why: string): void => {
    if (failures.length < 20) failures.push(why);
  };

  const one = async (target: Target): Promise<void> => {
    const key = target.key();
    const t0 = performance.now();
    try {
      const answer = await verify(provenant.url, dispatcher, [key], 15_000);
      // Latency figures are the healthy registries' (a 503 storm's answers wait for its Retry-After).
      if (target.expect !== 'transient') samples.push({ atS: elapsedS(), ms: performance.now() - t0 });
      answered++;
      if (answer.status >= 500) http5xx++;
      const { judgement, why } =
        target.expect === 'transient'
          ? answer.status === 200 && answer.items.length === 0 && /^REGISTRY_/.test(answer.systemError)
            ? { judgement: 'transient' as const, why: '' }
            : { judgement: 'wrong' as const, why: JSON.stringify(answer).slice(0, 300) }
          : judge(answer, target.expect);
      judgements[judgement]++;
      if (judgement === 'wrong') fail(`wrong verdict for ${key}: ${why}`);
      if (judgement === 'transient' && target.expect !== 'transient')
        fail(`transient answer for healthy ${key}: ${why}`);
    } catch (error) {
      transportErrors++;
      fail(`transport error for ${key}: ${(error as Error).message}`);
    }
  };

  const sampleRss = (): void => {
    rss.push({ atS: elapsedS(), mib: rssMiB(provenant.pid) });
  };
  const rssTimer = setInterval(sampleRss, 5000);
  const progressTimer = setInterval(
    () => log(`soak: ${Math.round(elapsedS())} s, ${answered} answered, ${failures.length} failures`),
    60_000,
  );
  try {
    const intervalMs = 1000 / options.rate;
    for (let n = 0; ; n++) {
      const due = start + n * intervalMs;
      if (due - start >= options.durationS * 1000) break;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      if (open >= options.concurrency) {
        skipped++;
        continue;
      }
      const target = pick(mix, totalWeight);
      byKind[target.kind] = (byKind[target.kind] ?? 0) + 1;
      open++;
      const p = one(target).finally(() => {
        open--;
        inFlight.delete(p);
      });
      inFlight.add(p);
    }
    await Promise.all(inFlight);
    sampleRss();
  } finally {
    clearInterval(rssTimer);
    clearInterval(progressTimer);
    await dispatcher.close();
  }
  return summarize(options, samples, rss, {
    answered,
    byKind,
    judgements,
    http5xx,
    transportErrors,
    skipped,
    failures,
    elapsedS: elapsedS(),
  });
}

function summarize(
  options: SoakOptions,
  samples: readonly Sample[],
  rss: readonly { atS: number; mib: number }[],
  counts: Pick<
    SoakResult,
    'byKind' | 'judgements' | 'http5xx' | 'transportErrors' | 'skipped' | 'failures'
  > & {
    answered: number;
    elapsedS: number;
  },
): SoakResult {
  const failures = [...counts.failures];
  const windows: SoakResult['windows'] = [];
  for (let s = options.warmupS; s < options.durationS; s += options.windowS) {
    const inWindow = samples.filter((x) => x.atS >= s && x.atS < s + options.windowS).map((x) => x.ms);
    const rssInWindow = rss.filter((r) => r.atS >= s && r.atS < s + options.windowS).map((r) => r.mib);
    if (inWindow.length === 0) continue;
    windows.push({
      startS: s,
      requests: inWindow.length,
      p50: round(percentile(inWindow, 0.5)),
      p99: round(percentile(inWindow, 0.99)),
      rssMiB: round(Math.max(0, ...rssInWindow)),
    });
  }
  // RSS after warm-up: the largest of the first three samples past it (one sample may land just after
  // a collection); at the end: the largest of the last three.
  const afterWarmup = Math.max(
    ...rss
      .filter((r) => r.atS >= options.warmupS)
      .slice(0, 3)
      .map((r) => r.mib),
  );
  const end = Math.max(...rss.slice(-3).map((r) => r.mib));
  const growth = end / afterWarmup - 1;
  const middle = options.warmupS + (options.durationS - options.warmupS) / 2;
  const measured = samples.filter((x) => x.atS >= options.warmupS);
  const firstHalf = percentile(
    measured.filter((x) => x.atS < middle).map((x) => x.ms),
    0.99,
  );
  const secondHalf = percentile(
    measured.filter((x) => x.atS >= middle).map((x) => x.ms),
    0.99,
  );
  if (counts.http5xx > 0) failures.push(`${counts.http5xx} answers with HTTP 5xx`);
  if (growth > RSS_GROWTH_LIMIT)
    failures.push(`RSS grew ${pct(growth)} after warm-up (${round(afterWarmup)} → ${round(end)} MiB)`);
  if (windows.length < 2) failures.push('fewer than two measured windows after warm-up');
  else if (secondHalf > P99_STABLE_FACTOR * firstHalf + P99_STABLE_SLACK_MS)
    failures.push(
      `p99 rose from ${round(firstHalf)} ms (first half) to ${round(secondHalf)} ms (second half)`,
    );
  const all = samples.map((s) => s.ms);
  return {
    options,
    requests: counts.answered + counts.transportErrors,
    byKind: counts.byKind,
    judgements: counts.judgements,
    http5xx: counts.http5xx,
    transportErrors: counts.transportErrors,
    skipped: counts.skipped,
    achievedRate: round((counts.answered + counts.transportErrors) / counts.elapsedS),
    latencyMs: {
      p50: round(percentile(all, 0.5)),
      p99: round(percentile(all, 0.99)),
      max: round(Math.max(0, ...all)),
      p99FirstHalf: round(firstHalf),
      p99SecondHalf: round(secondHalf),
    },
    windows,
    rssMiB: { afterWarmup: round(afterWarmup), end: round(end), growth: round(growth * 100) / 100 },
    failures,
  };
}

/** Resident set size of `pid` from /proc (Linux), in MiB. */
function rssMiB(pid: number): number {
  const kib = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  if (kib === undefined) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(kib) / 1024;
}

function percentile(values: readonly number[], q: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

const round = (n: number): number => Math.round(n * 10) / 10;
const pct = (n: number): string => `${(n * 100).toFixed(1)} %`;
