import { describe, expect, it } from 'vitest';
import { evaluatePolicy, selectRoots } from '../../../src/validators/cosign/policy.ts';

const roots = ['alice', 'bob', 'charlie'];

/** Valid signature ids per root: `valid({ alice: ['s1', 's2'] })`. */
function valid(byRoot: Record<string, string[]>): Map<string, Set<string>> {
  return new Map(Object.entries(byRoot).map(([root, ids]) => [root, new Set(ids)]));
}

describe('cosign rule semantics (Connaisseur)', () => {
  it.each([
    [
      'no options: the "default" root, no threshold',
      undefined,
      { roots: ['default'], threshold: 0, required: [] },
    ],
    ['a named root', { trustRoot: 'bob' }, { roots: ['bob'], threshold: 0, required: [] }],
    ['"*" alone: every root, one signature each', { trustRoot: '*' }, { roots, threshold: 3, required: [] }],
    ['"*" with threshold 2', { trustRoot: '*', threshold: 2 }, { roots, threshold: 2, required: [] }],
    [
      '"*" with required and no threshold: only the required roots',
      { trustRoot: '*', required: ['bob'] },
      { roots: ['bob'], threshold: 0, required: ['bob'] },
    ],
    [
      '"*" with threshold ≤ |required|: only the required roots',
      { trustRoot: '*', threshold: 2, required: ['alice', 'bob'] },
      { roots: ['alice', 'bob'], threshold: 2, required: ['alice', 'bob'] },
    ],
    [
      '"*" with threshold > |required|: every root',
      { trustRoot: '*', threshold: 2, required: ['bob'] },
      { roots, threshold: 2, required: ['bob'] },
    ],
  ])('selects %s', (_, options, expected) => {
    expect(selectRoots(options, roots)).toEqual(expected);
  });

  it('counts distinct signers, not signatures: one root signing twice is one (stricter than Connaisseur)', () => {
    const selection = selectRoots({ trustRoot: '*', threshold: 2 }, roots);
    expect(evaluatePolicy(selection, valid({ alice: ['s1', 's2'] }))).toEqual({
      ok: false,
      reason: 'threshold',
      found: 1,
      needed: 2,
    });
    expect(evaluatePolicy(selection, valid({ alice: ['s1'], bob: ['s2'] }))).toEqual({
      ok: true,
      signers: ['alice', 'bob'],
    });
  });

  it('counts one signature valid for two roots once', () => {
    const selection = selectRoots({ trustRoot: '*', threshold: 2 }, roots);
    expect(evaluatePolicy(selection, valid({ alice: ['s1'], bob: ['s1'] }))).toMatchObject({
      reason: 'threshold',
      found: 1,
    });
    // With a second signature either root can take the other one: a matching, not a greedy pick.
    expect(evaluatePolicy(selection, valid({ alice: ['s1', 's2'], bob: ['s1'] }))).toMatchObject({
      ok: true,
    });
  });

  it('counts roots with one signer (the same key) once', () => {
    const selection = selectRoots({ trustRoot: '*', threshold: 2 }, roots);
    const sameKey = (root: string): string => (root === 'bob' ? 'alice' : root);
    expect(evaluatePolicy(selection, valid({ alice: ['s1'], bob: ['s2'] }), sameKey)).toMatchObject({
      reason: 'threshold',
      found: 1,
    });
  });

  it('reports a threshold that is not met with what was found', () => {
    const selection = selectRoots({ trustRoot: '*' }, roots);
    expect(evaluatePolicy(selection, valid({ alice: ['a1'], bob: ['b1'] }))).toEqual({
      ok: false,
      reason: 'threshold',
      found: 2,
      needed: 3,
    });
  });

  it('checks the threshold before the required roots', () => {
    const selection = selectRoots({ trustRoot: '*', threshold: 2, required: ['charlie'] }, roots);
    expect(evaluatePolicy(selection, valid({ alice: ['a1'] }))).toMatchObject({ reason: 'threshold' });
    expect(evaluatePolicy(selection, valid({ alice: ['a1'], bob: ['b1'], charlie: [] }))).toEqual({
      ok: false,
      reason: 'required',
      missing: ['charlie'],
    });
  });

  it('requires required roots even with a named trust root', () => {
    const selection = selectRoots({ trustRoot: 'alice', required: ['bob'] }, roots);
    expect(evaluatePolicy(selection, valid({ alice: ['a1'] }))).toEqual({
      ok: false,
      reason: 'required',
      missing: ['bob'],
    });
  });

  it('needs at least one valid signature for a named root', () => {
    expect(evaluatePolicy(selectRoots({ trustRoot: 'alice' }, roots), new Map())).toEqual({
      ok: false,
      reason: 'none',
    });
  });
});
