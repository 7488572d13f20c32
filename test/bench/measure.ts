/**
 * The measurements, the same for every system: ProviderRequests over HTTPS keep-alive connections,
 * latencies taken around each request, registry requests counted at the proxy, CPU and RSS read from
 * the server process.
 */
import { performance } from 'node:perf_hooks';
import type { Agent } from 'undici';
import { request } from 'undici';
import type { CountingProxy } from '../harness/counting-proxy.ts';
import { providerBody, type System, type SystemStarter } from './systems.ts';

export type Route = 'verify' | 'mutate';

interface Item {
  key: string;
  value: unknown;
  error: string;
}

/** One ProviderRequest; throws unless every key is answered with a success (else we time failures). */
export async function ask(
  system: System,
  agent: Agent,
  route: Route,
  keys: readonly string[],
): Promise<number> {
  const started = performance.now();
  const res = await request(system.url(route), { method: 'POST', dispatcher: agent, ...providerBody(keys) });
  const body = (await res.body.json()) as { response?: { items?: Item[]; systemError?: string } };
  const elapsed = performance.now() - started;
  const items = body.response?.items ?? [];
  const failed = items.find((item) => !system.itemOk(item));
  if (res.statusCode !== 200 || items.length !== keys.length || failed !== undefined) {
    throw new Error(
      `${system.name} ${route} of ${keys.length} keys: status ${res.statusCode}, ` +
        `${failed === undefined ? JSON.stringify(body).slice(0, 400) : `${failed.key}: ${JSON.stringify(failed).slice(0, 400)}`}`,
    );
  }
  return elapsed;
}

export function percentile(samples: readonly number[], q: number): number {
  if (samples.length === 0) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? NaN;
}

export interface ColdPod {
  readonly latenciesMs: number[];
  readonly registryRequestsPerImage: number;
  readonly readyMs: number[];
  /** Registry requests of one image in the last round, by kind (`HEAD manifest 200`: 1, …). */
  readonly requestsByKind: Record<string, number>;
}

/**
 * A pod's images in one request to a process started for it: nothing cached, no code path run yet,
 * only the connection already open (as Gatekeeper keeps it).
 */
export async function coldPod(
  start: SystemStarter,
  keys: readonly string[],
  rounds: number,
  proxy: CountingProxy,
): Promise<ColdPod> {
  const latenciesMs: number[] = [];
  const readyMs: number[] = [];
  let requests = 0;
  let byKind: Record<string, number> = {};
  for (let round = 0; round < rounds; round++) {
    const system = await start();
    try {
      readyMs.push(system.readyMs);
      const agent = system.agent(1);
      await ask(system, agent, 'verify', []);
      proxy.take();
      latenciesMs.push(await ask(system, agent, 'verify', keys));
      const counts = proxy.take();
      requests += counts.total;
      byKind = perImage(counts.byKind, keys.length);
    } finally {
      await system.stop();
    }
  }
  return {
    latenciesMs,
    registryRequestsPerImage: requests / rounds / keys.length,
    readyMs,
    requestsByKind: byKind,
  };
}

export interface ColdSingles {
  readonly latenciesMs: number[];
  readonly registryRequestsPerImage: number;
  readonly requestsByKind: Record<string, number>;
}

/** Images the running process has not seen, one per request, on one open connection. */
export async function coldSingles(
  system: System,
  keys: readonly string[],
  proxy: CountingProxy,
): Promise<ColdSingles> {
  const agent = system.agent(1);
  await ask(system, agent, 'verify', []);
  const latenciesMs: number[] = [];
  proxy.take();
  for (const key of keys) latenciesMs.push(await ask(system, agent, 'verify', [key]));
  const counts = proxy.take();
  return {
    latenciesMs,
    registryRequestsPerImage: counts.total / keys.length,
    requestsByKind: perImage(counts.byKind, keys.length),
  };
}

function perImage(byKind: Record<string, number>, images: number): Record<string, number> {
  return Object.fromEntries(Object.entries(byKind).map(([k, n]) => [k, Number((n / images).toFixed(2))]));
}

export interface Load {
  readonly requests: number;
  /** Successful answers per second (a request with any failed key or a system error is not one). */
  readonly reqPerS: number;
  /** Share of requests that failed, in percent (Ratify's uncached mutate times out at 950 ms). */
  readonly failedPercent: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Server CPU time (user + system, all threads) per request, in ms. */
  readonly cpuMsPerRequest: number;
  readonly eventLoopP99Ms: number | undefined;
}

/**
 * A closed loop: `concurrency` connections, each sending the next request as soon as the last is
 * answered, for `durationMs`, after one untimed pass that fills the caches.
 */
export async function load(
  system: System,
  route: Route,
  keys: readonly string[],
  concurrency: number,
  durationMs: number,
): Promise<Load> {
  const agent = system.agent(concurrency);
  // Warm-up: connections opened, JIT compiled for this request size; then the measured window.
  await closedLoop(system, agent, route, keys, concurrency, Math.min(1000, durationMs / 4));
  await system.eventLoopP99Ms(); // resets the histogram
  const cpuBefore = system.cpuSeconds();
  const started = performance.now();
  const { latencies, failed } = await closedLoop(system, agent, route, keys, concurrency, durationMs);
  const elapsedS = (performance.now() - started) / 1000;
  const cpuS = system.cpuSeconds() - cpuBefore;
  const eventLoopP99Ms = await system.eventLoopP99Ms();
  return {
    requests: latencies.length,
    reqPerS: (latencies.length - failed) / elapsedS,
    failedPercent: (100 * failed) / latencies.length,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    cpuMsPerRequest: (cpuS * 1000) / latencies.length,
    eventLoopP99Ms,
  };
}

async function closedLoop(
  system: System,
  agent: Agent,
  route: Route,
  keys: readonly string[],
  concurrency: number,
  durationMs: number,
): Promise<{ latencies: number[]; failed: number }> {
  const latencies: number[] = [];
  let failed = 0;
  const end = performance.now() + durationMs;
  const worker = async (): Promise<void> => {
    while (performance.now() < end) {
      const started = performance.now();
      try {
        latencies.push(await ask(system, agent, route, keys));
      } catch {
        // A failed answer took its time too: Gatekeeper waited for it.
        latencies.push(performance.now() - started);
        failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { latencies, failed };
}

/** Sends `keys` in requests of `batch` (Gatekeeper's audit shape), then reads the server's RSS. */
export async function rssAfter(system: System, keys: readonly string[], batch: number): Promise<number> {
  const agent = system.agent(1);
  for (let i = 0; i < keys.length; i += batch) await ask(system, agent, 'verify', keys.slice(i, i + batch));
  return system.rssBytes();
}
