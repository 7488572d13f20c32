/**
 * Image references (the keys every ProviderRequest carries): any input is a REFERENCE_INVALID or a
 * reference whose normalised form parses back to itself; references built from the distribution
 * grammar parse to their parts, and parse → print → parse is the identity.
 */
import fc from 'fast-check';
import { describe, expect } from 'vitest';

import {
  normalizedPinned,
  parseReference,
  pinnedReference,
  type ImageReference,
} from '../../src/reference/index.ts';
import { expectCoded, hostileJson, hostileString, outcome, property } from './harness.ts';

const alnum = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789');
const lowerWord = fc.string({ unit: alnum, minLength: 1, maxLength: 8 });
const separator = fc.constantFrom('.', '_', '__', '-', '--');
/** distribution/reference path-component: lowercase alphanumerics joined by separators. */
const pathComponent = fc
  .tuple(lowerWord, fc.array(fc.tuple(separator, lowerWord), { maxLength: 2 }))
  .map(([head, rest]) => head + rest.map(([s, w]) => s + w).join(''));
const label = fc
  .tuple(
    fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'),
    fc.string({ unit: fc.constantFrom(...'abcXYZ019-'), maxLength: 6 }),
    fc.constantFrom(...'aZ9'),
  )
  .map(([first, middle, last]) => first + middle + last);
const port = fc.integer({ min: 1, max: 65_535 }).filter((p) => p !== 80 && p !== 443);
const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((o) => o.join('.'));
/** A registry part that the reference grammar recognises as one: it holds a '.' or a ':'. */
const registry = fc.oneof(
  fc
    .tuple(fc.array(label, { minLength: 2, maxLength: 3 }), fc.option(port, { nil: undefined }))
    .map(([labels, p]) => labels.join('.') + (p === undefined ? '' : `:${p}`)),
  fc.tuple(label, port).map(([l, p]) => `${l}:${p}`),
  fc.tuple(ipv4, fc.option(port, { nil: undefined })).map(([ip, p]) => ip + (p === undefined ? '' : `:${p}`)),
  fc.constantFrom(
    'docker.io',
    'index.docker.io',
    'registry-1.docker.io',
    'Docker.IO',
    '[::1]:5000',
    '[2001:db8::1]',
  ),
);
const tag = fc
  .tuple(fc.constantFrom(...'aZ0_'), fc.string({ unit: fc.constantFrom(...'azAZ09._-'), maxLength: 20 }))
  .map(([first, rest]) => first + rest);
const hex = (length: number): fc.Arbitrary<string> =>
  fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: length, maxLength: length });
const digest = fc.oneof(
  hex(64).map((h) => `sha256:${h}`),
  hex(128).map((h) => `sha512:${h}`),
);

interface Parts {
  readonly registry: string | undefined;
  readonly path: readonly string[];
  readonly tag: string | undefined;
  readonly digest: string | undefined;
}

const validParts: fc.Arbitrary<Parts> = fc
  .record({
    registry: fc.option(registry, { nil: undefined }),
    path: fc.array(pathComponent, { minLength: 1, maxLength: 4 }),
    tag: fc.option(tag, { nil: undefined }),
    digest: fc.option(digest, { nil: undefined }),
  })
  // Without a registry, a first component holding a '.' would be read as one (reference.ts).
  .filter(
    (parts) => parts.registry !== undefined || parts.path.length === 1 || !parts.path[0]?.includes('.'),
  );

function print(parts: Parts): string {
  return (
    (parts.registry === undefined ? '' : `${parts.registry}/`) +
    parts.path.join('/') +
    (parts.tag === undefined ? '' : `:${parts.tag}`) +
    (parts.digest === undefined ? '' : `@${parts.digest}`)
  );
}

const DOCKER_HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

function expectedRegistry(parts: Parts): string {
  const lowered = parts.registry?.toLowerCase() ?? 'docker.io';
  return DOCKER_HUB_ALIASES.has(lowered) ? 'docker.io' : lowered;
}

