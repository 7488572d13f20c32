import { describe, expect, it } from 'vitest';

import {
  compareSpecificity,
  compilePattern,
  patternMatches,
  PatternSyntaxError,
  unmatchableReason,
} from '../../src/policy/index.ts';
import { parseReference } from '../../src/reference/index.ts';

/** Whether the compiled pattern covers the whole text (the grammar alone, before reference semantics). */
function globMatches(pattern: string, text: string): boolean {
  return compilePattern(pattern).glob.matches(text);
}

describe('pattern syntax errors', () => {
  it.each([
    ['an unclosed "["', 'docker.io/app:v[12', /unclosed "\[" at position 15/],
    ['an unclosed "{"', '{docker.io,quay.io/*', /unclosed "\{"/],
  ])('reports %s as a PatternSyntaxError', (_title, pattern, message) => {
    expect(() => compilePattern(pattern)).toThrow(PatternSyntaxError);
    expect(() => compilePattern(pattern)).toThrow(message);
  });
});

describe('pattern normalisation', () => {
  it.each([
    ['index.docker.io/library/app:*', 'docker.io/library/app:*'],
    ['registry-1.docker.io/library/app', 'docker.io/library/app'],
    ['docker.io/library/app', 'docker.io/library/app'],
    ['*/library/app', '*/library/app'],
    ['myindex.docker.io/app', 'myindex.docker.io/app'],
    ['quay.io/index.docker.io/app', 'quay.io/index.docker.io/app'],
  ])('spells %s as %s', (source, normalized) => {
    const compiled = compilePattern(source);
    expect(compiled.source).toBe(source);
    expect(compiled.normalized).toBe(normalized);
  });

  it('matches an index.docker.io pattern as its docker.io spelling', () => {
    expect(globMatches('index.docker.io/team/*:v1', 'docker.io/team/app:v1')).toBe(true);
    expect(globMatches('index.docker.io/team/*:v1', 'index.docker.io/team/app:v1')).toBe(false);
  });
});

describe('registry hosts in patterns', () => {
  it('matches a registry host case-insensitively, as references are normalised to lower case', () => {
    expect(compilePattern('LoCaLhOst:1234/*').normalized).toBe('localhost:1234/*');
    expect(globMatches('LoCaLhOst:1234/*', 'localhost:1234/team/app:v1')).toBe(true);
  });

  it('keeps the case of repository components and of patterns without a registry', () => {
    expect(compilePattern('Image:*').normalized).toBe('Image:*');
    expect(compilePattern('registry.io/Team/*').normalized).toBe('registry.io/Team/*');
  });
});

describe('a "/" inside braces or a class (issue 10 item 6)', () => {
  it.each([
    ['{reg.io/team,x}/*', '"{…}"'],
    ['reg.io/{a/b/c,d}', '"{…}"'],
    ['reg.io/{a,{b\\/c,d}}', '"{…}"'],
    ['reg.io/a[/b]c', '"[…]"'],
    ['reg.io/a[!/]c', '"[…]"'],
  ])('refuses %s, naming the pattern, as the "/" would inflate its rank', (pattern, group) => {
    expect(() => compilePattern(pattern)).toThrow(PatternSyntaxError);
    expect(() => compilePattern(pattern)).toThrow(
      `pattern ${JSON.stringify(pattern)} has a "/" inside ${group}`,
    );
  });

  it('refuses them because ranking by text would put a less specific rule first', () => {
    // For reg.io/team/app:1 only the `reg.io` alternative of `{x/y/z,reg.io}/*` matches, a rule of two
    // components, yet its text has four and would outrank `reg.io/team/*`.
    const image = 'reg.io/team/app:1';
    expect(compareSpecificity('{x/y/z,reg.io}/*', 'reg.io/team/*', image)).toBeGreaterThan(0);
    expect(compareSpecificity('reg.io/*', 'reg.io/team/*', image)).toBeLessThan(0);
    expect(() => compilePattern('{x/y/z,reg.io}/*')).toThrow(PatternSyntaxError);
  });

  it.each(['{reg.io,quay.io}/team/*', 'reg.io/team/{app,web}:v[12]', 'reg.io/a\\/b', 'reg.io/[!a]*'])(
    'accepts %s, whose "/" are all outside groups',
    (pattern) => {
      expect(compilePattern(pattern).source).toBe(pattern);
    },
  );
});

describe('patterns that can never match a normalised reference (issue 10 item 6)', () => {
  function matchesImage(pattern: string, image: string): boolean {
    return patternMatches(compilePattern(pattern), parseReference(image));
  }

  it.each([
    ['library/evil*', 'docker.io/library/evil*', 'evil:1'],
    ['team/app', 'docker.io/team/app', 'team/app:1'],
    ['localhost/app:*', 'docker.io/localhost/app:*', 'localhost/app:1'],
    ['docker.io/test:*', 'docker.io/library/test:*', 'test:1'],
    ['index.docker.io/test:*', 'docker.io/library/test:*', 'docker.io/test:1'],
    ['docker.io/nginx', 'docker.io/library/nginx', 'nginx@sha256:' + 'a'.repeat(64)],
    ['docker.io/nginx@sha256:*', 'docker.io/library/nginx@sha256:*', 'nginx@sha256:' + 'a'.repeat(64)],
    ['nginx', 'docker.io/library/nginx', 'nginx'],
    ['nginx:1.27', 'docker.io/library/nginx:1.27', 'nginx:1.27'],
    ['evil', 'docker.io/library/evil', 'evil'],
    ['reg.io', 'reg.io/*', 'reg.io/app:1'],
    ['localhost:5000', 'localhost:5000/*', 'localhost:5000/app'],
    ['docker.io', 'docker.io/*', 'nginx'],
  ])('warns that %s can never match, naming %s, which matches %s', (pattern, form, image) => {
    const reason = unmatchableReason(compilePattern(pattern));
    expect(reason).toContain(`${JSON.stringify(pattern)} can never match`);
    expect(reason).toContain(`${JSON.stringify(form)} would match`);
    expect(matchesImage(pattern, image)).toBe(false);
    expect(matchesImage(form, image)).toBe(true);
    expect(unmatchableReason(compilePattern(form))).toBeUndefined();
  });

  it.each([
    ['*:*', 'nginx'],
    ['*', 'nginx'],
    ['*/library/nginx', 'nginx'],
    ['docker.io/library/*', 'nginx'],
    ['docker.io/*:*', 'nginx'],
    ['docker.io/test*', 'docker.io/test/app:1'],
    ['docker.io/team*:*', 'docker.io/team/app:1'],
    ['nginx*', 'nginx.io/app:1'],
    ['nginx:*', 'nginx:5000/app:1'],
    ['{docker.io,x}/library/nginx', 'nginx'],
    ['localhost:5000/*', 'localhost:5000/app'],
    ['LoCaLhOst:5000/app', 'localhost:5000/app'],
    ['reg.io/app', 'reg.io/app:1'],
  ])('does not warn about %s, which matches %s', (pattern, image) => {
    expect(unmatchableReason(compilePattern(pattern))).toBeUndefined();
    expect(matchesImage(pattern, image)).toBe(true);
  });
});
