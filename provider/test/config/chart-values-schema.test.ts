/**
 * The Helm chart's values.schema.json and files/ are generated (test/tools/gen-chart.ts) from the
 * config schema and the repository's gatekeeper/ and policies/kyverno/ folders: they must not drift,
 * and the chart's own defaults must pass the schema.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CHART_DIR, ROOT, outOfDate, valuesSchema } from '../../../test/tools/gen-chart.ts';

describe('the Helm chart values schema', () => {
  it('and the chart files match what test/tools/gen-chart.ts generates', async () => {
    expect(await outOfDate(), 'run npx tsx test/tools/gen-chart.ts').toEqual([]);
  });

  const validate = new Ajv({ strict: false, allErrors: true }).compile(valuesSchema());
  const defaults = parse(readFileSync(path.join(ROOT, CHART_DIR, 'values.yaml'), 'utf8')) as Record<
    string,
    unknown
  >;

  it("accepts the chart's own values.yaml", () => {
    expect(validate(defaults), JSON.stringify(validate.errors)).toBe(true);
  });

  it('refuses what Provenant would refuse: a negative TTL, an unknown validator type', () => {
    expect(validate({ ...defaults, cache: { ttlSeconds: -1 } })).toBe(false);
    expect(validate({ ...defaults, validators: [{ name: 'x', type: 'gpg' }] })).toBe(false);
  });

  it('refuses secrets that would land in the ConfigMap: inline registry passwords, a Redis URL with a password', () => {
    const inline = { host: 'r.test', auth: { username: 'u', password: 'p' } };
    expect(validate({ ...defaults, registries: [inline] })).toBe(false);
    expect(validate({ ...defaults, cache: { hmacKey: 'x'.repeat(40) } })).toBe(false);
    expect(validate({ ...defaults, redis: { external: { url: 'redis://:secret@redis:6379' } } })).toBe(false);
    expect(validate({ ...defaults, redis: { external: { url: 'redis://redis:6379/1' } } })).toBe(true);
  });
});