/** The round trip every parsed reference must satisfy, whatever input it came from. */
function expectStableNormalForm(ref: ImageReference): void {
  const again = parseReference(ref.normalized);
  expect(again.normalized).toBe(ref.normalized);
  expect([again.registry, again.repository, again.tag, again.digest]).toEqual([
    ref.registry,
    ref.repository,
    ref.tag,
    ref.digest,
  ]);
}

/** Strings close to references: pieces of the grammar glued with hostile ones. */
const nearReference = fc
  .array(
    fc.oneof(
      registry,
      pathComponent,
      tag,
      digest,
      fc.constantFrom(
        '/',
        ':',
        '@',
        '//',
        '[',
        ']',
        '%',
        'sha256:',
        '0x7f.1',
        '127.1',
        ':0',
        ':080',
        ':443',
        'HTTP://',
        '\u0000',
        ' ',
        'É',
      ),
      hostileString.map((s) => s.slice(0, 16)),
    ),
    { minLength: 1, maxLength: 8 },
  )
  .map((pieces) => pieces.join(''));

// A regression a long run found: 238 characters as written, 256 once normalised (docker.io/library/),
// so the normal form did not parse again.
const LONG_ONCE_NORMALISED = '0'.repeat(238);

describe('image references (parseReference)', () => {
  property(
    'any string is a REFERENCE_INVALID or a reference whose normal form parses back to itself',
    'parseReference',
    fc.oneof(hostileString, nearReference),
    (input) => {
      const result = outcome(() => parseReference(input));
      if (result.ok) expectStableNormalForm(result.value);
      else expectCoded(result.error, ['REFERENCE_INVALID']);
    },
    { runs: 3000, examples: [LONG_ONCE_NORMALISED] },
  );

  property(
    'a key of any JSON type is a REFERENCE_INVALID, never a crash',
    'parseReference (untyped keys)',
    hostileJson.filter((v) => typeof v !== 'string'),
    (input) => {
      const result = outcome(() => parseReference(input as string));
      expect(result.ok).toBe(false);
      if (!result.ok) expectCoded(result.error, ['REFERENCE_INVALID']);
    },
    { runs: 300 },
  );

  property(
    'a reference built from the grammar parses to its parts, and parse → print → parse is the identity',
    'parseReference (round trip)',
    validParts,
    (parts) => {
      const ref = parseReference(print(parts));
      const hub = expectedRegistry(parts) === 'docker.io';
      expect(ref.registry).toBe(expectedRegistry(parts));
      expect(ref.repository).toBe((hub && parts.path.length === 1 ? 'library/' : '') + parts.path.join('/'));
      expect(ref.tag).toBe(parts.tag ?? (parts.digest === undefined ? 'latest' : undefined));
      expect(ref.digest).toBe(parts.digest);
      expect(ref.hadTag).toBe(parts.tag !== undefined);
      expectStableNormalForm(ref);
    },
    { runs: 3000 },
  );

  property(
    'pinning keeps the spelling and the parts, and only the digest changes',
    'pinnedReference',
    fc.tuple(validParts, digest),
    ([parts, pin]) => {
      const ref = parseReference(print(parts));
      const pinned = parseReference(pinnedReference(ref, pin));
      expect([pinned.registry, pinned.repository, pinned.digest]).toEqual([
        ref.registry,
        ref.repository,
        pin,
      ]);
      expect(pinned.hadTag).toBe(ref.hadTag);
      expect(parseReference(normalizedPinned(ref, pin)).normalized).toBe(normalizedPinned(ref, pin));
    },
    { runs: 1000 },
  );

  property(
    'pinning to anything but a digest is a REFERENCE_INVALID',
    'pinnedReference (bad digests)',
    fc.tuple(
      validParts,
      fc.oneof(
        hostileString,
        digest.map((d) => d.toUpperCase()),
        digest.map((d) => `${d}0`),
      ),
    ),
    ([parts, pin]) => {
      const ref = parseReference(print(parts));
      const result = outcome(() => pinnedReference(ref, pin));
      if (result.ok) expect(result.value.endsWith(`@${pin}`)).toBe(true);
      else expectCoded(result.error, ['REFERENCE_INVALID']);
    },
    { runs: 500 },
  );
});
