import { describe, expect, it } from 'vitest';

import { compileGlob, GlobSyntaxError } from '../../src/glob/index.ts';

function globMatches(pattern: string, text: string): boolean {
  return compileGlob(pattern).matches(text);
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
    'a `[` inside a class is a member, never the start of a POSIX class',
    { pattern: 'x[[:]', matching: ['x[', 'x:'], notMatching: ['xa', 'x[:'] },
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

describe('glob grammar', () => {
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

describe('glob syntax errors', () => {
  it.each([
    ['an unclosed "["', '[abc', /unclosed "\[" at position 0/],
    ['an unclosed "[" after a literal prefix', 'docker.io/app:v[12', /unclosed "\[" at position 15/],
    ['an empty "[]" class, which leaves "[" unclosed', 'app[]', /unclosed "\["/],
    ['an empty negated class', 'app[!]', /empty character class/],
    ['an unclosed "{"', '{docker.io,quay.io/*', /unclosed "\{"/],
    ['an unclosed nested "{"', '{a,{b,c}', /unclosed "\{"/],
    ['a trailing "\\"', 'app\\', /unfinished escape/],
    ['a class range out of order', 'app:v[9-0]', /invalid character class range: `9-0`/],
  ])('rejects %s with a GlobSyntaxError', (_title, pattern, message) => {
    expect(() => compileGlob(pattern)).toThrow(GlobSyntaxError);
    expect(() => compileGlob(pattern)).toThrow(message);
  });
});

describe('matching time', () => {
  // Issue 10 item 14: a backtracking RegExp took 1.1 s for one such match; an automaton takes
  // microseconds. The bound only guards against super-linear behaviour on a loaded 2-core machine.
  const PATHOLOGICAL_MATCHES = 100;
  const PATHOLOGICAL_BOUND_MS = 50;

  it.each([
    ['*/*/*/*:latest', `${'a/'.repeat(186)}x`],
    ['*a*a*a*a*a*a*a*a*b', 'a'.repeat(373)],
    ['{*,*}{*,*}{*,*}{*,*}:x', 'y'.repeat(373)],
  ])('fails %s against a long reference in linear time', (pattern, text) => {
    expect(text.length).toBeGreaterThanOrEqual(373);
    const glob = compileGlob(pattern);
    const started = performance.now();
    for (let i = 0; i < PATHOLOGICAL_MATCHES; i++) expect(glob.matches(text)).toBe(false);
    expect(performance.now() - started).toBeLessThan(PATHOLOGICAL_BOUND_MS);
  });
});
