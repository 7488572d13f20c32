/**
 * HTTP to registries (and Notary servers): every request passes the egress policy first and connects
 * through its checked DNS answers; one undici Agent (connection pool) per origin, pruned when idle; a
 * bound on simultaneous requests per host and overall; a timeout on every request, bounded bodies, and
 * retries with backoff on 429/5xx that honour `Retry-After` but never run past the caller's deadline
 * (the policy engine's admission budget).
 */
import { readFileSync } from 'node:fs';
import { LRUCache } from 'lru-cache';
import { Agent, errors as undiciErrors, type Dispatcher } from 'undici';
import { traceStep } from '../observability/trace.ts';
import { ProvenantError } from '../types/errors.ts';
import { EgressDeniedError, type EgressPolicy, type EgressPurpose } from './egress.ts';
import { RequestSlots } from './slots.ts';

export interface TransportOptions {
  readonly requestTimeoutMs: number;
  readonly maxRetries: number;
  /** Which hosts and addresses may be contacted: every request is checked against it. */
  readonly egress: EgressPolicy;
  readonly maxConcurrentRequests?: number | undefined;
  readonly maxConcurrentRequestsPerRegistry?: number | undefined;
}

/** TLS trust for a server with a private CA: a PEM file (`registries[].ca`) or PEM text (a validator's `cert`). */
export type TlsTrust = { readonly file: string } | { readonly pem: string };

export interface HttpResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | undefined>>;
  readonly body: Buffer;
}

export interface HttpRequest {
  readonly method: 'GET' | 'HEAD';
  readonly url: URL;
  readonly headers: Record<string, string>;
  /** Bodies above this are refused before they are read in full. */
  readonly maxBytes: number;
  readonly signal: AbortSignal;
  /** For error messages: which image asked. */
  readonly image: string;
  /** Why this connection is made (egress: only registries an image may name get `registry`). */
  readonly purpose: EgressPurpose;
  readonly ca?: TlsTrust | undefined;
}

/** A network error's kind for a trace line (never its message, which may map the network). */
function errorName(err: unknown): string {
  return err instanceof Error ? ((err as NodeJS.ErrnoException).code ?? err.name) : 'error';
}

const RETRY_BASE_DELAY_MS = 100;
const MAX_RETRY_AFTER_MS = 10_000;
const KEEP_ALIVE_MS = 30_000;
export const DEFAULT_MAX_CONCURRENT_REQUESTS = 64;
export const DEFAULT_MAX_CONCURRENT_REQUESTS_PER_REGISTRY = 16;
// Agents are per origin, and origins come from images, redirects and realms: keep a bounded set and
// drop the ones that have been idle longer than a kept-alive connection would live anyway.
const MAX_AGENTS = 256;
const AGENT_IDLE_MS = 5 * 60_000;

export class Transport {
  private readonly agents = new LRUCache<string, Agent>({
    max: MAX_AGENTS,
    ttl: AGENT_IDLE_MS,
    updateAgeOnGet: true,
    // A dropped agent finishes its in-flight requests before closing (undici Agent.close).
    dispose: (agent) => void agent.close(),
  });
  private readonly slots: RequestSlots;

  private readonly perRegistry: number;

  constructor(private readonly options: TransportOptions) {
    this.perRegistry =
      options.maxConcurrentRequestsPerRegistry ?? DEFAULT_MAX_CONCURRENT_REQUESTS_PER_REGISTRY;
    this.slots = new RequestSlots({
      maxConcurrentRequests: options.maxConcurrentRequests ?? DEFAULT_MAX_CONCURRENT_REQUESTS,
      maxConcurrentRequestsPerRegistry: this.perRegistry,
    });
  }

  /** Requests in flight and waiting for a slot. */
  get load(): { readonly active: number; readonly waiting: number } {
    return this.slots.counts;
  }

  /** Agents held (pruned by count and idleness). */
  get agentCount(): number {
    return this.agents.size;
  }

  async send(req: HttpRequest): Promise<HttpResponse> {
    let agent: Agent;
    try {
      agent = this.agentFor(req);
    } catch (err) {
      traceStep('fetch', `${req.method} ${req.url.origin}${req.url.pathname} → not sent (${errorName(err)})`);
      throw networkError(err, req);
    }
    for (let attempt = 0; ; attempt++) {
      const res = await this.once(agent, req);
      const retryable = res.status === 429 || res.status >= 500;
      if (!retryable || attempt >= this.options.maxRetries) return res;
      const delay = retryDelayMs(res.headers['retry-after'], attempt);
      if (delay === undefined || !(await sleep(delay, req.signal))) return res;
    }
  }

  /** The pool for the request's origin, after the egress policy admitted the host; its sockets connect only to checked addresses. */
  private agentFor(req: HttpRequest): Agent {
    const reach = this.options.egress.admit(req.url.host, req.purpose);
    const key = `${req.url.origin} ${reach}`;
    let agent = this.agents.get(key);
    if (agent === undefined) {
      const ca =
        req.ca === undefined ? undefined : 'pem' in req.ca ? req.ca.pem : readFileSync(req.ca.file, 'utf8');
      agent = new Agent({
        connect: {
          timeout: this.options.requestTimeoutMs,
          lookup: this.options.egress.lookupFor(req.url.host, reach),
          ...(ca === undefined ? {} : { ca }),
        },
        keepAliveTimeout: KEEP_ALIVE_MS,
        // No more connections than requests in flight to the host: a connection undici still counts as
        // busy (its answer just read) must not make it open another; a request waits for a free one.
        connections: this.perRegistry,
      });
      this.agents.set(key, agent);
    }
    return agent;
  }

