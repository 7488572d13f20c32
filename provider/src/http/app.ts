/**
 * The fastify app factory (separate from the process entry point so tests use `inject()`).
 * Only this folder imports fastify.
 */
import Fastify, { LogController, type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import { STATUS_CODES, type ServerOptions as NodeServerOptions, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { TlsOptions } from 'node:tls';
import { TokenReviewer } from '../auth/index.ts';
import type { Logger, Metrics } from '../observability/index.ts';
import type { Runtime } from '../service/index.ts';
import { ProvenantError, type ErrorCode } from '../types/errors.ts';
import { credentialCheck } from './auth.ts';
import { registerProviderRoutes, providerResponse, requestOutcome } from './routes.ts';
import { API_VERSION } from './schemas.ts';

export interface ServerOptions {
  readonly runtime: Runtime;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Absent: plain HTTP, for `inject()` tests only. */
  readonly https?: TlsOptions | undefined;
  /** server.tls.clientCA is set: a client certificate it signed is a credential for /v1/*. */
  readonly clientCertificates?: boolean | undefined;
  /** Reviews Kyverno's tokens when server.auth.kyverno is enabled; default: the Kubernetes API's TokenReview. */
  readonly tokenReviewer?: TokenReviewer | undefined;
  /** Answer a few requests in process before returning (startServer, before it listens). */
  readonly warmUp?: boolean | undefined;
}

/**
 * How often node checks the headers and whole-request timeouts (its default, 30 s, would let a stalled
 * client stay up to 30 s past them).
 */
const CONNECTIONS_CHECK_INTERVAL_MS = 500;

/** Node's default `maxHeaderSize`, named in the 431 answer. */
const MAX_HEADER_BYTES = 16 * 1024;

/** HTTP statuses of the request-level codes; any other code is 503 when transient, else 400. */
const STATUS_BY_CODE: Partial<Record<ErrorCode, number>> = {
  REQUEST_TOO_LARGE: 413,
  REQUEST_UNSUPPORTED_MEDIA_TYPE: 415,
  REQUEST_CLIENT_CERTIFICATE_REQUIRED: 403,
  REQUEST_UNAUTHENTICATED: 401,
  REQUEST_TOKEN_INVALID: 401,
  REQUEST_SERVICE_ACCOUNT_NOT_ALLOWED: 403,
  REQUEST_NOT_FOUND: 404,
  REQUEST_METHOD_NOT_ALLOWED: 405,
  REQUEST_TIMEOUT: 408,
  REQUEST_HEADERS_TOO_LARGE: 431,
};

function statusOf(error: ProvenantError): number {
  return STATUS_BY_CODE[error.code] ?? (error.transient ? 503 : 400);
}

export async function buildServer(opts: ServerOptions): Promise<FastifyInstance> {
  const { runtime, metrics } = opts;
  const server = runtime.config.server;
  // Node's own limits (http.createServer options): fastify does not pass these through by name.
  const nodeOptions: NodeServerOptions = {
    headersTimeout: server.headersTimeoutMs,
    requestTimeout: server.bodyTimeoutMs,
    connectionsCheckingInterval: CONNECTIONS_CHECK_INTERVAL_MS,
    maxHeaderSize: MAX_HEADER_BYTES,
  };
  const app = Fastify({
    loggerInstance: opts.logger,
    bodyLimit: server.bodyLimitBytes,
    // A stalled client is closed: headers, then the whole request, must arrive in time (408), an idle
    // keep-alive connection is closed, and a connection where nothing moves for longer than a request can
    // legitimately take (receiving it, then answering it) is dropped: a client that never reads its answer.
    requestTimeout: server.bodyTimeoutMs,
    keepAliveTimeout: server.idleTimeoutMs,
    connectionTimeout: server.bodyTimeoutMs + server.requestDeadlineMs,
    // While the server closes, requests on open connections are still answered (the verifier closes only
    // after them); fastify's own 503 body is not a ProviderResponse.
    return503OnClosing: false,
    clientErrorHandler: (err: NodeJS.ErrnoException, socket: Socket) =>
      answerClientError(err, socket, server),
    // fastify's default ajv coerces types ("x" → ["x"], 1 → "1", null → ""): a malformed key must be
    // refused with a 400, never answered as some other image.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false } },
    // Requests are counted in metrics; the routes log what matters (codes and images), not every request.
    logController: new LogController({ disableRequestLogging: true }),
    ...(opts.https === undefined
      ? { http: nodeOptions }
      : // The TLS handshake comes before node's headers timeout starts: bound it the same way.
        { https: { ...opts.https, ...nodeOptions, handshakeTimeout: server.headersTimeoutMs } }),
  }) as unknown as FastifyInstance;
  app.server.maxConnections = server.maxConnections;

  registerBodyParsers(app);
  app.setErrorHandler((err: FastifyError, _req, reply) => {
    sendError(reply, classify(err, server.bodyLimitBytes));
  });
  const methodsByPath = new Map<string, Set<string>>();
  app.addHook('onRoute', (route) => {
    const methods = methodsByPath.get(route.url) ?? new Set<string>();
    for (const m of [route.method].flat()) methods.add(m);
    methodsByPath.set(route.url, methods);
  });
  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split('?')[0] ?? '';
    const allowed = methodsByPath.get(path);
    if (allowed === undefined) {
      sendError(
        reply,
        new ProvenantError(
          'REQUEST_NOT_FOUND',
          `no route ${req.method} ${path}; the provider serves POST /v1/verify and POST /v1/mutate`,
        ),
      );
      return;
    }
    const allow = [...allowed].sort().join(', ');
    void reply.header('allow', allow);
    sendError(
      reply,
      new ProvenantError('REQUEST_METHOD_NOT_ALLOWED', `expected ${allow} for ${path}, found ${req.method}`),
    );
  });

  const check = credentialCheck(
    server,
    {
      clientCertificates: opts.clientCertificates === true,
      tokenReviewer: server.auth.kyverno.enabled
        ? (opts.tokenReviewer ?? new TokenReviewer(server.auth.kyverno))
        : undefined,
    },
    metrics,
  );
  // The warm-up's requests (below) are made in process before the server listens, when no client can
  // send one; they carry no credentials.
  let warmingUp = false;
  if (check !== undefined)
    app.addHook('onRequest', (req, reply) => (warmingUp ? Promise.resolve() : check(req, reply)));
  // Draining for shutdown: every answer closes its connection, so keep-alive clients reconnect (to
  // another replica, now that this one is out of the endpoints) instead of staying pinned here.
  // Callback hooks rather than async ones: no promise per request for what is synchronous work.
  app.addHook('onSend', (_req, reply, payload, done) => {
    if (runtime.phase !== 'serving') void reply.header('connection', 'close');
    done(null, payload);
  });
  app.addHook('onResponse', (req, reply, done) => {
    const route = req.routeOptions.url ?? 'unknown';
    const outcome = outcomeOf(reply.statusCode, requestOutcome.get(req));
    metrics.httpRequests.inc({ route, outcome });
    metrics.httpDuration.observe({ route, outcome }, reply.elapsedTime / 1000);
    done();
  });
  registerProviderRoutes(app, runtime);
  app.get('/healthz', (_req, reply) => reply.send({ status: 'ok' }));
  app.get('/readyz', (_req, reply) => {
    if (runtime.phase !== 'serving') return reply.code(503).send({ status: 'shutting down' });
    return reply.send({ status: 'ready', config: runtime.configSource });
  });
  app.get('/metrics', async (_req, reply) => {
    void reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });
  await app.ready();
  if (opts.warmUp === true) {
    warmingUp = true;
    try {
      await warmUp(app);
    } finally {
      warmingUp = false;
    }
    metrics.httpRequests.reset();
    metrics.httpDuration.reset();
  }
  return app;
}

