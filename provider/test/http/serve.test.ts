/**
 * The real listening server (startServer: HTTPS, node's parser, timeouts, connection limits), driven
 * by raw TLS sockets for what a well-behaved client never does: stall, trickle, overflow, misframe.
 */
import { connect as tcpConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { startServer, type RunningServer } from '../../src/http/index.ts';
import { createLogger, Metrics } from '../../src/observability/index.ts';
import { Runtime } from '../../src/service/index.ts';
import { sha256Digest } from '../helpers/hostile-server.ts';
import { configFromYaml, STATIC_ALLOW_DENY } from '../helpers/runtime.ts';

const HEADERS_TIMEOUT_MS = 400;
const BODY_TIMEOUT_MS = 1200;
const IDLE_TIMEOUT_MS = 600;
/** Node checks the request timeouts every 500 ms (app.ts); a close may come that much later. */
const CHECK_SLACK_MS = 1000;
/** Node keeps an idle keep-alive socket 1 s longer than keepAliveTimeout (HTTP_SERVER_KEEP_ALIVE_TIMEOUT_BUFFER). */
const KEEP_ALIVE_BUFFER_MS = 1000;
// Digest-only: a key with a tag and a digest is resolved at the registry, which these tests have none of.
const ALLOWED = `registry.test/allowed/app@${sha256Digest('allowed')}`;
const REQUEST_JSON = JSON.stringify({ request: { keys: [ALLOWED] } });

interface Started {
  readonly server: RunningServer;
  readonly runtime: Runtime;
  readonly port: number;
  readonly metrics: Metrics;
}

const running: Started[] = [];
afterEach(async () => {
  for (const { server, runtime } of running.splice(0)) {
    await server.close();
    await runtime.close();
  }
});

async function start(serverYaml = ''): Promise<Started> {
  const config = configFromYaml(`${STATIC_ALLOW_DENY}policy:
  - pattern: "registry.test/allowed/*"
    validator: allow
server:
  host: 127.0.0.1
  port: 0
  headersTimeoutMs: ${HEADERS_TIMEOUT_MS}
  bodyTimeoutMs: ${BODY_TIMEOUT_MS}
  idleTimeoutMs: ${IDLE_TIMEOUT_MS}
${serverYaml}`);
  const metrics = new Metrics(false);
  const runtime = new Runtime(config, 'test config', { metrics });
  const server = await startServer({
    runtime,
    metrics,
    logger: createLogger('silent'),
    server: config.server,
  });
  const started = { server, runtime, port: Number(new URL(server.url).port), metrics };
  running.push(started);
  return started;
}

interface Exchange {
  /** Everything the server sent before it closed the connection. */
  readonly received: string;
  /** From the first byte written to the close. */
  readonly closedAfterMs: number;
}

interface Connection {
  /** What the server sent so far. */
  readonly received: () => string;
  /** Resolves when the server closes the connection. */
  readonly closed: Promise<Exchange>;
}

/**
 * Opens a TLS connection, writes `head`, then calls `feed` (to trickle more, or do nothing). The
 * development certificate is not what is tested here.
 */
function open(port: number, head: string, feed: (socket: TLSSocket) => void = () => {}): Connection {
  let received = '';
  const closed = new Promise<Exchange>((resolve, reject) => {
    let started = 0;
    const socket = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      started = performance.now();
      socket.write(head);
      feed(socket);
    });
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (received += d));
    // A reset after the answer is still a close; one before the handshake is a failure.
    socket.on('error', (err: Error) => (started === 0 ? reject(err) : undefined));
    socket.once('close', () => resolve({ received, closedAfterMs: performance.now() - started }));
  });
  return { received: () => received, closed };
}

function exchange(port: number, head: string, feed?: (socket: TLSSocket) => void): Promise<Exchange> {
  return open(port, head, feed).closed;
}

interface RawAnswer {
  readonly status: number;
  readonly headers: string;
  readonly systemError: string;
}

