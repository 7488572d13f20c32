/**
 * Notary v1 TUF metadata (root, timestamp, snapshot, targets and delegations), as any Notary server a
 * config names may serve it: whatever the bytes, verification ends in a trusted repository or a coded
 * NOTARY_* error; the parsers below it throw only the errors the verifier maps to NOTARY_BAD_METADATA.
 */
import fc from 'fast-check';
import { describe, expect } from 'vitest';

import { CanonicalJsonError, canonicalJson } from '../../src/trust/notaryv1/canonical.ts';
import { KeyFormatError, parseTufKey } from '../../src/trust/notaryv1/keys.ts';
import {
  MetadataFormatError,
  parseEnvelope,
  parseRoot,
  parseSnapshot,
  parseTargets,
  parseTimestamp,
} from '../../src/trust/notaryv1/metadata.ts';
import { verifyTrustData } from '../../src/trust/notaryv1/verify.ts';
import { VersionMemory } from '../../src/trust/notaryv1/versions.ts';
import { ERROR_CODES, type ErrorCode } from '../../src/types/errors.ts';
import { envelope, hex, sourceOf, TestRepo } from '../trust/notaryv1/repo.ts';
import {
  asyncOutcome,
  DEEP_NESTING,
  expectCoded,
  expectOneOf,
  hostileJsonText,
  mutatedJson,
  mutatedJsonText,
  nestedJsonText,
  outcome,
  property,
  rawBytes,
} from './harness.ts';

const GUN = 'registry.example/team/app';
const NOTARY_CODES = Object.keys(ERROR_CODES).filter((c) => c.startsWith('NOTARY_')) as ErrorCode[];

const repo = new TestRepo();
repo.targets = { v1: hex('a'), v2: hex('b') };
repo.delegations.set('targets/releases', {
  keys: [repo.targetsKey],
  threshold: 1,
  paths: [''],
  targets: { v1: hex('a') },
});
const published = repo.publish();

function signedOf(role: string): Record<string, unknown> {
  const name = [...published.keys()].find((n) => n === role || n.startsWith(`${role}.`)) ?? role;
  return (
    JSON.parse((published.get(name) ?? Buffer.from('{}')).toString('utf8')) as {
      signed: Record<string, unknown>;
    }
  ).signed;
}

const ROLES = [
  { role: 'root', type: 'Root', signed: signedOf('root'), parse: parseRoot },
  { role: 'timestamp', type: 'Timestamp', signed: signedOf('timestamp'), parse: parseTimestamp },
  { role: 'snapshot', type: 'Snapshot', signed: signedOf('snapshot'), parse: parseSnapshot },
  {
    role: 'targets',
    type: 'Targets',
    signed: signedOf('targets'),
    parse: (s: Record<string, unknown>) => parseTargets(s, 'targets'),
  },
  {
    role: 'targets/releases',
    type: 'Targets',
    signed: signedOf('targets/releases'),
    parse: (s: Record<string, unknown>) => parseTargets(s, 'targets/releases'),
  },
] as const;

const anyRole = fc.constantFrom(...ROLES);

/** An envelope as bytes: raw, hostile JSON, or a real role's envelope with one field made wrong. */
const hostileEnvelope = fc.oneof(
  fc.tuple(anyRole, rawBytes),
  fc.tuple(
    anyRole,
    hostileJsonText.map((t) => Buffer.from(t)),
  ),
  anyRole.chain((r) =>
    fc.tuple(
      fc.constant(r),
      mutatedJsonText({ signed: r.signed, signatures: [{ keyid: 'k', method: 'ecdsa', sig: 'AAAA' }] }).map(
        (t) => Buffer.from(t),
      ),
    ),
  ),
);

/** What the verifier's guard maps to NOTARY_BAD_METADATA (verify.ts `guard`). */
const MAPPED = [MetadataFormatError, KeyFormatError, CanonicalJsonError] as const;

// Regressions a past run found: messages quoted the offending value with JSON.stringify, and the
// canonical encoder recursed, so deeply nested metadata overflowed the stack (a RangeError that the
// verifier does not map to a code).
const DEEP_SIGNED = Buffer.from(`{"signed":${nestedJsonText(DEEP_NESTING)},"signatures":[]}`);
const DEEP_VERSION = Buffer.from(
  JSON.stringify({ signed: { ...ROLES[1].signed, version: '\u0000' }, signatures: [] }).replace(
    '"\\u0000"',
    nestedJsonText(DEEP_NESTING),
  ),
);

describe('Notary v1 TUF metadata', () => {
  property(
    'any envelope parses, keys and canonicalises, or throws only what the verifier maps to NOTARY_BAD_METADATA',
    'notaryv1 metadata parsers',
    hostileEnvelope,
    ([r, bytes]) => {
      const result = outcome(() => {
        const env = parseEnvelope(bytes, r.role, r.type);
        canonicalJson(env.signedRaw);
        const meta = r.parse(env.signed);
        const keys = 'keys' in meta ? meta.keys : 'delegationKeys' in meta ? meta.delegationKeys : {};
        for (const [id, key] of Object.entries(keys)) parseTufKey(id, key);
        return meta;
      });
      if (!result.ok) expectOneOf(result.error, MAPPED);
    },
    {
      runs: 500,
      examples: [
        [ROLES[0], DEEP_SIGNED],
        [ROLES[1], DEEP_VERSION],
      ],
    },
  );

  property(
    'canonical JSON of any value is its bytes or a CanonicalJsonError',
    'notaryv1 canonicalJson',
    hostileJsonText.map((t): unknown => JSON.parse(t)),
    (value) => {
      const result = outcome(() => canonicalJson(value));
      if (!result.ok) expectOneOf(result.error, [CanonicalJsonError]);
      else expect(Buffer.isBuffer(result.value)).toBe(true);
    },
    { runs: 200, examples: [JSON.parse(nestedJsonText(DEEP_NESTING))] },
  );

  property(
    'a hostile root or timestamp (signed or not) ends the verification in a NOTARY_* error, never another exception',
    'notaryv1 verifyTrustData',
    fc.tuple(
      fc.constantFrom('root', 'timestamp'),
      fc.oneof(
        rawBytes,
        hostileJsonText.map((t) => Buffer.from(t)),
        fc.constantFrom(0, 1).chain((i) =>
          mutatedJson(ROLES[i].signed)
            // Only what a signer could sign: Notary's canonical form has no floating-point numbers.
            .filter((signed) => outcome(() => canonicalJson(signed)).ok)
            .map((signed) => envelope(signed as object, i === 0 ? [repo.root] : [repo.timestampKey])),
        ),
      ),
    ),
    async ([role, bytes]) => {
      const files = new Map(published);
      files.set(role, bytes);
      const result = await asyncOutcome(() =>
        verifyTrustData({
          gun: GUN,
          image: `${GUN}:v1`,
          pinned: [{ name: 'default', key: repo.root.publicKey }],
          requiredDelegations: [],
          source: sourceOf(files),
          now: new Date(),
          versions: new VersionMemory(),
          scope: `https://notary.example ${GUN}`,
        }),
      );
      if (!result.ok) expectCoded(result.error, NOTARY_CODES);
      else expect(result.value.accepted).toEqual(['targets/releases']);
    },
    { runs: 400, examples: [['root', DEEP_SIGNED] as const, ['timestamp', DEEP_VERSION] as const] },
  );
});
