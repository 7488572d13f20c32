/**
 * Alerts in Connaisseur's `alerting:` shape, sent when Provenant admits or rejects an image. Provenant
 * answers per image, so an alert is per image verdict, sent when the verdict is made, not when a cached
 * one is served: a verdict alerts once per cache TTL (and coalesced identical lookups alert once).
 *
 * Sending never holds an answer: receivers are called in the background, each attempt bounded by
 * `timeoutMs`, retried `maxRetries` times with exponential backoff, and at most `maxAlertsPerMinute`
 * alerts per receiver (more are dropped and logged). The exception is Connaisseur's
 * `failIfAlertSendingFails`: the answer waits for that receiver, within the request's deadline, and a
 * failed (or rate-dropped) send turns it into ALERT_SEND_FAILED, a transient systemError, as Connaisseur
 * denies. Receivers are reached through the egress policy (their hosts are named in the config);
 * their URLs (Slack's path holds a secret) and headers are never logged: a receiver is named by its
 * template, stream and origin.
 */
import { isAbsolute, resolve } from 'node:path';
import { Agent, request } from 'undici';
import type { AlertingConfig, AlertReceiverConfig } from '../config/index.ts';
import { EgressPolicy } from '../registry/egress.ts';
import { ProvenantError } from '../types/errors.ts';
import { loadTemplate, renderTemplate, type Template, type TemplateVariables } from './templates.ts';

export type AlertEvent =
  | {
      readonly kind: 'admit';
      readonly image: string;
      readonly digest: string;
      readonly validator: string;
      readonly rule: string;
    }
  | { readonly kind: 'reject'; readonly image: string; readonly error: string };

export interface AlerterOptions {
  /** Where relative template paths start (the config file's directory). */
  readonly baseDir: string;
  readonly warn: (message: string) => void;
  readonly now?: () => Date;
  /** DNS for the egress checks (tests). */
  readonly lookup?: ConstructorParameters<typeof EgressPolicy>[0]['lookup'];
}

const RETRY_BASE_DELAY_MS = 200;
const MINUTE_MS = 60_000;
const MAX_RESPONSE_BYTES = 64 * 1024;

interface Receiver {
  readonly config: AlertReceiverConfig;
  readonly template: Template;
  readonly url: URL;
  readonly label: string;
  readonly headers: Record<string, string>;
  /** Send times within the last minute (the rate limit's window). */
  readonly sent: number[];
}

export class Alerter {
  private readonly streams: Record<AlertEvent['kind'], Receiver[]>;
  private readonly egress: EgressPolicy;
  private readonly agents = new Map<string, Agent>();
  private readonly background = new Set<Promise<void>>();

  constructor(
    private readonly config: AlertingConfig,
    private readonly options: AlerterOptions,
  ) {
    const receivers = (stream: 'admitRequest' | 'rejectRequest'): Receiver[] =>
      (config[stream]?.receivers ?? []).map((r, i) => receiver(r, `${stream}[${i}]`, options.baseDir));
    this.streams = { admit: receivers('admitRequest'), reject: receivers('rejectRequest') };
    const hosts = [...this.streams.admit, ...this.streams.reject].map((r) => r.url.host);
    this.egress = new EgressPolicy({ registries: [], configuredHosts: hosts, lookup: options.lookup });
  }

  /**
   * Sends `event` to its stream's receivers. Resolves at once unless a receiver has
   * failIfAlertSendingFails: then when it is sent, or rejects with ALERT_SEND_FAILED (by `deadline`).
   */
  async notify(event: AlertEvent, deadline: AbortSignal): Promise<void> {
    const receivers = this.streams[event.kind];
    if (receivers.length === 0) return;
    const vars = this.variables(event);
    const mandatory: Promise<void>[] = [];
    for (const r of receivers) {
      if (r.config.failIfAlertSendingFails) {
        mandatory.push(this.send(r, vars, deadline));
      } else {
        const p = this.send(r, vars, AbortSignal.timeout(this.budgetMs())).catch((err: unknown) =>
          this.options.warn(`alert not sent: ${err instanceof Error ? err.message : String(err)}`),
        );
        this.background.add(p);
        void p.finally(() => this.background.delete(p));
      }
    }
    await Promise.all(mandatory);
  }

