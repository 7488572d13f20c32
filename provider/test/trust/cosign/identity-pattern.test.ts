import { describe, expect, it } from 'vitest';
import { compileIdentityPattern, IdentityPatternError } from '../../../src/trust/cosign/index.ts';

/** A JavaScript (backtracking) engine takes seconds on `^(a+)+$` against this; RE2 takes microseconds. */
const CATASTROPHIC_INPUT = `${'a'.repeat(10_000)}b`;
const LINEAR_BUDGET_MS = 100;

describe('keyless identity patterns (RE2, as cosign)', () => {
  it('matches a catastrophic-backtracking pattern against a long subject in linear time', () => {
    const pattern = compileIdentityPattern('^(a+)+$');
    const started = performance.now();
    expect(pattern.test(CATASTROPHIC_INPUT)).toBe(false);
    expect(pattern.test('a'.repeat(10_000))).toBe(true);
    expect(performance.now() - started).toBeLessThan(LINEAR_BUDGET_MS);
  });

  it("is unanchored, as Go's MatchString: a pattern without ^ and $ matches inside the value", () => {
    const pattern = compileIdentityPattern('@corp\\.com');
    expect(pattern.test('alice@corp.com')).toBe(true);
    expect(pattern.test('alice@corp.com.evil.example')).toBe(true);
    expect(compileIdentityPattern('^alice@corp\\.com$').test('alice@corp.com.evil.example')).toBe(false);
  });

  it('reads \\z as end of text and (?i) as a flag, as Go does (JavaScript reads \\z as "z" and refuses (?i))', () => {
    const end = compileIdentityPattern('^alice@corp\\.com\\z');
    expect(end.test('alice@corp.com')).toBe(true);
    expect(end.test('alice@corp.comz')).toBe(false);
    expect(compileIdentityPattern('(?i)^https://github\\.com/acme/').test('https://GitHub.com/acme/x')).toBe(
      true,
    );
  });

  it.each([
    ['a lookahead', '^(?!mallory)'],
    ['a backreference', '(a)\\1'],
    ['an unbalanced group', '('],
  ])('refuses %s, which Go regexp refuses too', (_, source) => {
    expect(() => compileIdentityPattern(source)).toThrow(IdentityPatternError);
    expect(() => compileIdentityPattern(source)).toThrow(/not a valid RE2 regular expression/);
  });

  it('keeps the configured source for messages', () => {
    expect(compileIdentityPattern('^ci@corp$').source).toBe('^ci@corp$');
  });
});
