/**
 * `node dist/config/precompile.js` (the last step of `npm run build`): writes ajv's standalone code for
 * the config schema over dist/config/schema-validator.js, so a compiled start loads a plain function
 * instead of typebox and ajv's compiler (ajv.js.org/standalone.html).
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import standalone from 'ajv/dist/standalone/index.js';
import { CONFIG_SCHEMA_KEY, compileConfigValidator } from './schema-validator.ts';

/** The ES module source of the precompiled validator: exports `validateConfigSchema`. */
export function precompiledValidatorSource(): string {
  const { ajv } = compileConfigValidator(true);
  const code = standalone.default(ajv, { [CONFIG_SCHEMA_KEY]: CONFIG_SCHEMA_KEY });
  // ajv's ESM output still `require`s its runtime helpers (ucs2length, equal); give it a require.
  return `import { createRequire } from 'node:module';\nconst require = createRequire(import.meta.url);\n${code}`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(new URL('./schema-validator.js', import.meta.url), precompiledValidatorSource());
}
