/**
 * The real provider process against registries that misbehave in ways no honest server does: a 100 MB
 * manifest, a body that never ends, a redirect loop. Each is answered inside the request deadline with
 * a coded error naming the image, memory stays bounded, and the process keeps serving.
 */
import { readFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Agent } from 'undici';
import { request } from 'undici';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHostileServer, type HostileServer } from '../../../provider/test/helpers/hostile-server.ts';
import { makeTempDir } from '../../harness/process.ts';
import { devCertAgent, startProvenant, type RunningProvenant } from '../../harness/provenant.ts';
import { askProvider, type ProviderAnswer } from '../../harness/world.ts';

const DEADLINE_MS = 1500;
const SLACK_MS = 1500;
const HUNDRED_MB = 100 * 1024 * 1024;

function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) * 1024;
}

describe('provider against a hostile registry', () => {
  let dir: string;
  let registry: HostileServer;
  let provenant: RunningProvenant;
  let dispatcher: Agent;

  beforeAll(async () => {
    registry = await startHostileServer((req, res) => {
      const url = req.url ?? '';
      if (url.startsWith('/v2/huge/')) {
        // No Content-Length and no digest header: the client must read, and must stop reading.
        res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
        const chunk = Buffer.alloc(64 * 1024, 0x20);
        let sent = 0;
        const pump = (): void => {
          while (!res.destroyed && sent < HUNDRED_MB) {
            sent += chunk.length;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
          res.end();
        };
        pump();
      } else if (url.startsWith('/v2/slow/')) {
        res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
        const timer = setInterval(() => (res.destroyed ? clearInterval(timer) : res.write(' ')), 100);
      } else if (url.startsWith('/v2/loop/')) {
        res.writeHead(307, { location: url.endsWith('/again') ? url.slice(0, -6) : `${url}/again` });
        res.end();
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    dir = await makeTempDir('hostile-provider');
    const config = path.join(dir, 'config.yaml');
    await writeFile(
      config,
      stringify({
        validators: [{ name: 'allow', type: 'static', approve: true }],
        policy: [
          { pattern: `${registry.host}/*`, validator: 'allow' },
          // Patterns that list hosts an attacker would like reached: listing is not naming in registries:.
          { pattern: '169.254.169.254/*', validator: 'allow' },
          { pattern: '127.0.0.1:*/*', validator: 'allow' },
          { pattern: '*:*', validator: 'allow' },
        ],
        registries: [{ host: registry.host, insecure: true }],
        server: { host: '127.0.0.1', requestDeadlineMs: DEADLINE_MS },
        network: { requestTimeoutMs: 5000, maxRetries: 0 },
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

  async function verify(key: string): Promise<{ reply: ProviderAnswer; elapsedMs: number }> {
    const started = performance.now();
    const reply = await askProvider(provenant.url, dispatcher, 'verify', [key]);
    expect(reply.status).toBe(200);
    return { reply, elapsedMs: performance.now() - started };
  }

  it('refuses a 100 MB manifest with REGISTRY_RESPONSE_TOO_LARGE, reading only a few MiB, memory bounded', async () => {
    // The first request loads and compiles the verification path (tsx, undici, the registry client):
    // memory that says nothing about bodies. Measure from after it.
    let before = 0;
    for (let i = 0; i < 6; i++) {
      if (i === 1) before = rssBytes(provenant.pid);
      const key = `${registry.host}/huge/app:v${i}`;
      const { reply, elapsedMs } = await verify(key);
      expect(reply.items[0]?.error).toMatch(
        new RegExp(`^REGISTRY_RESPONSE_TOO_LARGE: .*${key.replace(/[.]/g, '\\.')}`),
      );
      expect(elapsedMs).toBeLessThan(DEADLINE_MS + SLACK_MS);
    }
    // Five more 100 MB answers later the process grew by far less than one of them.
    expect(rssBytes(provenant.pid) - before).toBeLessThan(64 * 1024 * 1024);
  });

  it('answers an endless slow body inside the deadline with a retryable systemError', async () => {
    const key = `${registry.host}/slow/app:v1`;
    const { reply, elapsedMs } = await verify(key);
    expect(reply.items).toEqual([]);
    expect(reply.systemError).toMatch(/^REQUEST_DEADLINE_EXCEEDED|^REGISTRY_TIMEOUT/);
    expect(elapsedMs).toBeLessThan(DEADLINE_MS + SLACK_MS);
  });

  it('refuses a redirect loop with REGISTRY_TOO_MANY_REDIRECTS naming the image', async () => {
    const key = `${registry.host}/loop/app:v1`;
    const { reply, elapsedMs } = await verify(key);
    expect(reply.items[0]?.error).toContain(
      `REGISTRY_TOO_MANY_REDIRECTS: registry ${registry.host} redirected a request for ${key}`,
    );
    expect(elapsedMs).toBeLessThan(DEADLINE_MS + SLACK_MS);
  });

  it.each([
    ['the cloud metadata address', () => '169.254.169.254/latest/meta-data:v1', 'linkLocal'],
    ["Provenant's own port", () => `127.0.0.1:${new URL(provenant.url).port}/v1/verify:v1`, 'loopback'],
    [
      'a registry nothing lists, under a catch-all rule',
      () => 'unlisted.example.com/app:v1',
      'no registries: entry',
    ],
  ])(
    'refuses an image naming %s with REGISTRY_EGRESS_DENIED, a verdict with no socket detail',
    async (_what, key, says) => {
      const { reply, elapsedMs } = await verify(key());
      expect(reply.systemError).toBe('');
      expect(reply.items[0]?.error).toMatch(
        new RegExp(
          `^REGISTRY_EGRESS_DENIED: registry \\S+ may not be contacted for ${key().replace(/[.]/g, '\\.')}: .*${says}`,
        ),
      );
      expect(reply.items[0]?.error).not.toMatch(/ECONN|EHOST|ENOTFOUND|certificate/);
      expect(elapsedMs).toBeLessThan(DEADLINE_MS);
    },
  );

  it('keeps serving afterwards', async () => {
    const res = await request(`${provenant.url}/healthz`, { dispatcher });
    expect(res.statusCode).toBe(200);
    await res.body.dump();
  });
});
