import { describe, expect, it } from 'vitest';
import { parseReference } from '../../../src/reference/index.ts';
import { memoKey } from '../../../src/validators/cosign/cosign.ts';
import { DigestMemo } from '../../../src/validators/cosign/digest-memo.ts';
import { ProvenantError } from '../../../src/types/errors.ts';

interface Result {
  readonly n: number;
  readonly root?: string;
}

const always = (): boolean => true;
const late = (): Error => new Error('this caller ran out of time');

/** A memo whose work counts its runs and settles when told to. */
function counted(ttlMs = 60_000) {
  const memo = new DigestMemo<Result>({ ttlMs: () => ttlMs, max: 4 });
  let runs = 0;
  const work = (): Promise<Result> => Promise.resolve({ n: ++runs });
  return { memo, work, runs: () => runs };
}

describe('DigestMemo', () => {
  it('runs the work once for concurrent callers of one key and tells the joiners the result was shared', async () => {
    const { memo, work, runs } = counted(0);
    const signal = new AbortController().signal;
    const results = await Promise.all([1, 2, 3].map(() => memo.run('k', signal, work, always, late)));
    expect(runs()).toBe(1);
    expect(results.map((r) => r.shared)).toEqual([false, true, true]);
    expect(memo.size).toBe(0); // ttl 0: nothing kept once settled
  });

  it('reuses a settled result until its ttl, then runs the work again', async () => {
    const memo = new DigestMemo<Result>({ ttlMs: () => 40, max: 4 });
    let runs = 0;
    const work = (): Promise<Result> => Promise.resolve({ n: ++runs });
    const signal = new AbortController().signal;
    await memo.run('k', signal, work, always, late);
    expect((await memo.run('k', signal, work, always, late)).shared).toBe(true);
    expect(runs).toBe(1);
    const deadline = Date.now() + 5_000;
    while ((await memo.run('k', signal, work, always, late)).shared && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    expect(runs).toBe(2);
  });

  it('keeps results apart by key', async () => {
    const { memo, work, runs } = counted();
    const signal = new AbortController().signal;
    await memo.run('a', signal, work, always, late);
    await memo.run('b', signal, work, always, late);
    expect(runs()).toBe(2);
  });

  it('never remembers a failure: the next caller runs the work again', async () => {
    const memo = new DigestMemo<Result>({ ttlMs: () => 60_000, max: 4 });
    const signal = new AbortController().signal;
    const outage = new ProvenantError('REGISTRY_UNREACHABLE', 'registry down');
    await expect(memo.run('k', signal, () => Promise.reject(outage), always, late)).rejects.toBe(outage);
    const next = await memo.run('k', signal, () => Promise.resolve({ n: 7 }), always, late);
    expect(next).toEqual({ value: { n: 7 }, shared: false });
  });

  it('drops a remembered result its caller no longer accepts (a refreshed trusted root)', async () => {
    const memo = new DigestMemo<Result>({ ttlMs: () => 60_000, max: 4 });
    const signal = new AbortController().signal;
    await memo.run('k', signal, () => Promise.resolve({ n: 1, root: 'old' }), always, late);
    const current = (r: Result): boolean => r.root === 'new';
    const next = await memo.run('k', signal, () => Promise.resolve({ n: 2, root: 'new' }), current, late);
    expect(next).toEqual({ value: { n: 2, root: 'new' }, shared: false });
  });

  it('lets a joiner with time left verify itself when the leader runs out of time', async () => {
    const memo = new DigestMemo<Result>({ ttlMs: () => 0, max: 4 });
    const leader = new AbortController();
    const leaderRun = memo.run(
      'k',
      leader.signal,
      () =>
        new Promise<Result>((_, reject) =>
          leader.signal.addEventListener('abort', () => reject(leader.signal.reason as Error)),
        ),
      always,
      late,
    );
    const joiner = memo.run('k', new AbortController().signal, () => Promise.resolve({ n: 2 }), always, late);
    leader.abort(new Error('deadline'));
    await expect(leaderRun).rejects.toThrow('deadline');
    expect(await joiner).toEqual({ value: { n: 2 }, shared: false });
  });

  it('stops a joiner waiting when its own request runs out of time first', async () => {
    const memo = new DigestMemo<Result>({ ttlMs: () => 0, max: 4 });
    let finish: (r: Result) => void = () => undefined;
    const leaderRun = memo.run(
      'k',
      new AbortController().signal,
      () => new Promise<Result>((resolve) => (finish = resolve)),
      always,
      late,
    );
    const joiner = new AbortController();
    const joined = memo.run('k', joiner.signal, () => Promise.resolve({ n: 2 }), always, late);
    joiner.abort();
    await expect(joined).rejects.toThrow('this caller ran out of time');
    finish({ n: 1 });
    expect(await leaderRun).toEqual({ value: { n: 1 }, shared: false });
  });

  it('neither retries nor waits for a joiner whose own request has ended with its leader', async () => {
    const memo = new DigestMemo<Result>({ ttlMs: () => 0, max: 4 });
    const both = new AbortController();
    let runs = 0;
    const work = (): Promise<Result> => {
      runs++;
      return new Promise((_, reject) =>
        both.signal.addEventListener('abort', () => reject(both.signal.reason as Error)),
      );
    };
    const leader = memo.run('k', both.signal, work, always, late);
    const joiner = memo.run('k', both.signal, work, always, late);
    both.abort(new Error('deadline'));
    await expect(leader).rejects.toThrow('deadline');
    await expect(joiner).rejects.toThrow('this caller ran out of time');
    expect(runs).toBe(1);
  });
});

describe('memoKey (what a shared result may answer)', () => {
  const digest = `sha256:${'a'.repeat(64)}`;
  const key = (ref: string, options?: object, d = digest): string => memoKey(parseReference(ref), d, options);

  it('is one key for every tag of a repository and digest under one rule', () => {
    expect(key('r.test/app:v1', { trustRoot: 'a' })).toBe(key('r.test/app:v2', { trustRoot: 'a' }));
  });

  it('differs by registry, repository, digest and any rule option (trust roots, threshold, tlog)', () => {
    const keys = [
      key('r.test/app:v1', { trustRoot: 'a' }),
      key('other.test/app:v1', { trustRoot: 'a' }),
      key('r.test/app2:v1', { trustRoot: 'a' }),
      key('r.test/app:v1', { trustRoot: 'a' }, `sha256:${'b'.repeat(64)}`),
      key('r.test/app:v1', { trustRoot: 'b' }),
      key('r.test/app:v1', { trustRoot: '*', threshold: 2 }),
      key('r.test/app:v1', { trustRoot: 'a', verifyInTransparencyLog: false }),
      key('r.test/app:v1'),
    ];
    expect(new Set(keys).size).toBe(keys.length);
  });
});
