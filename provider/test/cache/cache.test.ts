import { afterEach, describe, expect, it, vi } from 'vitest';

import { Coalescer, MemoryCache } from '../../src/cache/index.ts';

describe('memory cache', () => {
  const caches: MemoryCache<string>[] = [];
  afterEach(() => {
    for (const cache of caches.splice(0)) cache.close();
  });

  function memoryCache(maxEntries = 10): MemoryCache<string> {
    const cache = new MemoryCache<string>(maxEntries);
    caches.push(cache);
    return cache;
  }

  it('gives back what was set, until it is deleted', async () => {
    const cache = memoryCache();
    await cache.set('k', 'v', 30);
    expect(await cache.get('k')).toBe('v');
    await cache.delete('k');
    expect(await cache.get('k')).toBeUndefined();
  });

  it('stores nothing when the TTL is 0 (caching disabled)', async () => {
    const cache = memoryCache();
    await cache.set('k', 'v', 0);
    expect(await cache.get('k')).toBeUndefined();
  });

  it('forgets an entry once its TTL has passed', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const cache = memoryCache();
      await cache.set('k', 'v', 30);
      vi.setSystemTime(Date.now() + 29_000);
      expect(await cache.get('k')).toBe('v');
      vi.setSystemTime(Date.now() + 2_000);
      expect(await cache.get('k')).toBeUndefined();
    } finally {
      vi.useRealTimers();
    }
  });

  it('when full, keeps answering without storing more', async () => {
    const cache = memoryCache(2);
    await cache.set('a', '1', 30);
    await cache.set('b', '2', 30);
    await expect(cache.set('c', '3', 30)).resolves.toBeUndefined();
    expect([await cache.get('a'), await cache.get('b'), await cache.get('c')]).toEqual(['1', '2', undefined]);
  });
});

describe('coalescer', () => {
  function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
    let resolve!: (v: T) => void;
    let reject!: (e: unknown) => void;
    const promise = new Promise<T>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  }

  it('runs concurrent work for one key once and gives every caller its result', async () => {
    const coalescer = new Coalescer<string>();
    const gate = deferred<string>();
    let runs = 0;
    const work = (): Promise<string> => {
      runs++;
      return gate.promise;
    };
    const callers = [coalescer.run('k', work), coalescer.run('k', work), coalescer.run('k', work)];
    expect(coalescer.size).toBe(1);
    gate.resolve('answer');
    expect(await Promise.all(callers)).toEqual(['answer', 'answer', 'answer']);
    expect(runs).toBe(1);
  });

  it('runs work for different keys separately', async () => {
    const coalescer = new Coalescer<string>();
    const results = await Promise.all([
      coalescer.run('a', () => Promise.resolve('A')),
      coalescer.run('b', () => Promise.resolve('B')),
    ]);
    expect(results).toEqual(['A', 'B']);
  });

  it('forgets a key once its work settles, so the next call runs afresh', async () => {
    const coalescer = new Coalescer<number>();
    let runs = 0;
    const work = (): Promise<number> => Promise.resolve(++runs);
    expect(await coalescer.run('k', work)).toBe(1);
    expect(coalescer.size).toBe(0);
    expect(await coalescer.run('k', work)).toBe(2);
  });

  it('hands a failure to every waiting caller, then forgets it', async () => {
    const coalescer = new Coalescer<string>();
    const gate = deferred<string>();
    const callers = [coalescer.run('k', () => gate.promise), coalescer.run('k', () => gate.promise)];
    gate.reject(new Error('registry down'));
    for (const caller of callers) await expect(caller).rejects.toThrow('registry down');
    expect(coalescer.size).toBe(0);
    expect(await coalescer.run('k', () => Promise.resolve('recovered'))).toBe('recovered');
  });
});