  private async once(agent: Agent, req: HttpRequest): Promise<HttpResponse> {
    const { signal, done } = withTimeout(req.signal, this.options.requestTimeoutMs);
    let release: () => void;
    try {
      // Waiting for a slot spends the caller's deadline, not a fresh request timeout.
      release = await this.slots.acquire(req.url.host, req.signal);
    } catch (err) {
      done();
      throw networkError(err, req);
    }
    try {
      let res: Dispatcher.ResponseData;
      try {
        res = await agent.request({
          origin: req.url.origin,
          path: `${req.url.pathname}${req.url.search}`,
          method: req.method,
          headers: req.headers,
          signal,
          headersTimeout: this.options.requestTimeoutMs,
          bodyTimeout: this.options.requestTimeoutMs,
        });
      } catch (err) {
        traceStep('fetch', `${req.method} ${req.url.origin}${req.url.pathname} → failed (${errorName(err)})`);
        throw networkError(err, req);
      }
      const body = await readBounded(res, req);
      traceStep(
        'fetch',
        `${req.method} ${req.url.origin}${req.url.pathname} → ${res.statusCode} (${body.length} bytes)`,
      );
      return { status: res.statusCode, headers: flatten(res.headers), body };
    } finally {
      done();
      release();
    }
  }

  async close(): Promise<void> {
    const agents = [...this.agents.values()];
    this.agents.clear();
    await Promise.all(agents.map((a) => a.close()));
  }
}

/**
 * `signal`, or `ms` passing, whichever comes first, with the reasons AbortSignal.any and
 * AbortSignal.timeout would give; `done()` releases the timer and the listener. Cheaper per request than
 * those two (the cold-path profile: about 0.15 ms of CPU a cosign image), which Node 20 tracks with weak
 * references and finalizers.
 */
function withTimeout(signal: AbortSignal, ms: number): { signal: AbortSignal; done: () => void } {
  const controller = new AbortController();
  const onAbort = (): void => controller.abort(signal.reason);
  const timer = setTimeout(
    () => controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError')),
    ms,
  );
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  return {
    signal: controller.signal,
    done: () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    },
  };
}

async function readBounded(res: Dispatcher.ResponseData, req: HttpRequest): Promise<Buffer> {
  const declared = Number(res.headers['content-length'] ?? NaN);
  // Destroying a body can emit 'error' (an AbortError); nobody else listens, so this must.
  res.body.on('error', () => undefined);
  if (declared > req.maxBytes) {
    res.body.destroy();
    throw tooLarge(req, `${declared} bytes (Content-Length)`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of res.body) {
      size += (chunk as Buffer).length;
      if (size > req.maxBytes) {
        res.body.destroy();
        throw tooLarge(req, `more than ${req.maxBytes} bytes`);
      }
      chunks.push(chunk as Buffer);
    }
  } catch (err) {
    if (err instanceof ProvenantError) throw err;
    throw networkError(err, req);
  }
  return Buffer.concat(chunks);
}

function tooLarge(req: HttpRequest, found: string): ProvenantError {
  return new ProvenantError(
    'REGISTRY_RESPONSE_TOO_LARGE',
    `${req.url.host} sent a response for ${req.image} larger than the limit: expected at most ${req.maxBytes} bytes, found ${found}`,
    { image: req.image },
  );
}

/**
 * Socket failures become coded errors that name the host and the image only: errno names and TLS
 * details would tell whoever created the pod which internal ports are open (a port-scan oracle). The
 * detail stays in `cause`, for server-side logs.
 */
function networkError(err: unknown, req: HttpRequest): ProvenantError {
  const host = req.url.host;
  const denied = egressDenial(err);
  if (denied !== undefined) {
    return new ProvenantError(
      'REGISTRY_EGRESS_DENIED',
      `registry ${host} may not be contacted for ${req.image}: ${denied.reason}`,
      { image: req.image, cause: err },
    );
  }
  const timedOut =
    err instanceof undiciErrors.HeadersTimeoutError ||
    err instanceof undiciErrors.BodyTimeoutError ||
    err instanceof undiciErrors.ConnectTimeoutError ||
    (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError'));
  if (timedOut) {
    return new ProvenantError(
      'REGISTRY_TIMEOUT',
      `registry ${host} did not answer in time for ${req.image}`,
      {
        image: req.image,
        cause: err,
      },
    );
  }
  return new ProvenantError(
    'REGISTRY_UNREACHABLE',
    `registry ${host} could not be connected to for ${req.image}`,
    { image: req.image, cause: err },
  );
}

/** The egress refusal behind an error, however undici wrapped it. */
function egressDenial(err: unknown): EgressDeniedError | undefined {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof EgressDeniedError) return e;
  }
  return undefined;
}

function flatten(headers: Dispatcher.ResponseData['headers']): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(headers)) out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

/** `Retry-After` is seconds or an HTTP date (RFC 9110 §10.2.3); without it, exponential backoff. */
export function retryDelayMs(
  retryAfter: string | undefined,
  attempt: number,
  now = Date.now(),
): number | undefined {
  if (retryAfter === undefined || retryAfter.trim() === '') return RETRY_BASE_DELAY_MS * 2 ** attempt;
  const seconds = Number(retryAfter);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(retryAfter) - now;
  if (Number.isNaN(ms)) return RETRY_BASE_DELAY_MS * 2 ** attempt;
  // A registry asking for a long pause is answered with a system error now, not a stalled admission.
  return ms > MAX_RETRY_AFTER_MS ? undefined : Math.max(0, ms);
}

/** Resolves true after `ms`, false if the signal aborts first (never rejects). */
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
