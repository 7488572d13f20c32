import { describe, expect, it } from 'vitest';
import { evaluatePolicy, selectRoots } from '../../../src/validators/cosign/policy.ts';

const roots = ['alice', 'bob', 'charlie'];

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

  it('counts signatures, not distinct roots, against the threshold', () => {
    const selection = selectRoots({ trustRoot: '*', threshold: 2 }, roots);
    expect(evaluatePolicy(selection, new Map([['alice', 2]]))).toEqual({ ok: true, signers: ['alice'] });
  });

  it('reports a threshold that is not met with what was found', () => {
    const selection = selectRoots({ trustRoot: '*' }, roots);
    expect(
      evaluatePolicy(
        selection,
        new Map([
          ['alice', 1],
          ['bob', 1],
        ]),
      ),
    ).toEqual({
      ok: false,
      reason: 'threshold',
      found: 2,
      needed: 3,
    });
  });

  it('checks the threshold before the required roots', () => {
    const selection = selectRoots({ trustRoot: '*', threshold: 3, required: ['charlie'] }, roots);
    expect(evaluatePolicy(selection, new Map([['alice', 1]]))).toMatchObject({ reason: 'threshold' });
    expect(
      evaluatePolicy(
        selection,
        new Map([
          ['alice', 2],
          ['bob', 1],
        ]),
      ),
    ).toEqual({
      ok: false,
      reason: 'required',
      missing: ['charlie'],
    });
  });

  it('requires required roots even with a named trust root', () => {
    const selection = selectRoots({ trustRoot: 'alice', required: ['bob'] }, roots);
    expect(evaluatePolicy(selection, new Map([['alice', 1]]))).toEqual({
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
