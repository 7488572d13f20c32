/**
 * Config files (a ConfigMap anyone with write access may break): a valid config with one field made
 * wrong, a few bytes edited, or replaced by random bytes, is either loaded or refused with
 * CONFIG_INVALID — never another exception, so a broken reload keeps the last good config.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';

import { parseConfig } from '../../src/config/index.ts';
import {
  bulkyValue,
  compactHostileValue,
  DEEP_NESTING,
  expectCoded,
  mutatedJsonText,
  mutatedText,
  outcome,
  property,
  rawBytes,
} from './harness.ts';

const pem = (): string =>
  generateKeyPairSync('ec', { namedCurve: 'P-256' })
    .publicKey.export({ type: 'spki', format: 'pem' })
    .toString();

/** Every section, the way the README shows them. */
const BASE = {
  validators: [
    { name: 'deny', type: 'static', approve: false },
    { name: 'allow', type: 'static', approve: true },
    {
      name: 'team-cosign',
      type: 'cosign',
      trustRoots: [
        { name: 'release', key: pem() },
        {
          name: 'ci',
          keyless: {
            issuer: 'https://token.actions.githubusercontent.com',
            subjectRegex: '^https://github.com/acme/',
          },
        },
      ],
    },
    {
      name: 'dct',
      type: 'notaryv1',
      host: 'notary.acme.io:4443',
      trustRoots: [{ name: 'default', key: pem() }],
    },
  ],
  policy: [
    { pattern: '*:*', validator: 'deny' },
    { pattern: 'registry.acme.io/approved/*', validator: 'allow' },
    {
      pattern: 'registry.acme.io/approved/legacy:*',
      validator: 'allow',
      with: { mode: 'insecureValidateOnly' },
    },
    {
      pattern: 'registry.acme.io/team/*',
      validator: 'team-cosign',
      with: { trustRoot: '*', threshold: 2, required: ['ci'] },
    },
    { pattern: 'registry.acme.io/dct/*', validator: 'dct' },
  ],
  server: {
    host: '0.0.0.0',
    port: 8443,
    maxKeys: 1000,
    bodyLimitBytes: 1_048_576,
    requestDeadlineMs: 2500,
    drainSeconds: 10,
  },
  registries: [
    {
      host: 'registry.acme.io:5000',
      insecure: false,
      auth: { username: 'puller', password: 'pull-secret-0123456789' },
    },
    {
      host: '*.dkr.ecr.eu-west-1.amazonaws.com',
      auth: { secret: { namespace: 'provenant', name: 'ecr-pull' } },
    },
    { host: 'docker.io', mirror: 'mirror.local:5000/dockerhub' },
    { host: 'mirror.local:5000' },
  ],
  network: {
    requestTimeoutMs: 2000,
    maxRetries: 2,
    maxManifestBytes: 4_194_304,
    egress: { allowUnlistedRegistries: false },
  },
  cache: { ttlSeconds: 30, negativeTtlSeconds: 5, maxEntries: 10_000 },
  log: { level: 'info' },
};
const BASE_YAML = stringify(BASE);
// Relative paths a mutation writes (key files, CA files) resolve into an empty directory.
const BASE_DIR = mkdtempSync(join(tmpdir(), 'provenant-fuzz-config-'));

// Regressions a past run found: ajv applies the validators' `discriminator` to objects only, so a
// validator that was an array, a string or null passed the schema and crashed the cross-field checks
// (a TypeError instead of CONFIG_INVALID).
const NOT_OBJECT_VALIDATORS = [[], 'static', null, 5].map((v) =>
  JSON.stringify({ ...BASE, validators: [BASE.validators[0], v] }),
);
// And a long run found a server section that is null crashing the server cross-field check. A
// 5 000-deep flow sequence aborted the process (V8 "RegExpCompiler Allocation failed", a stack overflow
// inside yaml's composer): such nesting is now refused before composing (the deep nesting property).
const NULL_SECTIONS = ['server', 'cache', 'sigstore', 'network', 'registries', 'log'].map((section) =>
  JSON.stringify({ ...BASE, [section]: null }),
);

