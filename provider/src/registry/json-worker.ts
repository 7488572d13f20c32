/**
 * Large JSON documents from registries (manifests, signature blobs) are parsed off the event loop.
 * `JSON.parse` of a hostile 4 MiB manifest (deep nesting, a million tiny objects) takes 0.3-0.8 s, and
 * nothing can interrupt it: on the event loop it would stall every other request, health probes
 * included. Documents above INLINE_PARSE_MAX_BYTES go to a small pool of worker threads (started on
 * first use), which count a document's JSON values before parsing it and
 * refuse one with too many; what comes back is bounded (the tasks cap what they keep), so copying the
 * result into this thread stays cheap too, and the bytes are moved there and back, not copied. A parse
 * that outlives its request's signal (or PARSE_TIMEOUT_MS) is stopped by terminating its worker.
 */
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ProvenantError } from '../types/errors.ts';

/**
 * Below this size a document is parsed where it is needed: the worst case (deep nesting) parses at
 * about 150 ns per byte, so 32 KiB stays near 5 ms; real manifests and signatures are smaller.
 */
export const INLINE_PARSE_MAX_BYTES = 32 * 1024;
/** Two workers: enough to keep parsing off the loop on two cores without starving the main thread. */
export const PARSE_WORKERS = 2;
/** Heap of one worker: a hostile 4 MiB document needs about 120 MiB; beyond this it is refused. */
export const PARSE_WORKER_HEAP_MB = 256;
/** A parse that takes longer than this (whatever the request's own deadline) is stopped. */
export const PARSE_TIMEOUT_MS = 10_000;
/**
 * JSON values a signature blob (simple-signing payload, DSSE envelope, Sigstore bundle) may hold:
 * real ones hold a few hundred. The bound keeps their later parse on the event loop short.
 */
export const MAX_JSON_VALUES = 10_000;

/** A document that is not what was expected; `found` completes "expected …, found <found>". */
export class UnusableJson extends Error {
  constructor(readonly found: string) {
    super(found);
  }
}

export type ParseTask = 'manifest' | 'json';

/** The worker's answer: the task's result, or why the document is unusable; the bytes come back too. */
export type ParseReply = (
  { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly found: string }
) & { readonly bytes: Uint8Array };

/** A task's result, and the document's bytes (moved to the worker and back rather than copied). */
export interface Parsed {
  readonly value: unknown;
  readonly bytes: Buffer;
}

/**
 * Refuses a document holding more than `max` JSON values before parsing it. The parse of a hostile
 * document is cheap to start and expensive to finish (a million tiny arrays cost a second of parsing
 * and garbage collection, on threads shared with the event loop); counting the tokens that start a
 * value (`[`, `{`, `,` outside strings) is one pass over the bytes that allocates nothing.
 */
export function assertFewValues(bytes: Uint8Array, max: number): void {
  let values = 1;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (inString) {
      if (b === BACKSLASH) i++;
      else if (b === QUOTE) inString = false;
    } else if (b === QUOTE) inString = true;
    else if ((b === COMMA || b === OPEN_BRACE || b === OPEN_BRACKET) && ++values > max)
      throw new UnusableJson(`more than ${max} JSON values`);
  }
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;

/** Parses `text`, refusing anything that is not JSON. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new UnusableJson('text that is not JSON');
  }
}

/**
 * Checks that a JSON document can later be parsed on the event loop in a few milliseconds: it is
 * JSON and holds at most MAX_JSON_VALUES values. Small documents pass unchecked (their parse is short
 * whatever they hold); larger ones are checked in a worker. Use the bytes returned, not `bytes`: a
 * large buffer is moved to the worker and back.
 */
export async function checkJsonDocument(
  bytes: Buffer,
  what: string,
  image: string,
  signal: AbortSignal,
): Promise<Buffer> {
  if (bytes.length <= INLINE_PARSE_MAX_BYTES) return bytes;
  try {
    return (await parseOffThread('json', bytes, undefined, image, signal)).bytes;
  } catch (err) {
    if (!(err instanceof UnusableJson)) throw err;
    throw new ProvenantError(
      'REGISTRY_BAD_RESPONSE',
      `the ${what} of ${image} is not usable: expected JSON with at most ${MAX_JSON_VALUES} values, found ${err.found}`,
      { image },
    );
  }
}

