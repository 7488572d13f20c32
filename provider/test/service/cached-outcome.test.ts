import { describe, expect, it } from 'vitest';

import { isCachedOutcome } from '../../src/service/cached-outcome.ts';

const verdict = {
  image: 'registry.example/app@sha256:' + 'a'.repeat(64),
  digest: 'sha256:' + 'a'.repeat(64),
  validator: 'allow',
  signers: ['default'],
  rule: 'registry.example/*',
  mode: 'mutate',
};

describe('cached outcome type guard', () => {
  it('accepts a verdict and a non-transient error as this build writes them', () => {
    expect(isCachedOutcome({ verdict })).toBe(true);
    expect(isCachedOutcome({ error: { code: 'POLICY_STATIC_DENY', message: 'denied' } })).toBe(true);
  });

  it.each([
    ['null', null],
    ['a string', '{"verdict":{}}'],
    ['both a verdict and an error', { verdict, error: { code: 'POLICY_STATIC_DENY', message: 'x' } }],
    ['a verdict without a digest', { verdict: { ...verdict, digest: undefined } }],
    ['a digest that is not a sha256 digest', { verdict: { ...verdict, digest: 'sha256:abc' } }],
    ['signers that are not strings', { verdict: { ...verdict, signers: [1] } }],
    ['an unknown mode', { verdict: { ...verdict, mode: 'allow' } }],
    ['an unknown error code', { error: { code: 'ALLOW', message: 'x' } }],
    ['a transient error code, never cached', { error: { code: 'REGISTRY_UNREACHABLE', message: 'x' } }],
    ['an inherited error code', { error: { code: 'toString', message: 'x' } }],
  ])('refuses %s', (_title, value) => {
    expect(isCachedOutcome(value)).toBe(false);
  });
});
