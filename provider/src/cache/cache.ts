/** A cache is get / set / delete (the Ratify habit); the in-process one is the default. */
import { LRUCache } from 'lru-cache';

export interface Cache<V> {
  get(key: string): Promise<V | undefined>;
  /**
   * What this process holds for `key`, without I/O (undefined when it holds nothing, or cannot tell
   * without asking elsewhere): cached verdicts are answered without a promise per key.
   */
  getLocal?(key: string): V | undefined;
  set(key: string, value: V, ttlSeconds: number): Promise<void>;
  delete(key: string): Promise<void>;
}

/** A monotonic millisecond clock (`performance` by default; tests pass their own). */
export interface Clock {
  now(): number;
}

/**
 * Bounded by entry count: when full, the least recently used entry makes room, expired or not. A flood
 * of distinct keys therefore displaces old entries instead of turning caching off until a sweep.
 */
export class MemoryCache<V extends object | string | number | boolean> implements Cache<V> {
  private readonly store: LRUCache<string, V>;

  constructor(maxEntries: number, clock: Clock = performance) {
    // Values are treated as immutable and never cloned; `perf` is lru-cache's TTL clock.
    this.store = new LRUCache<string, V>({
      max: maxEntries,
      ttlAutopurge: false,
      ttlResolution: 0,
      perf: clock,
    });
  }

  get(key: string): Promise<V | undefined> {
    return Promise.resolve(this.store.get(key));
  }

  getLocal(key: string): V | undefined {
    return this.store.get(key);
  }

  set(key: string, value: V, ttlSeconds: number): Promise<void> {
    if (ttlSeconds > 0) this.store.set(key, value, { ttl: ttlSeconds * 1000 });
    return Promise.resolve();
  }

  delete(key: string): Promise<void> {
    this.store.delete(key);
    return Promise.resolve();
  }

  get size(): number {
    return this.store.size;
  }

  close(): void {
    this.store.clear();
  }
}
