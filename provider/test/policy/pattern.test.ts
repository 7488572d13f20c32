import { describe, expect, it } from 'vitest';

import { compilePattern, PatternSyntaxError } from '../../src/policy/index.ts';

/** Whether the glob covers the whole text (the grammar alone, before any reference semantics). */
function globMatches(pattern: string, text: string): boolean {
  return compilePattern(pattern).regex.test(text);
}

interface GlobCase {
  readonly pattern: string;
  readonly matching: readonly string[];
  readonly notMatching: readonly string[];
}

// Connaisseur's grammar: gobwas/glob compiled with no separators (reference §2.2, item 2).
const GRAMMAR: readonly [string, GlobCase][] = [
  [
    '`*` matches any run of characters, including `/`, `:` and `@`',
    {
      pattern: 'registry.io*',
      matching: ['registry.io', 'registry.io/team/app:1', 'registry.io/app@sha256:abc', 'registry.io:5000/a'],
      notMatching: ['other.io/registry.io'],
    },
  ],
  [
    '`?` matches exactly one character, which may be a separator',
    { pattern: 'a?c', matching: ['abc', 'a/c', 'a:c', 'a@c'], notMatching: ['ac', 'abbc'] },
  ],
  [
    '`[abc]` matches one character of the set',
    { pattern: 'app:v[123]', matching: ['app:v1', 'app:v3'], notMatching: ['app:v4', 'app:v12', 'app:v'] },
  ],
  [
    '`[a-z]` matches one character of the range',
    { pattern: 'app:[a-c]', matching: ['app:a', 'app:b', 'app:c'], notMatching: ['app:d', 'app:A'] },
  ],
  [
    '`[!a-z]` matches one character outside the range',
    { pattern: 'app:v[!a-z]', matching: ['app:v1', 'app:v-', 'app:v/'], notMatching: ['app:va', 'app:v'] },
  ],
  [
    'a `]` right after `[` is part of the class',
    { pattern: 'x[]a]', matching: ['x]', 'xa'], notMatching: ['xb', 'x[]a]'] },
  ],
  [
    '`{a,b}` matches any one of the alternatives',
    {
      pattern: '{alpha,beta}.io/app',
      matching: ['alpha.io/app', 'beta.io/app'],
      notMatching: ['gamma.io/app', '{alpha,beta}.io/app', 'alpha,beta.io/app'],
    },
  ],
  [
    'alternatives may themselves hold globs and nest',
    {
      pattern: '{*.acme.io,local{host,}}/app',
      matching: ['eu.acme.io/app', 'localhost/app', 'local/app'],
      notMatching: ['acme.io/app', 'localhostx/app'],
    },
  ],
  [
    '`\\` makes the next character literal',
    {
      pattern: 'app\\*\\?\\[x\\]\\{y\\}\\\\',
      matching: ['app*?[x]{y}\\'],
      notMatching: ['app1?[x]{y}\\', 'app*a[x]{y}\\', 'app*?x{y}\\'],
    },
  ],
  [
    '`,` and `}` outside braces are literal',
    { pattern: 'a,b}', matching: ['a,b}'], notMatching: ['a', 'b}'] },
  ],
  [
    '`.` is a literal dot, not "any character"',
    { pattern: 'docker.io/*', matching: ['docker.io/x'], notMatching: ['dockerXio/x', 'docker-io/x'] },
  ],
  [
    'regular-expression metacharacters are literal',
    {
      pattern: 'a+b(c|d)^$',
      matching: ['a+b(c|d)^$'],
      notMatching: ['aab(c|d)^$', 'a+bc^$', 'a+bd', 'a+b(c|d)'],
    },
  ],
];

describe('pattern grammar', () => {
  it.each(GRAMMAR)('%s', (_title, { pattern, matching, notMatching }) => {
    for (const text of matching) expect(globMatches(pattern, text), `${pattern} ~ ${text}`).toBe(true);
    for (const text of notMatching) expect(globMatches(pattern, text), `${pattern} !~ ${text}`).toBe(false);
  });

  it('matches the whole text, never a part of it', () => {
    expect(globMatches('docker.io/library/app', 'docker.io/library/app')).toBe(true);
    expect(globMatches('docker.io/library/app', 'evil.io/docker.io/library/app')).toBe(false);
    expect(globMatches('docker.io/library/app', 'docker.io/library/app-not')).toBe(false);
    expect(globMatches('library/app', 'docker.io/library/app')).toBe(false);
  });
});

describe('pattern syntax errors', () => {
  it.each([
    ['an unclosed "["', '[abc', /unclosed "\[" at position 0/],
    ['an unclosed "[" after a literal prefix', 'docker.io/app:v[12', /unclosed "\[" at position 15/],
    ['an empty "[]" class, which leaves "[" unclosed', 'app[]', /unclosed "\["/],
    ['an empty negated class', 'app[!]', /empty character class/],
    ['an unclosed "{"', '{docker.io,quay.io/*', /unclosed "\{"/],
    ['an unclosed nested "{"', '{a,{b,c}', /unclosed "\{"/],
    ['a trailing "\\"', 'app\\', /unfinished escape/],
  ])('rejects %s with a PatternSyntaxError', (_title, pattern, message) => {
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

  it('compiles an index.docker.io pattern to the same matcher as its docker.io spelling', () => {
    expect(compilePattern('index.docker.io/team/*:v1').regex.source).toBe(
      compilePattern('docker.io/team/*:v1').regex.source,
    );
  });

  it.each([
    ['docker.io/library/app', false],
    ['*', false],
    ['localhost:5000/*', false],
    ['127.0.0.1:*/team/app', false],
    ['docker.io/library/app:v1', true],
    ['*:*', true],
    ['docker.io/library/app@sha256:*', true],
    ['localhost:5000/app:*', true],
  ])('sees whether %s names a tag or digest (%s)', (pattern, hasTagPart) => {
    expect(compilePattern(pattern).hasTagPart).toBe(hasTagPart);
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
