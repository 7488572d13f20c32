/**
 * A plain HTTP reverse proxy in front of a registry (the benchmark's, a test's) that counts the requests it
 * forwards, by kind: "registry requests per image" is measured here, at the registry, the same way for
 * every system (their own metrics count differently or not at all). It also keeps the peak number of
 * client connections open and of requests in flight at once (what a registry's connection limits and
 * rate limiters see), and a log of every request with its time, for tests that assert on spacing.
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { LOOPBACK_HOST } from './process.ts';

/** What a distribution-spec path asks for (`/v2/<name>/manifests/<ref>` etc.). */
export type RequestKind = 'manifest' | 'blob' | 'referrers' | 'tags' | 'other';

export interface RequestCounts {
  total: number;
  /** `HEAD manifest`, `GET blob`, `GET referrers`…, with the answers' statuses: `GET manifest 404`. */
  byKind: Record<string, number>;
  /** Most client connections open at once (since the last take). */
  maxConnections: number;
  /** Most requests in flight at once: arrived, not yet answered in full (since the last take). */
  maxInFlight: number;
  /** Every answered request, in order of its answer. */
  log: LoggedRequest[];
}

export interface LoggedRequest {
  readonly method: string;
  /** The path, without the query. */
  readonly path: string;
  readonly status: number;
  /** performance.now() when the request arrived. */
  readonly atMs: number;
  /** Arrival to the registry's answer headers. */
  readonly ms: number;
}

export interface CountingProxy {
  /** `127.0.0.1:PORT`: the registry part of every benchmark image reference. */
  readonly host: string;
  readonly url: string;
  /** Counts since the last reset, and resets them. */
  take(): RequestCounts;
  close(): Promise<void>;
}

export function requestKind(path: string): RequestKind {
  if (/^\/v2\/.+\/manifests\/[^/]+$/.test(path)) return 'manifest';
  if (/^\/v2\/.+\/blobs\/[^/]+$/.test(path)) return 'blob';
  if (/^\/v2\/.+\/referrers\/[^/]+$/.test(path)) return 'referrers';
  if (/^\/v2\/.+\/tags\/list$/.test(path)) return 'tags';
  return 'other';
}

export async function startCountingProxy(upstream: string): Promise<CountingProxy> {
  const target = new URL(upstream);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  let connections = 0;
  let inFlight = 0;
  const fresh = (): RequestCounts => ({
    total: 0,
    byKind: {},
    maxConnections: connections,
    maxInFlight: inFlight,
    log: [],
  });
  let counts = fresh();
  const server = http.createServer((req, res) => {
    const atMs = performance.now();
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    inFlight += 1;
    counts.maxInFlight = Math.max(counts.maxInFlight, inFlight);
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      inFlight -= 1;
    };
    res.once('finish', finish);
    res.once('close', finish);
    const forward = http.request(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: target.host },
        agent,
      },
      (answer) => {
        const label = `${req.method ?? '?'} ${requestKind(path)} ${answer.statusCode ?? 0}`;
        counts.total += 1;
        counts.byKind[label] = (counts.byKind[label] ?? 0) + 1;
        counts.log.push({
          method: req.method ?? '?',
          path,
          status: answer.statusCode ?? 0,
          atMs,
          ms: performance.now() - atMs,
        });
        // Location headers name the upstream: rewrite them so uploads come back through the proxy.
        const headers = { ...answer.headers };
        if (typeof headers.location === 'string')
          headers.location = headers.location.replace(upstream, `http://${hostOf(server)}`);
        res.writeHead(answer.statusCode ?? 502, headers);
        answer.pipe(res);
      },
    );
    forward.on('error', (error) => {
      res.writeHead(502);
      res.end(error.message);
    });
    req.pipe(forward);
  });
  server.on('connection', (socket) => {
    connections += 1;
    counts.maxConnections = Math.max(counts.maxConnections, connections);
    socket.once('close', () => (connections -= 1));
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, LOOPBACK_HOST, resolve));
  const host = hostOf(server);
  return {
    host,
    url: `http://${host}`,
    take: () => {
      const taken = counts;
      counts = fresh();
      return taken;
    },
    close: () =>
      new Promise<void>((resolve) => {
        agent.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function hostOf(server: http.Server): string {
  const address = server.address();
  if (address === null || typeof address !== 'object') throw new Error('proxy is not listening');
  return `${LOOPBACK_HOST}:${address.port}`;
}