  /** Waits for background sends (each bounded by its attempts), then closes connections. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.background]);
    await Promise.all([...this.agents.values()].map((a) => a.close()));
  }

  private budgetMs(): number {
    // Every attempt and the backoff between them.
    const c = this.config;
    return c.timeoutMs * (c.maxRetries + 1) + RETRY_BASE_DELAY_MS * 2 ** (c.maxRetries + 1);
  }

  private variables(event: AlertEvent): TemplateVariables {
    const pod = process.env['HOSTNAME'] ?? 'unknown';
    const admit = event.kind === 'admit';
    return {
      alert_message: admit ? 'Provenant admitted an image' : 'Provenant rejected an image',
      priority: '3',
      cluster: this.config.clusterIdentifier,
      timestamp: (this.options.now?.() ?? new Date()).toISOString(),
      images: event.image,
      image: event.image,
      connaisseur_pod_id: pod,
      provenant_pod_id: pod,
      namespace: 'unknown',
      request_id: 'unknown',
      digest: admit ? event.digest : 'unknown',
      validator: admit ? event.validator : 'unknown',
      rule: admit ? event.rule : 'unknown',
      error: admit ? 'no error' : event.error,
    };
  }

  private async send(r: Receiver, vars: TemplateVariables, signal: AbortSignal): Promise<void> {
    const now = Date.now();
    while (r.sent.length > 0 && (r.sent[0] as number) <= now - MINUTE_MS) r.sent.shift();
    if (r.sent.length >= this.config.maxAlertsPerMinute) {
      throw alertError(r, `rate limit reached (${this.config.maxAlertsPerMinute} per minute), alert dropped`);
    }
    r.sent.push(now);
    const payload = renderTemplate(r.template, { ...vars, priority: String(r.config.priority) });
    const body = JSON.stringify(
      r.config.payloadFields !== undefined && isObject(payload)
        ? { ...payload, ...r.config.payloadFields }
        : payload,
    );
    let last = 'not attempted';
    for (let attempt = 0; attempt <= this.config.maxRetries; attempt++) {
      if (attempt > 0 && !(await backoff(attempt, signal))) break;
      try {
        const status = await this.post(r, body, signal);
        if (status >= 200 && status < 300) return;
        last = `HTTP ${status}`;
        if (status < 500 && status !== 429) break;
      } catch (err) {
        last = err instanceof Error ? ((err as NodeJS.ErrnoException).code ?? err.name) : 'error';
        if (signal.aborted) break;
      }
    }
    throw alertError(r, `not delivered (${last})`);
  }

  private async post(r: Receiver, body: string, signal: AbortSignal): Promise<number> {
    const reach = this.egress.admit(r.url.host, 'alert');
    let agent = this.agents.get(r.url.origin);
    if (agent === undefined) {
      agent = new Agent({
        connect: { timeout: this.config.timeoutMs, lookup: this.egress.lookupFor(r.url.host, reach) },
      });
      this.agents.set(r.url.origin, agent);
    }
    const res = await request(r.url, {
      method: 'POST',
      headers: { ...r.headers, 'content-type': 'application/json' },
      body,
      dispatcher: agent,
      signal: AbortSignal.any([signal, AbortSignal.timeout(this.config.timeoutMs)]),
      headersTimeout: this.config.timeoutMs,
      bodyTimeout: this.config.timeoutMs,
    });
    // Read a bounded amount so the connection can be reused; the answer itself is not used.
    let read = 0;
    for await (const chunk of res.body) {
      read += (chunk as Buffer).length;
      if (read > MAX_RESPONSE_BYTES) break;
    }
    return res.statusCode;
  }
}

function receiver(config: AlertReceiverConfig, stream: string, baseDir: string): Receiver {
  let url: URL;
  try {
    url = new URL(config.receiverUrl);
  } catch {
    throw new ProvenantError('CONFIG_INVALID', `alerting ${stream}: receiverUrl is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new ProvenantError(
      'CONFIG_INVALID',
      `alerting ${stream}: receiverUrl must be http(s), found ${url.protocol}`,
    );
  const headers: Record<string, string> = {};
  for (const h of config.customHeaders) {
    const colon = h.indexOf(':');
    headers[h.slice(0, colon).trim().toLowerCase()] = h.slice(colon + 1).trim();
  }
  return {
    config,
    template: loadTemplate(config.template, (p) => (isAbsolute(p) ? p : resolve(baseDir, p))),
    url,
    label: `${stream} (${config.template}) at ${url.origin}`,
    headers,
    sent: [],
  };
}

function alertError(r: Receiver, why: string): ProvenantError {
  return new ProvenantError('ALERT_SEND_FAILED', `alert to receiver ${r.label} failed: ${why}`);
}

/** Waits 200 ms, 400 ms, …; false when the signal ends first. */
function backoff(attempt: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((done) => {
    if (signal.aborted) return done(false);
    const timer = setTimeout(
      () => {
        signal.removeEventListener('abort', onAbort);
        done(true);
      },
      RETRY_BASE_DELAY_MS * 2 ** (attempt - 1),
    );
    const onAbort = (): void => {
      clearTimeout(timer);
      done(false);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
