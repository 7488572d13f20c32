/**
 * The real provider process while one request makes it parse 32 distinct 4 MiB manifests built to
 * parse slowly (issue 10 item 13: they once stalled /healthz for 7.5 s). Parsing happens in worker
 * threads, so health probes and other callers' small requests are answered meanwhile.
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
import { rm, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import type { Agent } from 'undici';
import { request } from 'undici';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHostileServer, type HostileServer } from '../../../provider/test/helpers/hostile-server.ts';
import { OCI_MANIFEST } from '../../../provider/src/registry/index.ts';
import { makeTempDir } from '../../harness/process.ts';
import { devCertAgent, startProvenant, type RunningProvenant } from '../../harness/provenant.ts';

const MiB = 1024 * 1024;
const KEYS = 32;
const DEADLINE_MS = 10_000;
/**
 * A probe answered in more than this means the event loop was held. The unit test bounds each turn at
 * 20 ms of CPU; from outside, on a loaded 2-core CI machine, scheduling noise alone reaches ~100 ms,
 * while one slow manifest parsed on the loop costs 300-800 ms.
 */
const PROBE_BUDGET_MS = 250;
const SMALL_KEY_BUDGET_MS = 1000;

const sha256 = (bytes: Buffer | string): string =>
  `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

/** A valid image manifest padded to ~4 MiB with nested arrays, the slowest input for JSON.parse. */
function slowManifest(seed: number): Buffer {
  const head = `{"schemaVersion":2,"mediaType":"${OCI_MANIFEST}","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"${sha256(String(seed))}","size":2},"layers":[],"padding":`;
  const depth = Math.floor((4 * MiB - head.length - 1) / 2);
  return Buffer.from(`${head}${'['.repeat(depth)}${']'.repeat(depth)}}`);
}

/** A legitimate manifest large enough to be parsed in a worker (2000 layers, ~300 KiB). */
function largeManifest(): Buffer {
  const layers = Array.from({ length: 2000 }, (_, i) => ({
    mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
    digest: sha256(`layer ${i}`),
    size: i,
  }));
  return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, layers }));
}

interface Reply {
  items?: { key: string; value: { digest?: string } | null; error: string }[];
  systemError?: string;
}

describe('provider parsing 32 large manifests for one request', () => {
  let dir: string;
  let registry: HostileServer;
  let provenant: RunningProvenant;
  let dispatcher: Agent;
  const manifests = new Map<string, Buffer>();

  beforeAll(async () => {
    for (let i = 0; i < KEYS; i++) manifests.set(`/v2/slow/manifests/v${i}`, slowManifest(i));
    manifests.set('/v2/small/manifests/v1', Buffer.from(JSON.stringify({ schemaVersion: 2, layers: [] })));
    manifests.set('/v2/large/manifests/v1', largeManifest());
    registry = await startHostileServer((req: IncomingMessage, res: ServerResponse) => {
      const body = manifests.get(req.url ?? '');
      if (body === undefined) return void res.writeHead(404).end();
      // No Docker-Content-Digest: the provider must fetch, hash and parse the manifest itself.
      res.writeHead(200, { 'content-type': OCI_MANIFEST, 'content-length': body.length });
      res.end(req.method === 'HEAD' ? undefined : body);
    });
    dir = await makeTempDir('large-manifests');
    const config = path.join(dir, 'config.yaml');
    await writeFile(
      config,
      stringify({
        validators: [{ name: 'allow', type: 'static', approve: true }],
        policy: [{ pattern: `${registry.host}/*`, validator: 'allow' }],
        registries: [{ host: registry.host, insecure: true }],
        server: { host: '127.0.0.1', requestDeadlineMs: DEADLINE_MS },
        network: { requestTimeoutMs: DEADLINE_MS, maxRetries: 0 },
        cache: { ttlSeconds: 0 },
      }),
    );
    provenant = await startProvenant([
      'node',
      'bin/provenant.mjs',
      'serve',
      '--config',
      config,
      '--port',
      '0',
    ]);
    dispatcher = devCertAgent(provenant);
  });
  afterAll(async () => {
    await dispatcher?.close();
    await provenant?.stop();
    await registry?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  async function verify(keys: string[]): Promise<{ reply: Reply; elapsedMs: number }> {
    const started = performance.now();
    const res = await request(`${provenant.url}/v1/verify`, {
      method: 'POST',
      dispatcher,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        apiVersion: 'externaldata.gatekeeper.sh/v1beta1',
        kind: 'ProviderRequest',
        request: { keys },
      }),
    });
    expect(res.statusCode).toBe(200);
    const body = (await res.body.json()) as { response: Reply };
    return { reply: body.response, elapsedMs: performance.now() - started };
  }

  const cpu = (): number => Number(require('node:fs').readFileSync(`/proc/${provenant.pid}/task/${provenant.pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
  const tcpu = (): number => Number(require('node:fs').readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
  let lastCpu = '';
  async function probeMs(): Promise<number> {
    const c0 = cpu(); const t0 = tcpu();
    const started = performance.now();
    const res = await request(`${provenant.url}/healthz`, { dispatcher });
    await res.body.dump();
    expect(res.statusCode).toBe(200);
    lastCpu = `provider main cpu ${(cpu() - c0).toFixed(0)} test cpu ${(tcpu() - t0).toFixed(0)}`;
    return performance.now() - started;
  }

  it('pins a large legitimate manifest parsed in a worker thread of the real process', async () => {
    const key = `${registry.host}/large:v1`;
    const { reply } = await verify([key]);
    expect(reply.items?.[0]?.error).toBe('');
    expect(reply.items?.[0]?.value?.digest).toBe(sha256(manifests.get('/v2/large/manifests/v1') as Buffer));
  });

  it('answers every /healthz probe and a small request fast while one request parses 32 x 4 MiB manifests', async () => {
    const keys = Array.from({ length: KEYS }, (_, i) => `${registry.host}/slow:v${i}`);
    let done = false;
    const t0 = performance.now();
    const big = verify(keys).finally(() => (done = true));
    // Probe until the big request is answered: every probe must be fast, not just most.
    const probes: number[] = [];
    let small: { reply: Reply; elapsedMs: number } | undefined;
    while (!done) {
      probes.push(await probeMs());
      if ((probes.at(-1) ?? 0) > 100) console.log("SLOW", probes.length, (probes.at(-1) ?? 0).toFixed(0), (performance.now() - t0).toFixed(0), lastCpu);
      if (probes.length === 10) small = await verify([`${registry.host}/small:v1`]);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const { elapsedMs } = await big;
    const sorted = [...probes].sort((a, b) => a - b);
    console.log(
      `32 x 4 MiB manifests: request answered in ${elapsedMs.toFixed(0)} ms; ${probes.length} /healthz probes, median ${sorted[Math.floor(sorted.length / 2)]?.toFixed(1)} ms, max ${sorted.at(-1)?.toFixed(1)} ms; a 1-key request meanwhile took ${small?.elapsedMs.toFixed(0)} ms`,
    );
    expect(probes.length).toBeGreaterThan(10);
    expect(Math.max(...probes)).toBeLessThan(PROBE_BUDGET_MS);
    expect(small?.reply.items?.[0]?.error).toBe('');
    expect(small?.elapsedMs).toBeLessThan(SMALL_KEY_BUDGET_MS);
    expect(elapsedMs).toBeLessThan(DEADLINE_MS + 2000);
  });
});
