/**
 * Differential tests of the image policy (issue 10 item 1): random rule sets and images, decided by the
 * production code and by a reference written here from the documentation alone (Connaisseur's
 * ranking, shared/reference/connaisseur-config.md §2.3, with Provenant's anchored matching as the
 * README states it). The reference shares no code with the production matcher: its glob matcher
 * backtracks over the pattern text, and "anchored" is phrased differently (Connaisseur's trailing `*`,
 * restricted to the ends of the name, the tag and the whole reference).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { compileGlob } from '../../src/glob/index.ts';
import {
  compilePattern,
  compileRules,
  mostSpecificRule,
  patternMatches,
  unmatchableReason,
} from '../../src/policy/index.ts';
import { parseReference } from '../../src/reference/index.ts';

const RUNS = 2000;
// Thousands of properties take seconds; a loaded 2-core machine may take several times as long.
const PROPERTY_TIMEOUT_MS = 60_000;
const DIGESTS = [`sha256:${'a'.repeat(64)}`, `sha256:${'0123456789abcdef'.repeat(4)}`];

// ---------------------------------------------------------------------------------------------
// The reference.

/** gobwas/glob's grammar, by backtracking over the pattern text (fine for the short patterns here). */
function referenceGlob(pattern: string, text: string, memo = new Map<string, boolean>()): boolean {
  const key = `${pattern}\u0000${text}`;
  const known = memo.get(key);
  if (known !== undefined) return known;
  const result = referenceGlobStep(pattern, text, memo);
  memo.set(key, result);
  return result;
}

function referenceGlobStep(p: string, t: string, memo: Map<string, boolean>): boolean {
  if (p === '') return t === '';
  const head = p.charAt(0);
  switch (head) {
    case '*':
      return referenceGlob(p.slice(1), t, memo) || (t !== '' && referenceGlob(p, t.slice(1), memo));
    case '?':
      return t !== '' && referenceGlob(p.slice(1), t.slice(1), memo);
    case '\\':
      return t !== '' && t.charAt(0) === p.charAt(1) && referenceGlob(p.slice(2), t.slice(1), memo);
    case '[': {
      const close = p.indexOf(']', 2);
      return (
        t !== '' &&
        inClass(p.slice(1, close), t.charAt(0)) &&
        referenceGlob(p.slice(close + 1), t.slice(1), memo)
      );
    }
    case '{': {
      const { alternatives, rest } = splitGroup(p);
      return alternatives.some((alternative) => referenceGlob(alternative + rest, t, memo));
    }
    default:
      return t !== '' && t.charAt(0) === head && referenceGlob(p.slice(1), t.slice(1), memo);
  }
}

function inClass(body: string, c: string): boolean {
  const negated = body.startsWith('!');
  const members = negated ? body.slice(1) : body;
  let found = false;
  for (let i = 0; i < members.length; i++) {
    if (members[i + 1] === '-' && i + 2 < members.length) {
      found ||= (members[i] as string) <= c && c <= (members[i + 2] as string);
      i += 2;
    } else {
      found ||= members[i] === c;
    }
  }
  return found !== negated;
}

/** `{a,b{c,d}}rest` → alternatives `a`, `b{c,d}` and `rest`. Patterns here escape nothing inside groups. */
function splitGroup(p: string): { alternatives: string[]; rest: string } {
  const alternatives: string[] = [];
  let depth = 0;
  let start = 1;
  for (let i = 0; i < p.length; i++) {
    const c = p[i];
    if (c === '{') depth++;
    else if (c === '}' && --depth === 0) {
      alternatives.push(p.slice(start, i));
      return { alternatives, rest: p.slice(i + 1) };
    } else if (c === ',' && depth === 1) {
      alternatives.push(p.slice(start, i));
      start = i + 1;
    }
  }
  throw new Error(`unclosed group in ${p}`);
}

interface Image {
  readonly name: string;
  readonly tag: string | undefined;
  readonly digest: string | undefined;
}

function imageText(image: Image): string {
  return `${image.name}${image.tag === undefined ? '' : `:${image.tag}`}${image.digest === undefined ? '' : `@${image.digest}`}`;
}

