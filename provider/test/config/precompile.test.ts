import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { ValidateFunction } from 'ajv';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EMBEDDED_CONFIG_YAML } from '../../src/config/embedded.ts';
import { precompiledValidatorSource } from '../../src/config/precompile.ts';
import { compileConfigValidator } from '../../src/config/schema-validator.ts';

const REPO = fileURLToPath(new URL('../../..', import.meta.url));

const CONFIGS: Record<string, string> = {
  'the embedded default config': EMBEDDED_CONFIG_YAML,
  'a cosign validator with a rule option': `
validators: [{ name: signed, type: cosign, trustRoots: [{ name: default, key: KEY }] }]
policy: [{ pattern: "*:*", validator: signed, with: { verifyInTransparencyLog: false } }]`,
  'unknown fields and wrong types': `
validators: [{ name: x, type: cosign }, { name: y, type: nope }]
policy: []
server: { port: "8443", tls: { cert: 1 } }
features: {}`,
  'an empty document': '{}',
};

describe('the precompiled config validator (npm run build)', () => {
  let dir: string;
  let precompiled: ValidateFunction;
  const compiled = compileConfigValidator().validate;

  beforeAll(async () => {
    // Inside the repository, so the generated module resolves ajv's runtime helpers as dist/ does.
    mkdirSync(path.join(REPO, '.provenant-dev'), { recursive: true });
    dir = mkdtempSync(path.join(REPO, '.provenant-dev', 'precompile-'));
    const file = path.join(dir, 'schema-validator.js');
    writeFileSync(file, precompiledValidatorSource());
    ({ validateConfigSchema: precompiled } = (await import(pathToFileURL(file).href)) as {
      validateConfigSchema: ValidateFunction;
    });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each(Object.entries(CONFIGS))(
    'decides, defaults and reports %s as the compiled schema does',
    (_, yaml) => {
      const [a, b] = [parse(yaml) as unknown, parse(yaml) as unknown];
      expect(precompiled(a)).toBe(compiled(b));
      expect(a).toEqual(b);
      // As JSON: the compiled schema's objects also carry TypeBox's symbol keys, which ajv never reads.
      expect(JSON.stringify(precompiled.errors ?? null)).toBe(JSON.stringify(compiled.errors ?? null));
    },
  );
});
