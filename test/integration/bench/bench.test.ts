/**
 * The benchmark harness in its quick mode against Provenant and the floor (Ratify is built only for
 * `npm run bench`): the results document has every figure, for both systems, with sane values, and the
 * registry-request count the README promises. Figures are not asserted against targets here: the test
 * suite runs on a busy machine; `npm run bench` is where speed is judged.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { requestKind } from '../../harness/counting-proxy.ts';
import { percentile } from '../../bench/measure.ts';
import type { Results } from '../../bench/report.ts';
import { runBench } from '../../bench/run.ts';

describe('npm run bench --quick (Provenant and the floor, static validator)', () => {
  let results: Results;
  beforeAll(async () => {
    results = await runBench({
      quick: true,
      systems: ['provenant', 'floor'],
      kinds: ['static'],
      log: () => undefined,
      overrides: {
        podImages: 3,
        singleImages: 2,
        warmSizes: [1, 10],
        loadMs: 300,
        rssImages: 40,
        sharedRounds: 3,
        replicaImages: 20,
      },
    });
  }, 170_000);

  const value = (id: string, system: 'provenant' | 'floor'): number | undefined =>
    results.figures.find((f) => f.id === id)?.values[system];

  it('describes the machine and the run', () => {
    expect(results.schema).toBe('provenant-bench/v1');
    expect(results.mode).toBe('quick');
    expect(results.systems).toEqual(['provenant', 'floor']);
    expect(results.machine.cores).toBeGreaterThan(0);
    expect(results.machine.node).toBe(process.version);
  });

  it('gives every cold, warm, memory and start figure for both systems', () => {
    const ids = results.figures.map((f) => f.id);
    for (const id of [
      'cold-pod-p50-static',
      'cold-pod-p99-static',
      'cold-single-p50-static',
      'ready-p50',
      'warm-verify-1-rps',
      'warm-verify-10-p99',
      'warm-mutate-10-cpu',
      'event-loop-p99',
      'rss-warm',
      'rss-cached',
    ]) {
      expect(ids).toContain(id);
      for (const system of ['provenant', 'floor'] as const) {
        const v = value(id, system);
        expect(v, `${id} of ${system}`).toBeGreaterThanOrEqual(0);
        expect(Number.isFinite(v), `${id} of ${system}`).toBe(true);
      }
      const figure = results.figures.find((f) => f.id === id);
      expect(figure?.ratios.vsFloor).toBeCloseTo(
        (value(id, 'provenant') ?? NaN) / (value(id, 'floor') ?? NaN),
      );
      expect(figure?.ratios.vsRatify).toBeUndefined();
    }
  });

  it('reports sane magnitudes: requests answered, memory in megabytes, p50 not above p99', () => {
    for (const system of ['provenant', 'floor'] as const) {
      expect(value('warm-verify-1-rps', system)).toBeGreaterThan(1);
      expect(value('rss-warm', system)).toBeGreaterThan(10);
      expect(value('rss-warm', system)).toBeLessThan(2048);
      expect(value('ready-p50', system)).toBeGreaterThan(0);
      expect(value('warm-verify-10-p50', system)).toBeLessThanOrEqual(
        value('warm-verify-10-p99', system) ?? 0,
      );
    }
  });

  it('has replicas sharing Redis answer what another verified without the registry', () => {
    for (const id of ['shared-1-p50', 'shared-10-p99']) expect(value(id, 'provenant'), id).toBeGreaterThan(0);
    expect(value('shared-registry-requests', 'provenant')).toBe(0);
    // Three replicas ask the registry about an image as often as the first one alone does.
    const perReplica = results.registryRequests['provenant three replicas sharing Redis'] ?? {};
    expect(perReplica['replica A']).toBeGreaterThan(0);
    expect(perReplica).toMatchObject({ 'replica B': 0, 'replica C': 0 });
    expect(value('replicas-registry-requests', 'provenant')).toBe(perReplica['replica A']);
  });

  it('counts one registry request per tag-referenced image for the static validator (the tag → digest)', () => {
    expect(value('registry-requests-static', 'provenant')).toBe(1);
    expect(value('registry-requests-static', 'floor')).toBeUndefined();
  });
});

describe('bench helpers', () => {
  it('classifies distribution-spec paths by what they ask for', () => {
    expect(requestKind('/v2/team/app/manifests/v1')).toBe('manifest');
    expect(requestKind('/v2/team/app/blobs/sha256:ab')).toBe('blob');
    expect(requestKind('/v2/team/app/referrers/sha256:ab')).toBe('referrers');
    expect(requestKind('/v2/team/app/tags/list')).toBe('tags');
    expect(requestKind('/v2/')).toBe('other');
  });

  it('takes nearest-rank percentiles', () => {
    const samples = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect(percentile(samples, 0.5)).toBe(50);
    expect(percentile(samples, 0.99)).toBe(99);
    expect(percentile([7], 0.99)).toBe(7);
  });
});