/** README "Image policy matching": Docker Hub has one spelling, registry hosts are case-insensitive. */
function referenceSpelling(pattern: string): string {
  for (const alias of ['index.docker.io/', 'registry-1.docker.io/']) {
    if (pattern.startsWith(alias)) return `docker.io/${pattern.slice(alias.length)}`;
  }
  const [first = '', ...rest] = pattern.split('/');
  return rest.length > 0 && /[.:]/.test(first) ? [first.toLowerCase(), ...rest].join('/') : pattern;
}

/**
 * Connaisseur matches `*pattern*`; anchored, the leading `*` goes and the trailing one may only stand
 * for what follows the name or the tag: the pattern must cover the reference up to one of those ends.
 */
function referenceMatches(pattern: string, image: Image): boolean {
  const ends = [image.name, imageText(image)];
  if (image.tag !== undefined) ends.push(`${image.name}:${image.tag}`);
  return ends.some((end) => referenceGlob(referenceSpelling(pattern), end));
}

/** Connaisseur's ranking, as a sort key compared left to right (§2.3 steps 1 to 3). */
function rankKey(pattern: string, image: string): number[] {
  const components = referenceSpelling(pattern).split('/');
  const imageComponents = image.split('/');
  const prefix = components.map((c, i) => {
    const other = imageComponents[i] ?? '';
    let n = 0;
    for (const ch of c) {
      if (other[n] !== ch) break;
      n++;
    }
    return n;
  });
  return [components.length, ...prefix, ...components.map((c) => c.length)];
}

function compareKeys(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const diff = (a[i] ?? 0) - (b[i] ?? 0);
    if (diff !== 0) return diff;
  }
  return 0;
}

/** The index of the winning rule: highest key, and on a full tie the later rule (§2.3 step 4). */
function referenceWinner(patterns: readonly string[], image: Image): number | undefined {
  const text = imageText(image);
  const ranked = patterns
    .map((pattern, index) => ({ index, key: rankKey(pattern, text) }))
    .filter(({ index }) => referenceMatches(patterns[index] as string, image))
    .sort((a, b) => compareKeys(b.key, a.key) || b.index - a.index);
  return ranked[0]?.index;
}

// ---------------------------------------------------------------------------------------------
// Random images and patterns, from a vocabulary small enough that patterns often match.

const registryArb = fc.constantFrom('docker.io', 'reg.io', 'reg.io:5000', 'localhost:5000', 'team.io');
const componentArb = fc.constantFrom('team', 'app', 'library', 'a', 'ab', 'app-rc', 'x.y', 'debug');
const tagArb = fc.constantFrom('v1', 'v10', 'latest', 'debug', '1.0-rc1', 'V1', 'a.b_c', 'app');

const imageArb: fc.Arbitrary<Image> = fc
  .record({
    registry: registryArb,
    path: fc.array(componentArb, { minLength: 1, maxLength: 3 }),
    tag: fc.option(tagArb, { nil: undefined }),
    digest: fc.option(fc.constantFrom(...DIGESTS), { nil: undefined }),
  })
  .map(({ registry, path, tag, digest }) => ({
    // Docker Hub names have two or more components; a reference without tag or digest has `latest`.
    name: `${registry}/${registry === 'docker.io' && path.length === 1 ? 'library/' : ''}${path.join('/')}`,
    tag: tag === undefined && digest === undefined ? 'latest' : tag,
    digest,
  }));

const GLOB_PIECES = ['*', '*', '?', '[a-c]', '[!a]', '[0-9]', '{app,team}', '{v1,debug,:}', '{a,{b,x.y}}'];
const LITERAL_PIECES = [
  'docker.io',
  'index.docker.io',
  'Reg.IO',
  'reg.io',
  ':5000',
  'team',
  'app',
  'library',
];
const SEPARATOR_PIECES = ['/', '/', ':', '@', '-', '.', 'sha256:', 'v1', 'debug', 'rc'];

/** A pattern assembled from pieces: literals, separators and globs. */
const assembledPatternArb = fc
  .array(fc.constantFrom(...GLOB_PIECES, ...LITERAL_PIECES, ...SEPARATOR_PIECES), {
    minLength: 1,
    maxLength: 7,
  })
  .map((pieces) => pieces.join(''));

