/**
 * Large registry documents are parsed off the event loop: a registry serving manifests built to parse
 * slowly (4 MiB of nested arrays) must not hold this thread, and every other caller is still served.
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { isMainThread } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import type { RegistryConfig } from '../../src/config/index.ts';
import { parseReference } from '../../src/reference/index.ts';
import {
  checkJsonDocument,
  closeParseWorkers,
  OCI_MANIFEST,
  parseManifest,
  RegistryClient,
} from '../../src/registry/index.ts';
import { MAX_JSON_VALUES, PARSE_WORKERS } from '../../src/registry/json-worker.ts';
import { MAX_MANIFEST_ENTRIES } from '../../src/registry/manifest.ts';
import {
  failureOf,
  hostileServers,
  manifestBytes,
  serveManifest,
  sha256Digest,
} from '../helpers/hostile-server.ts';

const MiB = 1024 * 1024;
const MAX_MANIFEST_BYTES = 4 * MiB;
/** The item's bound on how long one verification may hold the event loop. */
const EVENT_LOOP_BUDGET_MS = 20;
const KEYS = 4;

const d = (n: number): string => sha256Digest(String(n));

/**
 * A valid image manifest of almost `MAX_MANIFEST_BYTES`, padded with an unknown field of nested arrays:
 * the slowest thing JSON.parse can be given (0.3-0.8 s for 4 MiB), which parseManifest must still read.
 */
function slowManifest(seed: number): Buffer {
  const head = `{"schemaVersion":2,"mediaType":"${OCI_MANIFEST}","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"${d(seed)}","size":2},"layers":[],"padding":`;
  const depth = Math.floor((MAX_MANIFEST_BYTES - head.length - 1) / 2);
  return Buffer.from(`${head}${'['.repeat(depth)}${']'.repeat(depth)}}`);
}

function imageManifest(layers: number): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      layers: Array.from({ length: layers }, (_, i) => ({
        mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
        digest: d(i),
        size: i,
        annotations: { index: String(i) },
      })),
    }),
  );
}

/** CPU time this process's main thread has run, in ms (Linux schedstat: nanoseconds on a CPU). */
function mainThreadCpuMs(): number {
  if (!isMainThread) throw new Error('the event-loop watch needs the main thread (vitest pool: forks)');
  return Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
}

/**
 * Watches the event loop turn by turn. `delay` is what perf_hooks sees (wall time, so it also counts
 * the time other processes on a busy machine held the CPU); `maxTurnCpuMs` is the most CPU time the
 * main thread spent between two consecutive 1 ms ticks: the length of the longest synchronous slice,
 * which is what this code controls, whatever the machine's load.
 */
function watchEventLoop(): { stop: () => { maxTurnCpuMs: number; maxDelayMs: number; p99DelayMs: number } } {
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  let last = mainThreadCpuMs();
  let maxTurnCpuMs = 0;
  const tick = setInterval(() => {
    const now = mainThreadCpuMs();
    maxTurnCpuMs = Math.max(maxTurnCpuMs, now - last);
    last = now;
  }, 1);
  return {
    stop: () => {
      clearInterval(tick);
      delay.disable();
      return { maxTurnCpuMs, maxDelayMs: delay.max / 1e6, p99DelayMs: delay.percentile(99) / 1e6 };
    },
  };
}

const deadline = (): AbortSignal => AbortSignal.timeout(60_000);
const parse = (body: Buffer, signal = deadline()) =>
  parseManifest(body, sha256Digest(body), undefined, 'r.io/app:v1', signal);

