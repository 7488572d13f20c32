/**
 * The fastify app factory (separate from the process entry point so tests use `inject()`).
 * Only this folder imports fastify.
 */
import Fastify, { LogController, type FastifyError, type FastifyInstance } from 'fastify';
import type { TlsOptions } from 'node:tls';
import type { Logger, Metrics } from '../observability/index.ts';
import type { Runtime } from '../service/index.ts';
import { ProvenantError, type ErrorCode } from '../types/errors.ts';
import { registerProviderRoutes, providerResponse, requestOutcome } from './routes.ts';

export interface ServerOptions {
  readonly runtime: Runtime;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Absent: plain HTTP, for `inject()` tests only. */
  readonly https?: TlsOptions | undefined;
}

export async function buildServer(opts: ServerOptions): Promise<FastifyInstance> {
  const { runtime, metrics } = opts;
  const app = Fastify({
    loggerInstance: opts.logger,
    bodyLimit: runtime.config.server.bodyLimitBytes,
    // fastify's default ajv coerces types ("x" → ["x"], 1 → "1", null → ""): a malformed key must be
    // refused with a 400, never answered as some other image.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false } },
    // Requests are counted in metrics; the routes log what matters (codes and images), not every request.
    logController: new LogController({ disableRequestLogging: true }),
    ...(opts.https === undefined ? {} : { https: opts.https }),
  }) as unknown as FastifyInstance;

  // Kyverno's apiCall sends JSON without a Content-Type: every body is parsed as JSON, safely
  // (fastify's parser refuses __proto__ and constructor.prototype keys).
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, app.getDefaultJsonParser('error', 'error'));

  app.setErrorHandler((err: FastifyError, _req, reply) => {
    const { status, error } = classify(err, runtime.config.server.bodyLimitBytes);
    void reply.code(status).send(providerResponse([], error.toItemError()));
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send({
      error: `no route ${req.method} ${req.url}; the provider serves POST /v1/verify and POST /v1/mutate`,
    });
  });

  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unknown';
    const outcome = outcomeOf(reply.statusCode, requestOutcome.get(req));
    metrics.httpRequests.inc({ route, outcome });
    metrics.httpDuration.observe({ route, outcome }, reply.elapsedTime / 1000);
  });
  registerProviderRoutes(app, runtime);
  app.get('/healthz', (_req, reply) => reply.send({ status: 'ok' }));
  app.get('/readyz', (_req, reply) => {
    if (runtime.closing) return reply.code(503).send({ status: 'shutting down' });
    return reply.send({ status: 'ready', config: runtime.configSource });
  });
  app.get('/metrics', async (_req, reply) => {
    void reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });
  await app.ready();
  return app;
}

function outcomeOf(status: number, marker: string | undefined): string {
  if (status >= 500) return 'server_error';
  if (status >= 400) return 'client_error';
  return marker ?? 'ok';
}

const FASTIFY_CODES: Record<string, [number, ErrorCode, string]> = {
  FST_ERR_CTP_INVALID_JSON_BODY: [400, 'REQUEST_MALFORMED', 'expected a JSON body'],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, 'REQUEST_MALFORMED', 'expected a JSON body, found an empty body'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, 'REQUEST_MALFORMED', 'Content-Length does not match the body'],
};

function classify(err: FastifyError, bodyLimitBytes: number): { status: number; error: ProvenantError } {
  if (err instanceof ProvenantError) return { status: err.transient ? 503 : 400, error: err };
  if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    const expected = `expected a body of at most ${bodyLimitBytes} bytes (server.bodyLimitBytes)`;
    return { status: 413, error: new ProvenantError('REQUEST_TOO_LARGE', `${expected}: ${err.message}`) };
  }
  if (err.validation !== undefined) {
    const where = err.validation.map((v) => `${v.instancePath || '/'} ${v.message ?? ''}`.trim()).join('; ');
    return {
      status: 400,
      error: new ProvenantError(
        'REQUEST_MALFORMED',
        `expected a ProviderRequest {"apiVersion","kind","request":{"keys":[strings]}}, found: ${where}`,
      ),
    };
  }
  const known = FASTIFY_CODES[err.code];
  if (known !== undefined)
    return { status: known[0], error: new ProvenantError(known[1], `${known[2]}: ${err.message}`) };
  if (err.statusCode !== undefined && err.statusCode < 500) {
    return { status: err.statusCode, error: new ProvenantError('REQUEST_MALFORMED', err.message) };
  }
  return { status: 500, error: new ProvenantError('INTERNAL', `unexpected failure: ${err.message}`) };
}