function parseAnswer(raw: string): RawAnswer {
  const [head = '', body = ''] = raw.split('\r\n\r\n');
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
  const json = JSON.parse(body) as { kind: string; response: { items: unknown[]; systemError: string } };
  expect(json.kind).toBe('ProviderResponse');
  expect(json.response.items).toEqual([]);
  return { status, headers: head.toLowerCase(), systemError: json.response.systemError };
}

const postHead = (extra = ''): string =>
  `POST /v1/verify HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n${extra}`;

/** Writes one byte every `everyMs` until the connection closes. */
function trickle(text: string, everyMs: number): (socket: TLSSocket) => void {
  return (socket) => {
    let i = 0;
    const timer = setInterval(() => socket.write(text[i++ % text.length] as string), everyMs);
    socket.once('close', () => clearInterval(timer));
  };
}

describe('starting', () => {
  it('counts no request before the first client: the warm-up requests it answers in process are forgotten', async () => {
    const { metrics } = await start();
    const counted = await metrics.registry.getSingleMetricAsString('provenant_http_requests_total');
    expect(counted).toContain('# TYPE provenant_http_requests_total counter');
    expect(counted).not.toMatch(/^provenant_http_requests_total\{/m);
  });
});

describe('the listening server', () => {
  // One server for the tests that leave it as they found it; the others start their own.
  let shared: Started;
  beforeAll(async () => {
    shared = await start();
    running.splice(running.indexOf(shared), 1);
  });
  afterAll(async () => {
    await shared.server.close();
    await shared.runtime.close();
  });

  describe('closing clients that stall (server.headersTimeoutMs, bodyTimeoutMs, idleTimeoutMs)', () => {
    it('answers a body that stops half way with a 408 ProviderResponse and closes the connection', async () => {
      const { port } = shared;
      const { received, closedAfterMs } = await exchange(
        port,
        `${postHead(`Content-Length: ${REQUEST_JSON.length}\r\n`)}\r\n${REQUEST_JSON.slice(0, 10)}`,
      );
      const answer = parseAnswer(received);
      expect(answer.status).toBe(408);
      expect(answer.headers).toContain('connection: close');
      expect(answer.systemError).toMatch(
        /^REQUEST_TIMEOUT: expected .* within 1200 ms \(server\.bodyTimeoutMs\)/,
      );
      expect(closedAfterMs).toBeLessThan(BODY_TIMEOUT_MS + CHECK_SLACK_MS);
    });

    it('closes a body that trickles a byte at a time, however steadily, once bodyTimeoutMs has passed', async () => {
      const { port } = shared;
      const { received, closedAfterMs } = await exchange(
        port,
        `${postHead('Content-Length: 100000\r\n')}\r\n`,
        trickle(' ', 50),
      );
      expect(parseAnswer(received).status).toBe(408);
      expect(closedAfterMs).toBeGreaterThanOrEqual(BODY_TIMEOUT_MS - 50);
      expect(closedAfterMs).toBeLessThan(BODY_TIMEOUT_MS + CHECK_SLACK_MS);
    });

    it('closes a chunked body that trickles', async () => {
      const { port } = shared;
      const { received, closedAfterMs } = await exchange(
        port,
        `${postHead('Transfer-Encoding: chunked\r\n')}\r\n`,
        trickle('1\r\n \r\n', 50),
      );
      expect(parseAnswer(received).status).toBe(408);
      expect(closedAfterMs).toBeLessThan(BODY_TIMEOUT_MS + CHECK_SLACK_MS);
    });

    it('closes a client that trickles its headers (slowloris) after headersTimeoutMs', async () => {
      const { port } = shared;
      const { received, closedAfterMs } = await exchange(
        port,
        'POST /v1/verify HTTP/1.1\r\n',
        trickle('X-a: b\r\n', 50),
      );
      expect(parseAnswer(received).status).toBe(408);
      expect(closedAfterMs).toBeLessThan(HEADERS_TIMEOUT_MS + CHECK_SLACK_MS);
    });

    it('closes a connection that sends nothing after the TLS handshake after headersTimeoutMs', async () => {
      const { port } = shared;
      const { received, closedAfterMs } = await exchange(port, '');
      expect(parseAnswer(received).status).toBe(408);
      expect(closedAfterMs).toBeLessThan(HEADERS_TIMEOUT_MS + CHECK_SLACK_MS);
    });

    it('closes a connection that never finishes the TLS handshake after headersTimeoutMs', async () => {
      const { port } = shared;
      const closedAfterMs = await new Promise<number>((resolve) => {
        const started = performance.now();
        const socket: Socket = tcpConnect({ host: '127.0.0.1', port });
        socket.on('error', () => {});
        socket.once('close', () => resolve(performance.now() - started));
      });
      expect(closedAfterMs).toBeLessThan(HEADERS_TIMEOUT_MS + CHECK_SLACK_MS);
    });

    it('closes a keep-alive connection left idle for idleTimeoutMs, after answering on it', async () => {
      const { port } = shared;
      const { received, closedAfterMs } = await exchange(
        port,
        `${postHead(`Content-Length: ${REQUEST_JSON.length}\r\n`)}\r\n${REQUEST_JSON}`,
      );
      expect(received).toMatch(/^HTTP\/1\.1 200 /);
      expect(received).toContain(`"key":"${ALLOWED}"`);
      expect(closedAfterMs).toBeGreaterThanOrEqual(IDLE_TIMEOUT_MS - 50);
      expect(closedAfterMs).toBeLessThan(IDLE_TIMEOUT_MS + KEEP_ALIVE_BUFFER_MS + CHECK_SLACK_MS);
    });

    it('does not let a stalled client hold shutdown past bodyTimeoutMs + requestDeadlineMs', async () => {
      const deadlineMs = 300;
      const { port, server } = await start(`  requestDeadlineMs: ${deadlineMs}\n`);
      // node answers 100 Continue once it has parsed the headers: from then on the request is in flight.
      const stalled = open(port, `${postHead('Content-Length: 1000\r\nExpect: 100-continue\r\n')}\r\n{`);
      await expect.poll(stalled.received, { timeout: 5000 }).toMatch(/^HTTP\/1\.1 100 Continue/);
      const started = performance.now();
      await server.close();
      expect(performance.now() - started).toBeLessThan(BODY_TIMEOUT_MS + deadlineMs + CHECK_SLACK_MS);
      await stalled.closed;
    });
  });

  describe('limiting connections (server.maxConnections)', () => {
    it('drops connections beyond maxConnections, and accepts again once one closes', async () => {
      const { port } = await start('  maxConnections: 2\n');
      const connect = (): Promise<TLSSocket> =>
        new Promise((resolve, reject) => {
          const socket = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () =>
            resolve(socket),
          );
          socket.once('error', reject);
          socket.once('close', () => reject(new Error('closed before the handshake')));
        });
      const first = await connect();
      const second = await connect();
      await expect(connect()).rejects.toThrow();
      first.destroy();
      await expect
        .poll(
          async () =>
            connect().then(
              (s) => (s.destroy(), true),
              () => false,
            ),
          { timeout: 5000 },
        )
        .toBe(true);
      second.destroy();
    });
  });

  describe('answering framing errors with a ProviderResponse', () => {
    it('answers headers over 16 KiB with a 431 naming REQUEST_HEADERS_TOO_LARGE', async () => {
      const { port } = shared;
      const { received } = await exchange(port, `${postHead(`X-Big: ${'a'.repeat(20_000)}\r\n`)}\r\n`);
      const answer = parseAnswer(received);
      expect(answer.status).toBe(431);
      expect(answer.systemError).toMatch(
        /^REQUEST_HEADERS_TOO_LARGE: expected request headers of at most 16384 bytes/,
      );
    });

    it('answers broken chunked encoding with a 400 naming REQUEST_MALFORMED', async () => {
      const { port } = shared;
      const { received } = await exchange(
        port,
        `${postHead('Transfer-Encoding: chunked\r\n')}\r\nzz\r\n{}\r\n0\r\n\r\n`,
      );
      const answer = parseAnswer(received);
      expect(answer.status).toBe(400);
      expect(answer.systemError).toMatch(
        /^REQUEST_MALFORMED: expected an HTTP\/1\.1 request, found one the parser refuses \(HPE_/,
      );
    });
  });
});
