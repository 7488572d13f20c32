import { afterEach, describe, expect, it, vi } from 'vitest';

import { Coalescer, MemoryCache, type Clock } from '../../src/cache/index.ts';

describe('memory cache', () => {
  const caches: MemoryCache<string>[] = [];
  afterEach(() => {
    for (const cache of caches.splice(0)) cache.close();
  });

  function memoryCache(maxEntries = 10, clock?: Clock): MemoryCache<string> {
    const cache = new MemoryCache<string>(maxEntries, clock);
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

  // A clock the test moves by hand; Date is faked too, so a cache reading the wall clock also sees it.
  function fakeClock(): { now: () => number; advanceSeconds: (s: number) => void } {
    vi.useFakeTimers({ toFake: ['Date'] });
    return { now: () => Date.now(), advanceSeconds: (s) => vi.setSystemTime(Date.now() + s * 1000) };
  }
  afterEach(() => {
    vi.useRealTimers();
  });

  it('forgets an entry once its TTL has passed', async () => {
    const clock = fakeClock();
    const cache = memoryCache(10, clock);
    await cache.set('k', 'v', 30);
    clock.advanceSeconds(29);
    expect(await cache.get('k')).toBe('v');
    clock.advanceSeconds(2);
    expect(await cache.get('k')).toBeUndefined();
  });

  it('when full, makes room for a new entry by evicting the least recently used one', async () => {
    const cache = memoryCache(2);
    await cache.set('a', '1', 30);
    await cache.set('b', '2', 30);
    expect(await cache.get('a')).toBe('1'); // 'b' is now the least recently used
    await cache.set('c', '3', 30);
    expect([await cache.get('a'), await cache.get('b'), await cache.get('c')]).toEqual(['1', undefined, '3']);
    expect(cache.size).toBe(2);
  });

  it('keeps caching after a flood of distinct keys has filled it and expired', async () => {
    const maxEntries = 100;
    const clock = fakeClock();
    const cache = memoryCache(maxEntries, clock);
    for (let i = 0; i < maxEntries; i++) await cache.set(`flood-${i}`, 'x', 5);
    clock.advanceSeconds(6);
    for (let i = 0; i < 10; i++) await cache.set(`real-${i}`, `v${i}`, 30);
    for (let i = 0; i < 10; i++) expect(await cache.get(`real-${i}`)).toBe(`v${i}`);
  });

  it('keeps caching while a flood of distinct live keys passes through it', async () => {
    const cache = memoryCache(10);
    for (let i = 0; i < 1000; i++) await cache.set(`flood-${i}`, 'x', 30);
    await cache.set('real', 'v', 30);
    expect(await cache.get('real')).toBe('v');
    expect(cache.size).toBe(10);
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
