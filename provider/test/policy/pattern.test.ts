import { describe, expect, it } from 'vitest';

import { compilePattern, PatternSyntaxError } from '../../src/policy/index.ts';

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
