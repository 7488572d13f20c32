/** A cache is get / set / delete (the Ratify habit); the in-process one is the default. */
import NodeCache from 'node-cache';

export interface Cache<V> {
  get(key: string): Promise<V | undefined>;
  set(key: string, value: V, ttlSeconds: number): Promise<void>;
  delete(key: string): Promise<void>;
}

export class MemoryCache<V> implements Cache<V> {
  private readonly store: NodeCache;

  constructor(maxEntries: number) {
    // useClones: false — values are treated as immutable; cloning would cost every hit.
    this.store = new NodeCache({ maxKeys: maxEntries, useClones: false, checkperiod: 60 });
  }

  get(key: string): Promise<V | undefined> {
    return Promise.resolve(this.store.get<V>(key));
  }

  set(key: string, value: V, ttlSeconds: number): Promise<void> {
    if (ttlSeconds > 0) {
      try {
        this.store.set(key, value, ttlSeconds);
      } catch {
        // Full: an uncached answer is slower, never wrong.
      }
    }
    return Promise.resolve();
  }

  delete(key: string): Promise<void> {
    this.store.del(key);
    return Promise.resolve();
  }

  close(): void {
    this.store.close();
  }
}
