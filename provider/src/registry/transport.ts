/**
 * HTTP to registries: one undici Agent (connection pool) per configured registry, a timeout on every
 * request, bounded bodies, and retries with backoff on 429/5xx that honour `Retry-After` but never run
 * past the caller's deadline (the policy engine's admission budget).
 */
import { readFileSync } from 'node:fs';
import { Agent, errors as undiciErrors, type Dispatcher } from 'undici';
import { ProvenantError } from '../types/errors.ts';

export interface TransportOptions {
  readonly requestTimeoutMs: number;
  readonly maxRetries: number;
}

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
}

const RETRY_BASE_DELAY_MS = 100;
const MAX_RETRY_AFTER_MS = 10_000;

export class Transport {
  private readonly agents = new Map<string, Agent>();

  constructor(private readonly options: TransportOptions) {}

  /** One pool per registry host, with the registry's private CA when it has one. */
  agentFor(host: string, caFile: string | undefined): Agent {
    let agent = this.agents.get(host);
    if (agent === undefined) {
      const ca = caFile === undefined ? undefined : readFileSync(caFile, 'utf8');
      agent = new Agent({
        connect: { timeout: this.options.requestTimeoutMs, ...(ca === undefined ? {} : { ca }) },
        keepAliveTimeout: 30_000,
      });
      this.agents.set(host, agent);
    }
    return agent;
  }

  async send(agent: Agent, req: HttpRequest): Promise<HttpResponse> {
    for (let attempt = 0; ; attempt++) {
      const res = await this.once(agent, req);
      const retryable = res.status === 429 || res.status >= 500;
      if (!retryable || attempt >= this.options.maxRetries) return res;
      const delay = retryDelayMs(res.headers['retry-after'], attempt);
      if (delay === undefined || !(await sleep(delay, req.signal))) return res;
    }
  }

  private async once(agent: Agent, req: HttpRequest): Promise<HttpResponse> {
    const signal = AbortSignal.any([req.signal, AbortSignal.timeout(this.options.requestTimeoutMs)]);
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
      throw networkError(err, req);
    }
    const body = await readBounded(res, req);
    return { status: res.statusCode, headers: flatten(res.headers), body };
  }

  async close(): Promise<void> {
    await Promise.all([...this.agents.values()].map((a) => a.close()));
    this.agents.clear();
  }
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

function networkError(err: unknown, req: HttpRequest): ProvenantError {
  const host = req.url.host;
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
  const detail = err instanceof Error ? ((err as NodeJS.ErrnoException).code ?? err.message) : String(err);
  return new ProvenantError(
    'REGISTRY_UNREACHABLE',
    `registry ${host} is unreachable for ${req.image}: ${detail}`,
    {
      image: req.image,
      cause: err,
    },
  );
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