/**
 * Both routes answer a few empty ProviderRequests in process: fastify's routing, body parsing,
 * validation and reply run before a client waits on them (the request counters then forget them).
 */
async function warmUp(app: FastifyInstance): Promise<void> {
  const payload = { apiVersion: API_VERSION, kind: 'ProviderRequest', request: { keys: [] } };
  for (let i = 0; i < WARM_UP_REQUESTS; i++)
    for (const url of ['/v1/verify', '/v1/mutate']) await app.inject({ method: 'POST', url, payload });
}

const WARM_UP_REQUESTS = 8;

/**
 * JSON bodies, with or without a Content-Type: Kyverno's apiCall sends JSON without one. Any other
 * declared type is refused (415). fastify's JSON parser refuses __proto__ and constructor.prototype keys.
 */
function registerBodyParsers(app: FastifyInstance): void {
  const json = app.getDefaultJsonParser('error', 'error');
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, json);
  app.addContentTypeParser('*', { parseAs: 'string' }, (req, body, done) => {
    const declared = req.headers['content-type'];
    if (declared === undefined) {
      void json(req, body as string, done);
      return;
    }
    done(
      new ProvenantError(
        'REQUEST_UNSUPPORTED_MEDIA_TYPE',
        `expected Content-Type application/json (or none), found ${JSON.stringify(declared)}`,
      ),
      undefined,
    );
  });
}