/** An image with a few spans replaced by globs: close to the images, so it often matches one. */
const mutatedPatternArb = fc
  .tuple(
    imageArb,
    fc.array(fc.tuple(fc.nat(), fc.nat({ max: 6 }), fc.constantFrom(...GLOB_PIECES, '')), {
      maxLength: 3,
    }),
    fc.boolean(),
  )
  .map(([image, edits, cutTag]) => {
    const original = cutTag ? image.name : imageText(image);
    // Spans of the original text, replaced right to left and never overlapping, so no glob is cut.
    const spans = edits
      .map(([at, length, glob]) => {
        const start = at % (original.length + 1);
        return { start, end: Math.min(original.length, start + length), glob };
      })
      .sort((a, b) => b.start - a.start);
    let text = original;
    let limit = original.length;
    for (const { start, end, glob } of spans) {
      if (end > limit) continue;
      text = text.slice(0, start) + glob + text.slice(end);
      limit = start;
    }
    return text;
  });

const patternArb = fc.oneof(assembledPatternArb, mutatedPatternArb, fc.constantFrom('*', '*:*', '*/*'));

// ---------------------------------------------------------------------------------------------

describe('image policy against a reference implementation', () => {
  it('generates normalised references, as the production parser writes them', () => {
    fc.assert(
      fc.property(imageArb, (image) => {
        expect(parseReference(imageText(image)).normalized).toBe(imageText(image));
      }),
      { numRuns: 500 },
    );
  });

  it(
    'picks the same rule as the reference for thousands of rule sets and images',
    () => {
      let decided = 0;
      let contested = 0;
      fc.assert(
        fc.property(
          fc.array(patternArb, { maxLength: 6 }),
          fc.array(imageArb, { minLength: 1, maxLength: 4 }),
          (patterns, images) => {
            const rules = compileRules(patterns.map((pattern) => ({ pattern })));
            for (const image of images) {
              const expected = referenceWinner(patterns, image);
              const actual = mostSpecificRule(rules, parseReference(imageText(image)))?.index;
              expect(actual, `${JSON.stringify(patterns)} for ${imageText(image)}`).toBe(expected);
              if (expected !== undefined) decided++;
              if (patterns.filter((p) => referenceMatches(p, image)).length > 1) contested++;
            }
          },
        ),
        { numRuns: RUNS },
      );
      // The comparison means something only if many images had a rule, and many had a choice of rules.
      expect(decided).toBeGreaterThan(RUNS / 2);
      expect(contested).toBeGreaterThan(RUNS / 4);
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    'warns only about patterns that match no image (item 6)',
    () => {
      let warned = 0;
      fc.assert(
        fc.property(patternArb, fc.array(imageArb, { minLength: 20, maxLength: 20 }), (pattern, images) => {
          const compiled = compilePattern(pattern);
          if (unmatchableReason(compiled) === undefined) return;
          warned++;
          for (const image of images) {
            const text = imageText(image);
            expect(patternMatches(compiled, parseReference(text)), `${pattern} ~ ${text}`).toBe(false);
          }
        }),
        { numRuns: RUNS },
      );
      expect(warned).toBeGreaterThan(RUNS / 20);
    },
    PROPERTY_TIMEOUT_MS,
  );

  it(
    'matches globs as the reference does, character by character',
    () => {
      const textArb = fc
        .array(fc.constantFrom('a', 'b', 'x', '.', 'y', '/', ':', '@', '-', '0', '7', ','), { maxLength: 10 })
        .map((chars) => chars.join(''));
      const globArb = fc
        .array(
          fc.constantFrom(
            'a',
            'b',
            'x.y',
            '/',
            ':',
            '@',
            '-',
            ',',
            '}',
            '*',
            '?',
            '[a-b]',
            '[!a]',
            '[0-9]',
            '[.:]',
            '\\*',
            '\\?',
            '{a,b}',
            '{a,{x,y},}',
            '{,*:}',
          ),
          { maxLength: 6 },
        )
        .map((pieces) => pieces.join(''));
      fc.assert(
        fc.property(globArb, textArb, (glob, text) => {
          expect(compileGlob(glob).matches(text), `${glob} ~ ${text}`).toBe(referenceGlob(glob, text));
        }),
        { numRuns: RUNS },
      );
    },
    PROPERTY_TIMEOUT_MS,
  );
});
