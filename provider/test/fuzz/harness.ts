/**
 * Shared pieces of the property suites (issue 16): how many inputs each property runs, hostile
 * inputs, and the check that a parser either answers or fails with the error its caller maps to a code.
 *
 * `npm test` runs a bounded number of inputs per property (a few hundred); `npm run fuzz` sets
 * PROVENANT_FUZZ_RUNS to run each property that many times and prints, per parser, how many inputs ran
 * clean.
 */
import fc from 'fast-check';
import { expect, it } from 'vitest';

import { ERROR_CODES, ProvenantError, type ErrorCode } from '../../src/types/errors.ts';

const requestedRuns = Number(process.env['PROVENANT_FUZZ_RUNS'] ?? '');
/** Set by `npm run fuzz`: every property runs this many inputs instead of its bounded default. */
export const LONG_RUNS = Number.isSafeInteger(requestedRuns) && requestedRuns > 0 ? requestedRuns : undefined;

// A long run takes as long as it takes; a bounded one must finish well inside the unit suite's budget
// even on a loaded 2-core machine.
const BOUNDED_TIMEOUT_MS = 60_000;
const LONG_TIMEOUT_MS = 24 * 60 * 60 * 1000;

const REPORT_CHARS = 4000;
const YIELD_EVERY_RUNS = 100;

/** A synchronous parser that takes this long on one input of at most ~1 MiB is hanging, not slow. */
export const HANG_LIMIT_MS = 2_000;

/**
 * One property over `arbitrary`, `runs` times (or PROVENANT_FUZZ_RUNS). `examples` are inputs a past
 * run found failing, kept as explicit regressions; they run first, every time. `maxRuns` caps a long
 * run for a property whose inputs are few (nesting depths: one integer and a kind), where more runs
 * would only repeat them.
 */
export function property<T>(
  name: string,
  parser: string,
  arbitrary: fc.Arbitrary<T>,
  predicate: (value: T) => void | Promise<void>,
  options: { readonly runs: number; readonly examples?: readonly T[]; readonly maxRuns?: number },
): void {
  const numRuns = Math.min(LONG_RUNS ?? options.runs, options.maxRuns ?? Infinity);
  it(
    name,
    async () => {
      const startedMs = performance.now();
      let runsSoFar = 0;
      const details = await fc.check(
        fc.asyncProperty(arbitrary, async (value) => {
          // fast-check chains runs as microtasks: yield to the event loop now and then, or a long run
          // starves vitest's worker RPC (which times out after a minute).
          if (++runsSoFar % YIELD_EVERY_RUNS === 0) await new Promise((resolve) => setImmediate(resolve));
          await predicate(value);
        }),
        // fast-check counts examples in numRuns: they come on top, so every one runs.
        {
          numRuns: numRuns + (options.examples?.length ?? 0),
          examples: (options.examples ?? []).map((e) => [e] as [T]),
        },
      );
      // A counterexample may be megabytes of text: the report keeps its start (the seed replays it).
      if (details.failed) {
        let report: string;
        try {
          report = fc.defaultReportMessage(details) ?? 'property failed';
        } catch {
          // fast-check prints counterexamples recursively: a deeply nested one overflows the stack.
          report = `seed ${details.seed}, path ${details.counterexamplePath ?? ''} (counterexample too deep to print)`;
        }
        throw new Error(`${describeThrown(details.errorInstance)}\n${report.slice(0, REPORT_CHARS)}`);
      }
      if (LONG_RUNS !== undefined) {
        const seconds = ((performance.now() - startedMs) / 1000).toFixed(1);
        console.log(`fuzz: ${parser}: ${details.numRuns} inputs ran clean (${seconds} s) — ${name}`);
      }
    },
    LONG_RUNS === undefined ? BOUNDED_TIMEOUT_MS : LONG_TIMEOUT_MS,
  );
}

/** Runs a synchronous parser, failing the property when one input takes longer than `limitMs`. */
export function timed<T>(fn: () => T, limitMs = HANG_LIMIT_MS): T {
  const started = performance.now();
  try {
    return fn();
  } finally {
    const elapsed = performance.now() - started;
    expect(elapsed, `one input took ${elapsed.toFixed(0)} ms`).toBeLessThan(limitMs);
  }
}

/** The outcome of a parser: its answer, or what it threw. */
export type Outcome<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: unknown };

export function outcome<T>(fn: () => T, limitMs = HANG_LIMIT_MS): Outcome<T> {
  try {
    return { ok: true, value: timed(fn, limitMs) };
  } catch (error) {
    if (isAssertion(error)) throw error;
    return { ok: false, error };
  }
}

export async function asyncOutcome<T>(fn: () => Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await fn() };
  } catch (error) {
    return { ok: false, error };
  }
}

function isAssertion(error: unknown): boolean {
  return error instanceof Error && error.name === 'AssertionError';
}