function sendError(reply: FastifyReply, error: ProvenantError): void {
  void reply.code(statusOf(error)).send(providerResponse([], error.toItemError()));
}

function outcomeOf(status: number, marker: string | undefined): string {
  if (status >= 500) return 'server_error';
  if (status >= 400) return 'client_error';
  return marker ?? 'ok';
}

const FASTIFY_CODES: Record<string, [ErrorCode, string]> = {
  FST_ERR_CTP_INVALID_JSON_BODY: ['REQUEST_MALFORMED', 'expected a JSON body'],
  FST_ERR_CTP_EMPTY_JSON_BODY: ['REQUEST_MALFORMED', 'expected a JSON body, found an empty body'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: ['REQUEST_MALFORMED', 'Content-Length does not match the body'],
};

function classify(err: FastifyError, bodyLimitBytes: number): ProvenantError {
  if (err instanceof ProvenantError) return err;
  if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    const expected = `expected a body of at most ${bodyLimitBytes} bytes (server.bodyLimitBytes)`;
    return new ProvenantError('REQUEST_TOO_LARGE', `${expected}: ${err.message}`);
  }
  if (err.validation !== undefined) {
    const where = err.validation.map((v) => `${v.instancePath || '/'} ${v.message ?? ''}`.trim()).join('; ');
    return new ProvenantError(
      'REQUEST_MALFORMED',
      `expected a ProviderRequest {"apiVersion","kind","request":{"keys":[strings]}}, found: ${where}`,
    );
  }
  const known = FASTIFY_CODES[err.code];
  if (known !== undefined) return new ProvenantError(known[0], `${known[1]}: ${err.message}`);
  if (err.statusCode !== undefined && err.statusCode < 500) {
    return new ProvenantError('REQUEST_MALFORMED', err.message);
  }
  return new ProvenantError('INTERNAL', `unexpected failure: ${err.message}`);
}

/**
 * Node's parser failed below fastify (a request that stalled, headers too large, broken chunked
 * framing): answer with a ProviderResponse written on the socket, then close it. Like node's own
 * socketOnError, nothing is written when an answer has already started on this connection.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Socket, server: ServerConfig): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const error = clientError(err, server);
  const inFlight = (socket as Socket & { _httpMessage?: ServerResponse })._httpMessage;
  if (socket.writable && inFlight?.headersSent !== true) {
    const status = statusOf(error);
    const body = JSON.stringify(providerResponse([], error.toItemError()));
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

type ServerConfig = Runtime['config']['server'];

function clientError(err: NodeJS.ErrnoException, server: ServerConfig): ProvenantError {
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    return new ProvenantError(
      'REQUEST_TIMEOUT',
      `expected the request headers within ${server.headersTimeoutMs} ms (server.headersTimeoutMs) and the whole request within ${server.bodyTimeoutMs} ms (server.bodyTimeoutMs), found it incomplete; closing the connection`,
    );
  }
  if (err.code === 'HPE_HEADER_OVERFLOW') {
    return new ProvenantError(
      'REQUEST_HEADERS_TOO_LARGE',
      `expected request headers of at most ${MAX_HEADER_BYTES} bytes, found more`,
    );
  }
  if (err.code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW') {
    return new ProvenantError('REQUEST_TOO_LARGE', 'expected chunk extensions of at most 16 KiB, found more');
  }
  return new ProvenantError(
    'REQUEST_MALFORMED',
    `expected an HTTP/1.1 request, found one the parser refuses (${err.code ?? 'unknown'}: ${err.message})`,
  );
}
