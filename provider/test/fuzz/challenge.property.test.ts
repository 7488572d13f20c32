/**
 * `WWW-Authenticate` challenges (RFC 7235 §4.1) come from any registry a key names: any header is a
 * challenge or undefined, never a throw or a hang; a challenge written with quoted-string parameters
 * parses back to its scheme and parameters.
 */
import fc from 'fast-check';
import { describe, expect } from 'vitest';

import { parseChallenge } from '../../src/registry/challenge.ts';
import { hostileString, property, timed } from './harness.ts';

const scheme = fc.string({ unit: fc.constantFrom(...'abcBEARerBasic'), minLength: 1, maxLength: 10 });
const paramName = fc.string({ unit: fc.constantFrom(...'abcdefxyzRSTU019_-'), minLength: 1, maxLength: 10 });
const paramValue = fc.oneof(
  fc.string(),
  fc.string({ unit: fc.constantFrom('"', '\\', ',', '=', ' ', 'a', 'é') }),
  fc.webUrl(),
);
const params = fc.uniqueArray(fc.tuple(paramName, paramValue), {
  maxLength: 5,
  selector: ([name]) => name.toLowerCase(),
});

// RFC 7230 §3.2.6 quoted-string: '"' and '\' are escaped with '\'.
const quoted = (value: string): string => `"${value.replace(/["\\]/g, (c) => `\\${c}`)}"`;

/** Headers close to real ones: scheme, then parameters glued with hostile separators. */
const nearChallenge = fc
  .tuple(
    scheme,
    fc.array(
      fc.oneof(
        fc.tuple(paramName, paramValue).map(([n, v]) => `${n}=${quoted(v)}`),
        fc.tuple(paramName, fc.string({ maxLength: 8 })).map(([n, v]) => `${n}=${v}`),
        fc.constantFrom(',', ' ', '=', '"', '\\', '="', 'a="\\', ',,', '\t'),
        hostileString.map((s) => s.slice(0, 64)),
      ),
      { maxLength: 10 },
    ),
  )
  .map(([s, parts]) => `${s} ${parts.join('')}`);

/** Long runs of what a backtracking parser would choke on. */
const pathological = fc
  .tuple(fc.constantFrom('a="', 'a=', ' a =', '\\"', 'a="\\', ',', ' '), fc.integer({ min: 1, max: 50_000 }))
  .map(([piece, n]) => `Bearer ${piece.repeat(n)}`);

describe('WWW-Authenticate challenges (parseChallenge)', () => {
  property(
    'any header is a challenge with a lowercase scheme and string parameters, or undefined',
    'parseChallenge',
    fc.oneof(hostileString, nearChallenge, pathological),
    (header) => {
      const challenge = timed(() => parseChallenge(header));
      if (challenge === undefined) return;
      expect(challenge.scheme).toMatch(/^[a-z]+$/);
      for (const value of Object.values(challenge.params)) expect(typeof value).toBe('string');
    },
    { runs: 2000 },
  );

  property(
    'a challenge with quoted parameters parses back to its scheme and parameters',
    'parseChallenge (round trip)',
    fc.tuple(scheme, params, fc.constantFrom(',', ', ', ' , ')),
    ([s, ps, separator]) => {
      const header = [s, ps.map(([n, v]) => `${n}=${quoted(v)}`).join(separator)].join(' ');
      expect(parseChallenge(header)).toEqual({
        scheme: s.toLowerCase(),
        params: Object.fromEntries(ps.map(([n, v]) => [n.toLowerCase(), v])),
      });
    },
    { runs: 2000 },
  );
});
