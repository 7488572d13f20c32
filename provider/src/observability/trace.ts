/**
 * The explanation `provenant verify --explain` prints: steps recorded while one image is verified
 * (rules ranked, validator and trust roots, registry requests, signatures, cache, verdict).
 *
 * Registry requests are made deep inside the registry client every validator shares; the trace travels
 * with the async call (AsyncLocalStorage) rather than through every client method, and costs one
 * lookup per request when nobody is tracing. Steps never hold headers, credentials or query strings.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export type TraceKind = 'reference' | 'cache' | 'rule' | 'validator' | 'fetch' | 'signature' | 'verdict';

export interface TraceStep {
  readonly kind: TraceKind;
  readonly text: string;
}

const storage = new AsyncLocalStorage<TraceStep[]>();

/** Runs `fn` recording the steps it (and everything it awaits) reports into `steps`. */
export function withTrace<T>(steps: TraceStep[], fn: () => Promise<T>): Promise<T> {
  return storage.run(steps, fn);
}

/** Whether someone records: compute an explanation only then. */
export function tracing(): boolean {
  return storage.getStore() !== undefined;
}

export function traceStep(kind: TraceKind, text: string): void {
  storage.getStore()?.push({ kind, text });
}