/**
 * Runs `task` on `bytes` in a worker. Rejects with UnusableJson when the task refuses the document,
 * REGISTRY_TIMEOUT when `signal` aborts or PARSE_TIMEOUT_MS passes, REGISTRY_BAD_RESPONSE when the
 * worker dies on it (out of memory). `bytes` may be moved to the worker: use the bytes returned.
 */
export function parseOffThread(
  task: ParseTask,
  bytes: Buffer,
  arg: string | undefined,
  image: string,
  signal: AbortSignal,
): Promise<Parsed> {
  pool ??= new ParsePool();
  return pool.run({ task, bytes, arg, image, signal });
}

/** Stops the workers (at shutdown); a later parse starts new ones. */
export async function closeParseWorkers(): Promise<void> {
  const closing = pool;
  pool = undefined;
  await closing?.close();
}

let pool: ParsePool | undefined;

interface Job {
  readonly task: ParseTask;
  readonly bytes: Buffer;
  readonly arg: string | undefined;
  readonly image: string;
  readonly signal: AbortSignal;
}

interface Pending extends Job {
  readonly resolve: (parsed: Parsed) => void;
  readonly reject: (err: unknown) => void;
  readonly onAbort: () => void;
}

class ParsePool {
  private readonly idle: Worker[] = [];
  private readonly running = new Map<Worker, { job: Pending; timer: NodeJS.Timeout }>();
  private readonly queue: Pending[] = [];

  run(job: Job): Promise<Parsed> {
    return new Promise((resolve, reject) => {
      if (job.signal.aborted) return reject(timedOut(job, 'the request was cancelled'));
      const pending: Pending = {
        ...job,
        resolve,
        reject,
        onAbort: () => this.abort(pending, 'the request was cancelled'),
      };
      job.signal.addEventListener('abort', pending.onAbort, { once: true });
      this.queue.push(pending);
      this.pump();
    });
  }

  async close(): Promise<void> {
    for (const job of this.queue.splice(0)) this.settle(job, timedOut(job, 'the provider is shutting down'));
    const workers = [...this.idle.splice(0), ...this.running.keys()];
    for (const { job } of this.running.values())
      this.settle(job, timedOut(job, 'the provider is shutting down'));
    this.running.clear();
    await Promise.all(workers.map((w) => w.terminate()));
  }

  private pump(): void {
    while (this.queue.length > 0 && (this.idle.length > 0 || this.size() < PARSE_WORKERS)) {
      const job = this.queue.shift() as Pending;
      this.start(this.idle.pop() ?? this.spawn(), job);
    }
  }

  private size(): number {
    return this.idle.length + this.running.size;
  }

  private start(worker: Worker, job: Pending): void {
    const timer = setTimeout(
      () => this.abort(job, `parsing took more than ${PARSE_TIMEOUT_MS} ms`),
      PARSE_TIMEOUT_MS,
    );
    this.running.set(worker, { job, timer });
    worker.ref();
    // Moved, not copied, when the buffer is the body's own (as Buffer.concat makes large ones).
    const { bytes } = job;
    const own = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
    const buffer = own && bytes.buffer instanceof ArrayBuffer ? bytes.buffer : new Uint8Array(bytes).buffer;
    worker.postMessage({ task: job.task, bytes: new Uint8Array(buffer), arg: job.arg }, [buffer]);
  }