/** Fails unless `error` is a ProvenantError with one of `codes` (and a code docs/errors.md lists). */
export function expectCoded(error: unknown, codes: readonly ErrorCode[]): void {
  if (!(error instanceof ProvenantError)) {
    throw new Error(`expected a ProvenantError with ${codes.join(' or ')}, found ${describeThrown(error)}`);
  }
  expect(Object.keys(ERROR_CODES)).toContain(error.code);
  expect(codes).toContain(error.code);
}

/** Fails unless `error` is an instance of one of `classes` (the errors a caller maps to a code). */
export function expectOneOf(
  error: unknown,
  classes: readonly (abstract new (...args: never[]) => Error)[],
): void {
  if (!classes.some((c) => error instanceof c && error.constructor === c)) {
    throw new Error(
      `expected one of ${classes.map((c) => c.name).join(', ')}, found ${describeThrown(error)}`,
    );
  }
}

export function describeThrown(error: unknown): string {
  if (error instanceof Error)
    return `${error.constructor.name}: ${error.message.slice(0, 200)}\n${error.stack ?? ''}`;
  return `a thrown ${typeof error}`;
}

// ---------------------------------------------------------------------------------------------
// Hostile inputs.

/** Nesting deep enough to overflow any recursive walk (V8's stack holds roughly 10^4 frames). */
export const DEEP_NESTING = 20_000;

/** `[[[…]]]` (or `{"a":{…}}`) nested `depth` deep, as JSON text. */
export function nestedJsonText(depth: number, kind: 'array' | 'object' = 'array'): string {
  return kind === 'array'
    ? `${'['.repeat(depth)}${']'.repeat(depth)}`
    : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
}

const shortStrings = [
  fc.string(),
  fc.string({ unit: 'grapheme' }),
  fc.string({ unit: 'binary' }),
  fc.string({
    unit: fc.constantFrom(
      '\u0000',
      '\n',
      '\r',
      '"',
      '\\',
      ':',
      '/',
      '@',
      ',',
      '=',
      ' ',
      '\u2028',
      '\uFEFF',
      'é',
      '😀',
    ),
  }),
];

/** A short string repeated up to 70 000 times: past any 64 KiB bound. */
const longString: fc.Arbitrary<string> = fc
  .tuple(fc.string({ maxLength: 4 }), fc.integer({ min: 1, max: 70_000 }))
  .map(([s, n]) => s.repeat(n));

/** Strings a parser must survive: any UTF-16 (lone surrogates too), NUL and control bytes, long runs. */
export const hostileString: fc.Arbitrary<string> = fc.oneof(...shortStrings, longString);

/** Numbers JSON can carry that code tends not to expect. */
export const hostileNumber: fc.Arbitrary<number> = fc.oneof(
  fc.constantFrom(0, -0, -1, 1, 2 ** 53, 2 ** 53 + 2, -(2 ** 53), 1e308, -1e308, 5e-324, 0.5, 4294967296),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.integer(),
);

/**
 * An array of 1000 to 3000 elements, a few distinct JSON values repeated: as wide as independent
 * elements, for a fraction of the cost (generating 3000 independent values took ~12 ms per input, more
 * than most parsers spend on it).
 */
const wideArray: fc.Arbitrary<unknown[]> = fc
  .tuple(
    fc.array(fc.jsonValue({ maxDepth: 1 }), { minLength: 1, maxLength: 8 }),
    fc.integer({ min: 1000, max: 3000 }),
  )
  .map(([values, length]) => Array.from({ length }, (_, i) => values[i % values.length]));

const smallValues = [
  { weight: 4, arbitrary: fc.jsonValue({ maxDepth: 4 }) },
  { weight: 2, arbitrary: hostileNumber },
  { weight: 1, arbitrary: fc.constantFrom(null, true, false, [], {}) },
];

/** Any JSON value nested at most a few levels: hostile strings and numbers, wide arrays. */
export const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  ...smallValues,
  { weight: 2, arbitrary: hostileString },
  { weight: 1, arbitrary: wideArray },
);

/**
 * hostileValue without its bulky values (wide arrays, 280 000-character strings): for parsers whose
 * cost grows with the input's size (YAML), which meet bulk in a property of its own with fewer inputs.
 */
export const compactHostileValue: fc.Arbitrary<unknown> = fc.oneof(...smallValues, {
  weight: 2,
  arbitrary: fc.oneof(...shortStrings),
});

/** Values whose cost is their size: 1000–3000-element arrays, strings of up to 280 000 characters. */
export const bulkyValue: fc.Arbitrary<unknown> = fc.oneof(wideArray, longString);

const deepSpec = fc.tuple(
  fc.integer({ min: 1, max: DEEP_NESTING }),
  fc.constantFrom('array' as const, 'object' as const),
);

/** JSON text nested up to DEEP_NESTING deep. */
export const deepJsonText: fc.Arbitrary<string> = deepSpec.map(([depth, kind]) =>
  nestedJsonText(depth, kind),
);