describe('parsing large registry documents off the event loop', () => {
  const { hostile, onCleanup } = hostileServers();
  afterAll(() => closeParseWorkers());

  function client(registry: RegistryConfig): RegistryClient {
    const c = new RegistryClient({
      registries: [registry],
      requestTimeoutMs: 60_000,
      maxRetries: 0,
      maxManifestBytes: MAX_MANIFEST_BYTES,
    });
    onCleanup(() => c.close());
    return c;
  }

  it('keeps every event-loop stall under 20 ms while 4 keys fetch distinct 4 MiB slow-to-parse manifests, and answers a small key meanwhile', async () => {
    const slow = new Map<string, Buffer>();
    for (let i = 0; i < KEYS; i++) slow.set(`/v2/slow/manifests/v${i}`, slowManifest(i));
    const small = manifestBytes('small');
    const server = await hostile((req: IncomingMessage, res: ServerResponse) => {
      const body = req.url === '/v2/small/manifests/v1' ? small : slow.get(req.url ?? '');
      if (body === undefined) return void res.writeHead(404).end();
      serveManifest(req, res, body);
    });
    const registry = client(server.registry);
    const ref = (repo: string) => parseReference(`${server.host}/${repo}:v1`);
    // Start the workers before measuring: their start (tsx compiling the entry) is a one-time cost.
    await parse(Buffer.concat([imageManifest(1), Buffer.alloc(64 * 1024, 0x20)]));

    const watch = watchEventLoop();
    const big = [...slow.keys()].map((_, i) =>
      registry.fetchManifest(parseReference(`${server.host}/slow:v${i}`), `v${i}`, deadline()),
    );
    const smallStarted = performance.now();
    const smallManifest = await registry.fetchManifest(ref('small'), 'v1', deadline());
    const smallMs = performance.now() - smallStarted;
    const manifests = await Promise.all(big);
    const loop = watch.stop();

    expect(manifests.map((m) => m.config?.digest)).toEqual([...slow.keys()].map((_, i) => d(i)));
    expect(smallManifest.digest).toBe(sha256Digest(small));
    // The small key is not queued behind the large ones: it is parsed where it arrives.
    expect(smallMs).toBeLessThan(1000);
    console.log(
      `parsing ${KEYS} x 4 MiB: longest event-loop turn ${loop.maxTurnCpuMs.toFixed(1)} ms of CPU; event-loop delay max ${loop.maxDelayMs.toFixed(1)} ms, p99 ${loop.p99DelayMs.toFixed(1)} ms`,
    );
    expect(loop.maxTurnCpuMs).toBeLessThan(EVENT_LOOP_BUDGET_MS);
  }, 120_000);

  it('reads a large manifest in a worker exactly as it reads a small one', async () => {
    const body = imageManifest(2000);
    expect(body.length).toBeGreaterThan(256 * 1024);
    const manifest = await parse(body);
    expect(manifest.layers).toHaveLength(2000);
    expect(manifest.layers[1999]).toEqual({
      mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
      digest: d(1999),
      size: 1999,
      artifactType: undefined,
      annotations: { index: '1999' },
      platform: undefined,
    });
    expect(manifest.body).toBe(body);
  });

  it('refuses a manifest with more descriptors and annotations than it may carry, naming the image', async () => {
    const error = (await failureOf(() => parse(imageManifest(MAX_MANIFEST_ENTRIES / 2 + 1)))).error;
    expect(error.code).toBe('REGISTRY_BAD_RESPONSE');
    expect(error.message).toContain('r.io/app:v1');
    expect(error.message).toContain(`more than ${MAX_MANIFEST_ENTRIES} descriptors and annotations`);
  });

  it('keeps only the string platform fields of an index entry', async () => {
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        manifests: [{ digest: d(1), size: 1, platform: { os: 'linux', architecture: 7, x: [[[]]] } }],
      }),
    );
    expect((await parse(index)).manifests[0]?.platform).toEqual({ os: 'linux' });
  });

  it('stops a parse when its request is cancelled, and parses the next document', async () => {
    const controller = new AbortController();
    const parsing = failureOf(() => parse(slowManifest(1), controller.signal));
    controller.abort();
    const { error, elapsedMs } = await parsing;
    expect(error.code).toBe('REGISTRY_TIMEOUT');
    expect(error.message).toContain('r.io/app:v1');
    expect(elapsedMs).toBeLessThan(1000);
    // Cancelling more parses than there are workers leaves the pool usable.
    for (let i = 0; i < PARSE_WORKERS + 1; i++) {
      const c = new AbortController();
      const p = failureOf(() => parse(slowManifest(i), c.signal));
      setTimeout(() => c.abort(), 50);
      expect((await p).error.code).toBe('REGISTRY_TIMEOUT');
    }
    expect((await parse(imageManifest(300))).layers).toHaveLength(300);
  });

  it('refuses a large signature blob that is not JSON or holds too many values', async () => {
    const values = Buffer.from(`[${'0,'.repeat(2 * MAX_JSON_VALUES)}0]`);
    await expect(checkJsonDocument(values, 'Sigstore bundle', 'r.io/app:v1', deadline())).rejects.toThrow(
      `the Sigstore bundle of r.io/app:v1 is not usable: expected JSON with at most ${MAX_JSON_VALUES} values, found more than ${MAX_JSON_VALUES} JSON values`,
    );
    const broken = Buffer.from(`{"a":"${'x'.repeat(64 * 1024)}`);
    await expect(checkJsonDocument(broken, 'DSSE envelope', 'r.io/app:v1', deadline())).rejects.toThrow(
      'found text that is not JSON',
    );
    const fine = Buffer.from(JSON.stringify({ payload: 'x'.repeat(MiB), signatures: [{ sig: 'abc' }] }));
    await expect(
      checkJsonDocument(fine, 'DSSE envelope', 'r.io/app:v1', deadline()),
    ).resolves.toBeUndefined();
  });
});
