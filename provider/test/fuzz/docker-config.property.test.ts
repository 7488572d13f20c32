/**
 * Docker `config.json` / `.dockerconfigjson` (a file or a Kubernetes Secret, either possibly written by
 * someone else): any text is a DockerConfig or a plain Error saying what is wrong, which the credential
 * sources turn into REGISTRY_CREDENTIALS_UNAVAILABLE; no message ever carries a secret; and the
 * credentials written are the credentials read.
 */
import fc from 'fast-check';
import { describe, expect } from 'vitest';

import { parseDockerConfig, registryKey } from '../../src/registry/credentials/docker-config.ts';
import {
  DEEP_NESTING,
  expectOneOf,
  hostileJsonText,
  nestedJsonText,
  mutatedJsonText,
  outcome,
  property,
  rawBytes,
  sampleOf,
} from './harness.ts';

// Secrets are long and distinctive enough that finding one in a message cannot be a coincidence.
const secret = fc.string({
  unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'),
  minLength: 24,
  maxLength: 32,
});
const user = fc.string({ unit: fc.constantFrom(...'abcxyz_-.'), minLength: 1, maxLength: 10 });
const host = fc.constantFrom(
  'registry.example',
  'https://index.docker.io/v1/',
  'https://R.Example:5000/',
  'registry-1.docker.io',
  'quay.io',
  'http://127.0.0.1:5000/v2/',
);

const entry = fc.oneof(
  fc.tuple(user, secret).map(([u, p]) => ({
    creds: { username: u, password: p },
    json: { auth: Buffer.from(`${u}:${p}`).toString('base64') },
  })),
  fc
    .tuple(user, secret)
    .map(([u, p]) => ({ creds: { username: u, password: p }, json: { username: u, password: p } })),
);
const config = fc.uniqueArray(fc.tuple(host, entry), { maxLength: 4, selector: ([h]) => registryKey(h) });

function configJson(entries: readonly (readonly [string, { json: object }])[]): Record<string, unknown> {
  return {
    auths: Object.fromEntries(entries.map(([h, e]) => [h, e.json])),
    credHelpers: { 'gcr.io': 'gcloud' },
    credsStore: 'desktop',
  };
}

const SAMPLE = sampleOf(config.filter((c) => c.length >= 2));
const SAMPLE_SECRETS = SAMPLE.map(([, e]) => e.creds.password);

// A regression a past run found: the message quoted a bad credHelpers value with JSON.stringify, which
// overflows the stack on deeply nested JSON (a RangeError instead of the parser's own Error).
const DEEP_HELPER = `{"credHelpers":{"gcr.io":${nestedJsonText(DEEP_NESTING)}}}`;

describe('Docker config.json (parseDockerConfig)', () => {
  property(
    'any text is a config or a plain Error, and no message carries a password',
    'parseDockerConfig',
    fc.oneof(
      rawBytes.map((b) => b.toString('utf8')),
      hostileJsonText,
      mutatedJsonText(configJson(SAMPLE)),
    ),
    (text) => {
      const result = outcome(() => parseDockerConfig(text));
      if (result.ok) return;
      expectOneOf(result.error, [Error]);
      for (const s of SAMPLE_SECRETS) expect((result.error as Error).message).not.toContain(s);
    },
    { runs: 1000, examples: [DEEP_HELPER] },
  );

  property(
    'the credentials written for each registry are the credentials read for it',
    'parseDockerConfig (round trip)',
    config,
    (entries) => {
      const parsed = parseDockerConfig(JSON.stringify(configJson(entries)));
      expect(new Map(parsed.auths)).toEqual(new Map(entries.map(([h, e]) => [registryKey(h), e.creds])));
      expect(parsed.credHelpers.get('gcr.io')).toBe('gcloud');
      expect(parsed.credsStore).toBe('desktop');
    },
    { runs: 500 },
  );
});