/** Any JSON value, deep nesting included (for parsers handed values; tests must not stringify it). */
export const hostileJson: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 9, arbitrary: hostileValue },
  { weight: 1, arbitrary: deepJsonText.map((text): unknown => JSON.parse(text)) },
);

/** Any JSON document as text, deep nesting included. */
export const hostileJsonText: fc.Arbitrary<string> = fc.oneof(
  { weight: 9, arbitrary: hostileValue.map((v) => JSON.stringify(v)) },
  { weight: 1, arbitrary: deepJsonText },
);

/** Raw bytes, UTF-8 or not. */
export const rawBytes: fc.Arbitrary<Buffer> = fc
  .oneof(
    fc.uint8Array({ maxLength: 2048 }),
    fc.string({ unit: 'binary' }).map((s) => new TextEncoder().encode(s)),
  )
  .map((a) => Buffer.from(a));

/**
 * A JSON value with one place changed: at a random path, the value is replaced by a hostile one, or
 * deleted, or a hostile field is added. The path is picked by index, so every field can be reached.
 */
export function mutatedJson(
  base: unknown,
  values: fc.Arbitrary<unknown> = hostileValue,
): fc.Arbitrary<unknown> {
  const paths = jsonPaths(base);
  return fc
    .tuple(
      fc.constantFrom(...paths),
      fc.constantFrom('replace' as const, 'delete' as const, 'add' as const),
      values,
      fc.string({ maxLength: 12 }),
    )
    .map(([path, how, value, key]) => mutateAt(structuredClone(base), path, how, value, key));
}

const DEEP_MARKER = '\u0000deep:';

/**
 * mutatedJson as JSON text, where the value put in is one of `values` or, one time in `1 + deepOdds`,
 * nested up to DEEP_NESTING deep (`deepOdds: 0`: never).
 */
export function mutatedJsonText(
  base: unknown,
  { values = hostileValue, deepOdds = 9 }: { values?: fc.Arbitrary<unknown>; deepOdds?: number } = {},
): fc.Arbitrary<string> {
  const deepMarker = deepSpec.map(([depth, kind]) => `${DEEP_MARKER}${depth}:${kind}`);
  return mutatedJson(
    base,
    deepOdds === 0
      ? values
      : fc.oneof({ weight: deepOdds, arbitrary: values }, { weight: 1, arbitrary: deepMarker }),
  ).map((value) =>
    (JSON.stringify(value) ?? 'null').replace(
      /"\\u0000deep:(\d+):(array|object)"/g,
      (_, depth: string, kind: 'array' | 'object') => nestedJsonText(Number(depth), kind),
    ),
  );
}

type Path = readonly (string | number)[];

function jsonPaths(value: unknown, at: Path = []): Path[] {
  const here: Path[] = [at];
  if (typeof value !== 'object' || value === null) return here;
  for (const [k, v] of Object.entries(value))
    here.push(...jsonPaths(v, [...at, Array.isArray(value) ? Number(k) : k]));
  return here;
}

function mutateAt(
  root: unknown,
  path: Path,
  how: 'replace' | 'delete' | 'add',
  value: unknown,
  key: string,
): unknown {
  if (path.length === 0) return how === 'replace' ? value : root;
  let parent = root as Record<string | number, unknown>;
  for (const step of path.slice(0, -1)) parent = parent[step] as Record<string | number, unknown>;
  const last = path[path.length - 1] as string | number;
  if (how === 'replace') parent[last] = value;
  else if (how === 'delete') {
    if (Array.isArray(parent)) parent.splice(Number(last), 1);
    else delete parent[last];
  } else {
    const target = parent[last];
    if (typeof target === 'object' && target !== null && !Array.isArray(target))
      (target as Record<string, unknown>)[key] = value;
    else if (Array.isArray(target)) target.push(value);
    else parent[last] = value;
  }
  return root;
}

/** One fixed value of `arbitrary` (seeded, so every run mutates the same base document). */
export function sampleOf<T>(arbitrary: fc.Arbitrary<T>): T {
  const [value] = fc.sample(arbitrary, { numRuns: 1, seed: 16 });
  if (value === undefined) throw new Error('fast-check sampled nothing');
  return value;
}

/** Text with a few bytes changed: inserted, deleted or replaced at random places. */
export function mutatedText(base: string): fc.Arbitrary<string> {
  const edit = fc.tuple(
    fc.nat({ max: base.length }),
    fc.nat({ max: 8 }),
    fc.oneof(
      fc.string({ maxLength: 6 }),
      fc.string({ unit: 'binary', maxLength: 6 }),
      fc.constantFrom(':', '-', ' ', '\n', '"', '[', '{', '&a', '*a', '!!binary', '\t', '\u0000'),
    ),
  );
  return fc
    .array(edit, { minLength: 1, maxLength: 4 })
    .map((edits) =>
      edits.reduce((text, [at, drop, insert]) => text.slice(0, at) + insert + text.slice(at + drop), base),
    );
}