/**
 * yaml takes about half a second for 20 000 levels of nesting or 3000-element arrays when idle, and
 * several times that on a loaded machine: loading a config is off the admission path, so what matters
 * for those inputs is that it ends.
 */
const BULKY_LIMIT_MS = 15_000;

function load(text: string, limitMs?: number): void {
  const result = outcome(() => parseConfig(text, 'fuzz.yaml', BASE_DIR), limitMs);
  if (result.ok) expect(Object.isFrozen(result.value)).toBe(true);
  else expectCoded(result.error, ['CONFIG_INVALID']);
}

describe('config files (parseConfig)', () => {
  it('loads the base config, as YAML and as JSON', () => {
    for (const text of [BASE_YAML, JSON.stringify(BASE)])
      expect(() => parseConfig(text, 'fuzz.yaml', BASE_DIR)).not.toThrow();
  });

  property(
    'a config with one field replaced, deleted or added (as JSON, which is YAML) loads or is CONFIG_INVALID',
    'parseConfig (structured mutations)',
    // Bulky values (wide arrays, long strings, deep nesting) cost yaml 10 to 300 ms each: they have
    // the properties below, so that this one covers many more mutations in the same time.
    mutatedJsonText(BASE, { values: compactHostileValue, deepOdds: 0 }),
    load,
    { runs: 250, examples: [...NOT_OBJECT_VALIDATORS, ...NULL_SECTIONS] },
  );

  property(
    'a config with one field made bulky (1000–3000 elements, 280 000 characters, nested 20 000 deep) loads or is CONFIG_INVALID',
    'parseConfig (bulky mutations)',
    mutatedJsonText(BASE, { values: bulkyValue, deepOdds: 1 }),
    (text) => load(text, BULKY_LIMIT_MS),
    { runs: 20 },
  );

  property(
    'a config with a few bytes edited, or random bytes, loads or is CONFIG_INVALID',
    'parseConfig (text mutations)',
    fc.oneof(
      mutatedText(BASE_YAML),
      rawBytes.map((b) => b.toString('utf8')),
    ),
    load,
    { runs: 500 },
  );

  property(
    'YAML aliases, anchors and tags load or are CONFIG_INVALID',
    'parseConfig (YAML features)',
    fc.oneof(
      fc
        .integer({ min: 1, max: 200 })
        .map((n) => `a: &a [x]\nb: [${Array.from({ length: n }, () => '*a').join(', ')}]\n${BASE_YAML}`),
      fc
        .constantFrom('!!binary', '!!js/function', '!!set', '!!omap', '!custom', '<<: *x', '%YAML 1.1\n---')
        .map((tag) => `${tag} x\n${BASE_YAML}`),
    ),
    load,
    { runs: 100 },
  );

  property(
    'YAML collections nested up to 20 000 deep, in flow or block style, are CONFIG_INVALID',
    'parseConfig (deep nesting)',
    fc
      .tuple(fc.integer({ min: 1, max: DEEP_NESTING }), fc.constantFrom('[', '{a: ', '- '))
      .map(([depth, open]) => nestedYaml(depth, open)),
    (text) => {
      const result = outcome(() => parseConfig(text, 'fuzz.yaml', BASE_DIR), BULKY_LIMIT_MS);
      expect(result.ok).toBe(false);
      if (!result.ok) expectCoded(result.error, ['CONFIG_INVALID']);
    },
    // Depth and style are all there is to vary: a long run stops at 2000 of the 60 000 inputs.
    { runs: 10, maxRuns: 2000, examples: [nestedYaml(5000, '['), nestedYaml(DEEP_NESTING, '- ')] },
  );
});

/** `validators:` holding collections nested `depth` deep, opened by `open` (flow or block). */
function nestedYaml(depth: number, open: '[' | '{a: ' | '- '): string {
  if (open === '- ') return `validators:\n  ${open.repeat(depth)}x\n`;
  const close = open === '[' ? ']' : '}';
  return `validators: ${open.repeat(depth)}${open === '[' ? '' : '1'}${close.repeat(depth)}\n`;
}
