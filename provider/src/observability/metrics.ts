/** Prometheus metrics (prom-client), one registry per server so tests and reloads never collide. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class Metrics {
  readonly registry = new Registry();

  readonly httpRequests = new Counter({
    name: 'provenant_http_requests_total',
    help: 'HTTP requests by route and outcome (ok, item_errors, system_error, client_error).',
    labelNames: ['route', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly httpDuration = new Histogram({
    name: 'provenant_http_request_duration_seconds',
    help: 'HTTP request latency by route and outcome.',
    labelNames: ['route', 'outcome'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });

  readonly authRefusals = new Counter({
    name: 'provenant_auth_refusals_total',
    help: 'Requests to /v1/* refused for their credentials, by route and error code.',
    labelNames: ['route', 'code'] as const,
    registers: [this.registry],
  });

  readonly verifications = new Counter({
    name: 'provenant_verifications_total',
    help: 'Image verifications by validator, result (trusted, rejected, error) and error code (none when trusted), cached ones included.',
    // code: a ProvenantError code (types/errors.ts), a fixed set, so the series stay bounded; never an image.
    labelNames: ['validator', 'result', 'cached', 'code'] as const,
    registers: [this.registry],
  });

  readonly tlsCertificateExpiry = new Gauge({
    name: 'provenant_tls_certificate_expiry_timestamp_seconds',
    help: 'When the certificates Provenant serves stop being valid (Unix seconds; the earliest notAfter in each file): serving, and client_ca with server.tls.clientCA. Updated when they rotate.',
    labelNames: ['certificate'] as const,
    registers: [this.registry],
  });

  readonly configReloads = new Counter({
    name: 'provenant_config_reloads_total',
    help: 'Config reloads by result (ok, error).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  readonly cacheRejections = new Counter({
    name: 'provenant_cache_entries_rejected_total',
    help: 'Shared-cache (Redis) entries refused and treated as misses, by reason (mac, expired, malformed).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  constructor(defaultMetrics = true) {
    if (defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'provenant_' });
  }
}