  private spawn(): Worker {
    const worker = new Worker(workerScript(), {
      resourceLimits: { maxOldGenerationSizeMb: PARSE_WORKER_HEAP_MB },
    });
    worker.on('message', (reply: ParseReply) => {
      const job = this.finish(worker);
      if (job === undefined) return;
      worker.unref();
      this.idle.push(worker);
      const bytes = Buffer.from(reply.bytes.buffer, reply.bytes.byteOffset, reply.bytes.byteLength);
      this.settle(job, reply.ok ? undefined : new UnusableJson(reply.found), {
        value: reply.ok ? reply.value : undefined,
        bytes,
      });
      this.pump();
    });
    // A worker that dies (out of memory on a hostile document) takes only its own job with it.
    worker.on('error', (err) => this.lose(worker, err));
    worker.on('exit', () => this.lose(worker, undefined));
    return worker;
  }

  private lose(worker: Worker, err: unknown): void {
    const idleAt = this.idle.indexOf(worker);
    if (idleAt >= 0) this.idle.splice(idleAt, 1);
    const job = this.finish(worker);
    if (job !== undefined) {
      const found =
        (err as { code?: unknown } | undefined)?.code === 'ERR_WORKER_OUT_OF_MEMORY'
          ? `a document too complex to parse in ${PARSE_WORKER_HEAP_MB} MiB`
          : 'a document the parser failed on';
      this.settle(job, badDocument(job, found));
    }
    this.pump();
  }

  /** Stops `job` wherever it is: dropped from the queue, or its worker terminated. */
  private abort(job: Pending, why: string): void {
    const queued = this.queue.indexOf(job);
    if (queued >= 0) this.queue.splice(queued, 1);
    for (const [worker, entry] of this.running) {
      if (entry.job !== job) continue;
      this.finish(worker);
      void worker.terminate();
    }
    this.settle(job, timedOut(job, why));
    this.pump();
  }

  private finish(worker: Worker): Pending | undefined {
    const entry = this.running.get(worker);
    if (entry === undefined) return undefined;
    clearTimeout(entry.timer);
    this.running.delete(worker);
    return entry.job;
  }

  private settle(job: Pending, err: unknown, parsed?: Parsed): void {
    job.signal.removeEventListener('abort', job.onAbort);
    if (err === undefined && parsed !== undefined) job.resolve(parsed);
    else job.reject(err);
  }
}

function timedOut(job: Job, why: string): ProvenantError {
  return new ProvenantError(
    'REGISTRY_TIMEOUT',
    `parsing a ${job.bytes.length}-byte ${job.task === 'manifest' ? 'manifest' : 'document'} of ${job.image} did not finish: ${why}`,
    { image: job.image },
  );
}

function badDocument(job: Job, found: string): ProvenantError {
  return new ProvenantError(
    'REGISTRY_BAD_RESPONSE',
    `the registry served ${job.image} a ${job.bytes.length}-byte ${job.task === 'manifest' ? 'manifest' : 'document'} that cannot be parsed: expected JSON, found ${found}`,
    { image: job.image },
  );
}

/**
 * The worker's entry: the compiled `.js` next to this file in production; in development and tests
 * (this file is TypeScript run by tsx or vitest) a bootstrap that registers tsx in the worker first.
 */
function workerScript(): URL {
  const here = import.meta.url;
  if (!here.endsWith('.ts')) return new URL('./json-worker-entry.js', here);
  const entry = new URL('./json-worker-entry.ts', here).href;
  const bootstrap = `const { register } = await import(${JSON.stringify(tsxApiUrl())}); register(); await import(${JSON.stringify(entry)});`;
  return new URL(`data:text/javascript,${encodeURIComponent(bootstrap)}`);
}

/** tsx's ESM API module (`tsx/esm/api`, import condition), found through tsx's own exports map. */
function tsxApiUrl(): string {
  const manifestPath = createRequire(import.meta.url).resolve('tsx/package.json');
  const exports = (
    JSON.parse(readFileSync(manifestPath, 'utf8')) as {
      exports: Record<string, { import: { default: string } }>;
    }
  ).exports;
  const api = exports['./esm/api']?.import.default;
  if (api === undefined) throw new Error(`tsx at ${manifestPath} exports no ESM API`);
  return new URL(api, pathToFileURL(manifestPath)).href;
}
