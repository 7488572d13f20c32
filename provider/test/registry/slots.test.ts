/**
 * Bounds on simultaneous registry requests (per host and overall), the deadline spent waiting for one,
 * and the bounded maps (agents per origin, tokens per scope) that outlive requests.
 */
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import { describe, expect, it } from 'vitest';

import { TokenCache } from '../../src/registry/auth.ts';
import { EgressPolicy } from '../../src/registry/egress.ts';
import { Transport, type HttpRequest, type HttpResponse } from '../../src/registry/transport.ts';
import { failureOf, hostileServers, type HostileServer } from '../helpers/hostile-server.ts';

const POLL_DEADLINE_MS = 5000;
const SLACK_MS = 1000;

/** Polls `condition` every few milliseconds until it holds, failing after POLL_DEADLINE_MS. */
async function until(condition: () => boolean, what: string): Promise<void> {
  const started = performance.now();
  while (!condition()) {
    if (performance.now() - started > POLL_DEADLINE_MS) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('registry request slots', () => {
  const { hostile, onCleanup } = hostileServers();

  function transport(limits: { global: number; perHost: number }): Transport {
    const t = new Transport({
      requestTimeoutMs: 10_000,
      maxRetries: 0,
      egress: new EgressPolicy({ registries: [{ host: '127.0.0.1:*', insecure: true }] }),
      maxConcurrentRequests: limits.global,
      maxConcurrentRequestsPerRegistry: limits.perHost,
    });
    onCleanup(() => t.close());
    return t;
  }

  /** A server that holds every response until `release` is called. */
  async function holding(): Promise<{ server: HostileServer; release: () => void }> {
    const held: ServerResponse[] = [];
    let released = false;
    const server = await hostile((_req, res) => {
      if (released) res.end('{}');
      else held.push(res);
    });
    return {
      server,
      release: () => {
        released = true;
        for (const res of held.splice(0)) res.end('{}');
      },
    };
  }

  const get = (server: HostileServer, signal: AbortSignal, i = 0): HttpRequest => ({
    method: 'GET',
    url: new URL(`http://${server.host}/v2/team/app/manifests/t${i}`),
    headers: {},
    maxBytes: 1024,
    signal,
    image: `${server.host}/team/app:t${i}`,
    purpose: 'registry',
  });

  it('sends at most maxConcurrentRequestsPerRegistry requests to one registry at once; the rest wait their turn', async () => {
    const { server, release } = await holding();
    const t = transport({ global: 64, perHost: 4 });
    const signal = AbortSignal.timeout(10_000);
    const all = Array.from({ length: 40 }, (_, i) => t.send(get(server, signal, i)));
    await until(
      () => server.requests.length === 4 && t.load.waiting === 36,
      '4 requests in flight, 36 queued',
    );
    expect(server.requests).toHaveLength(4);
    release();
    const answers: HttpResponse[] = await Promise.all(all);
    expect(answers.every((a) => a.status === 200)).toBe(true);
    expect(server.requests).toHaveLength(40);
    expect(t.load).toEqual({ active: 0, waiting: 0 });
  });

  it('sends at most maxConcurrentRequests requests overall, across registries', async () => {
    const a = await holding();
    const b = await holding();
    const t = transport({ global: 3, perHost: 16 });
    const signal = AbortSignal.timeout(10_000);
    const all = [
      ...Array.from({ length: 10 }, (_, i) => t.send(get(a.server, signal, i))),
      ...Array.from({ length: 10 }, (_, i) => t.send(get(b.server, signal, i))),
    ];
    const arrived = (): number => a.server.requests.length + b.server.requests.length;
    await until(() => arrived() === 3 && t.load.waiting === 17, '3 requests in flight, 17 queued');
    expect(t.load.active).toBe(3);
    a.release();
    b.release();
    await Promise.all(all);
    expect(a.server.requests.length + b.server.requests.length).toBe(20);
  });

  it("counts the wait for a slot against the caller's deadline", async () => {
    const { server, release } = await holding();
    onCleanup(() => Promise.resolve(release()));
    const t = transport({ global: 64, perHost: 1 });
    const first = t.send(get(server, AbortSignal.timeout(10_000)));
    await until(() => server.requests.length === 1, 'the first request to arrive');
    const { error, elapsedMs } = await failureOf(() => t.send(get(server, AbortSignal.timeout(200), 1)));
    expect(error.code).toBe('REGISTRY_TIMEOUT');
    expect(error.message).toContain(`${server.host}/team/app:t1`);
    expect(elapsedMs).toBeLessThan(200 + SLACK_MS);
    expect(server.requests).toHaveLength(1);
    expect(t.load.waiting).toBe(0);
    release();
    await expect(first).resolves.toMatchObject({ status: 200 });
  });

  it('opens no more connections to a registry than maxConcurrentRequestsPerRegistry, request after request', async () => {
    // A plain server, to count its connections (the hostile one records requests only).
    let open = 0;
    let peak = 0;
    let answered = 0;
    const server = createServer((_req, res) => {
      answered++;
      res.end('{}');
    });
    server.on('connection', (socket) => {
      peak = Math.max(peak, ++open);
      socket.once('close', () => open--);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    onCleanup(
      () =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    );
    const registry = { host: `127.0.0.1:${(server.address() as AddressInfo).port}` } as HostileServer;
    const t = transport({ global: 64, perHost: 2 });
    const signal = AbortSignal.timeout(10_000);
    for (let round = 0; round < 20; round++)
      await Promise.all(Array.from({ length: 8 }, (_, i) => t.send(get(registry, signal, round * 8 + i))));
    expect(answered).toBe(160);
    expect(peak).toBeLessThanOrEqual(2);
  });

  it('keeps at most 256 connection pools, however many origins images name', async () => {
    const t = transport({ global: 64, perHost: 16 });
    const signal = AbortSignal.timeout(30_000);
    // Closed loopback ports: each request fails at once, but each origin needed a pool.
    await Promise.allSettled(
      Array.from({ length: 300 }, (_, i) =>
        t.send({ ...get({ host: `127.0.0.1:${61000 + i}` } as HostileServer, signal, i) }),
      ),
    );
    expect(t.agentCount).toBeLessThanOrEqual(256);
    expect(t.agentCount).toBeGreaterThan(0);
  });
});

describe('TokenCache', () => {
  it('holds at most 1024 tokens, dropping the least recently used', () => {
    const tokens = new TokenCache();
    for (let i = 0; i < 2000; i++)
      tokens.set(`registry.example.com repository:team/app${i}:pull`, `Bearer ${i}`, 300);
    expect(tokens.size).toBe(1024);
    expect(tokens.get('registry.example.com repository:team/app1999:pull')).toBe('Bearer 1999');
    expect(tokens.get('registry.example.com repository:team/app0:pull')).toBeUndefined();
  });

  it('does not keep a token that would expire before it could be used', () => {
    const tokens = new TokenCache();
    tokens.set('k', 'Bearer short', 5);
    expect(tokens.get('k')).toBeUndefined();
    expect(tokens.size).toBe(0);
  });
});
