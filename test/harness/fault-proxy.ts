/**
 * A hostile HTTP proxy in front of a real registry, for faults no real registry produces on demand:
 * it forwards every request unchanged, or delays it, or answers every request with one status (a 429
 * or 5xx storm) without asking the registry. The mode can change while traffic flows; every request
 * that reaches it is counted.
 */
import { request as httpRequest } from 'node:http';
import { startHostileServer, type HostileServer } from '../../provider/test/helpers/hostile-server.ts';

export type ProxyMode =
  | { kind: 'forward' }
  | { kind: 'slow'; delayMs: number }
  | { kind: 'status'; status: number; headers?: Record<string, string> };

export interface FaultProxy {
  /** `127.0.0.1:PORT`: the registry part of image references that go through the proxy. */
  readonly host: string;
  /** Requests that reached the proxy so far. */
  count(): number;
  setMode(mode: ProxyMode): void;
  close(): Promise<void>;
}

export async function startFaultProxy(upstream: { host: string }): Promise<FaultProxy> {
  const [hostname, port] = upstream.host.split(':') as [string, string];
  let mode: ProxyMode = { kind: 'forward' };
  const forward: Parameters<typeof startHostileServer>[0] = (req, res) => {
    const out = httpRequest(
      { host: hostname, port: Number(port), method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    // The registry went away mid-request: so does the answer (a reset, as the client would see it).
    out.once('error', () => res.destroy());
    req.pipe(out);
  };
  const server: HostileServer = await startHostileServer((req, res, index) => {
    const now = mode;
    switch (now.kind) {
      case 'forward':
        return forward(req, res, index);
      case 'slow':
        return void setTimeout(() => forward(req, res, index), now.delayMs);
      case 'status':
        return void res.writeHead(now.status, now.headers).end();
    }
  });
  return {
    host: server.host,
    count: () => server.requests.length,
    setMode: (m) => (mode = m),
    close: () => server.close(),
  };
}
