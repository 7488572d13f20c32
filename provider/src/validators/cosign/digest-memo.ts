/**
 * Cosign signatures belong to `repository@digest`, not to a tag: Gatekeeper's audit sends many tags of
 * one image, and a pod may name an image by tag and by digest. This memo lets them share one fetch and
 * one verification of the signatures, while it is in flight and for a short while after.
 *
 * Why sharing cannot admit what a fresh verification would deny:
 * - the key is (registry, repository, digest, the rule's options verbatim); the memo belongs to one
 *   validator instance, which a config reload replaces, so trust roots, attestation policy and `host`
 *   overrides are fixed for its lifetime; the Sigstore trusted root a result was computed with is
 *   re-checked on every hit (`stillValid`), so a TUF refresh is never answered from the old one;
 * - only completed evidence is kept: a failure (an outage, a rate limit, an aborted request) is never
 *   remembered, the next caller verifies again;
 * - entries live no longer than the verdict they lead to is cached (the caller says how long; 0 keeps
 *   nothing once settled), and at most `max` of them.
 */
import { LRUCache } from 'lru-cache';

export interface DigestMemoOptions<V> {
  /**
   * How long a settled result is reused: never longer than the verdict cache keeps the verdict it leads
   * to (an admission `cache.ttlSeconds`, a denial `cache.negativeTtlSeconds`); 0: not kept once settled.
   */
  readonly ttlMs: (value: V) => number;
  readonly max: number;
}

interface Flight<V> {
  readonly promise: Promise<V>;
  readonly signal: AbortSignal;
}

export class DigestMemo<V extends object> {
  private readonly settled: LRUCache<string, V>;
  private readonly inflight = new Map<string, Flight<V>>();

  constructor(private readonly options: DigestMemoOptions<V>) {
    this.settled = new LRUCache<string, V>({ max: options.max });
  }

  /**
   * The result for `key`: remembered (if `stillValid` accepts it), joined while another caller computes
   * it, or computed by `work` under this caller's `signal`. A joiner whose leader gave up (the leader's
   * request ran out of time) while its own request still has time computes it itself; one whose own
   * signal aborts first stops waiting with `timedOut()`.
   */
  async run(
    key: string,
    signal: AbortSignal,
    work: () => Promise<V>,
    stillValid: (value: V) => boolean,
    timedOut: () => Error,
  ): Promise<{ value: V; shared: boolean }> {
    const remembered = this.settled.get(key);
    if (remembered !== undefined) {
      if (stillValid(remembered)) return { value: remembered, shared: true };
      this.settled.delete(key);
    }
    const flight = this.inflight.get(key);
    if (flight !== undefined) {
      try {
        return { value: await untilAborted(flight.promise, signal, timedOut), shared: true };
      } catch (err) {
        if (!flight.signal.aborted || signal.aborted) throw err;
        if (this.inflight.get(key) === flight) this.inflight.delete(key);
      }
    }
    return { value: await this.lead(key, signal, work), shared: false };
  }

  private async lead(key: string, signal: AbortSignal, work: () => Promise<V>): Promise<V> {
    const promise = work();
    const flight = { promise, signal };
    this.inflight.set(key, flight);
    try {
      const value = await promise;
      const ttl = this.options.ttlMs(value);
      if (ttl > 0) this.settled.set(key, value, { ttl });
      return value;
    } finally {
      if (this.inflight.get(key) === flight) this.inflight.delete(key);
    }
  }

  /** Results in flight and remembered (tests, metrics). */
  get size(): number {
    return this.inflight.size + this.settled.size;
  }
}

/** `promise`, unless `signal` aborts first: then `timedOut()`. */
function untilAborted<V>(promise: Promise<V>, signal: AbortSignal, timedOut: () => Error): Promise<V> {
  if (signal.aborted) return Promise.reject(timedOut());
  return new Promise<V>((resolve, reject) => {
    const onAbort = (): void => reject(timedOut());
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
