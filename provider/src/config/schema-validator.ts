/**
 * The config schema's validator: ajv, compiled from ConfigSchema with defaults filled in, every error
 * reported, and each error's parent schema kept (problems.ts names the allowed fields from it).
 *
 * Compiling it takes a quarter of a second and loads @sinclair/typebox's hundreds of modules, at every
 * start. `npm run build` therefore replaces this module in dist/ with ajv's standalone code for the same
 * schema and options (precompile.ts), which exports the same `validateConfigSchema`.
 */
import { Ajv, type ValidateFunction } from 'ajv';
import { ConfigSchema, type Config } from './schema.ts';

/** The key the schema is registered under (the name ajv's standalone output exports it by). */
export const CONFIG_SCHEMA_KEY = 'validateConfigSchema';

/** Compiles the validator; `source` keeps the generated code for ajv's standalone output. */
export function compileConfigValidator(source = false): { ajv: Ajv; validate: ValidateFunction<Config> } {
  // `verbose` gives errors their parent schema (the allowed fields); problems.ts never prints their data.
  const ajv = new Ajv({
    allErrors: true,
    useDefaults: true,
    discriminator: true,
    strict: false,
    verbose: true,
    code: { source, esm: true },
  });
  const validate = ajv.addSchema(ConfigSchema, CONFIG_SCHEMA_KEY).getSchema<Config>(CONFIG_SCHEMA_KEY);
  if (validate === undefined) throw new Error('the config schema did not compile');
  return { ajv, validate };
}

export const validateConfigSchema: ValidateFunction<Config> = compileConfigValidator().validate;
