/**
 * Loading turns YAML text into a frozen, fully defaulted Config, or a CONFIG_INVALID error that lists
 * every bad field path at once (schema problems and cross-field problems together).
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { parseDocument } from 'yaml';
import { ProvenantError } from '../types/errors.ts';
import { ConfigSchema, type Config } from './schema.ts';
import { inlineKeyFiles } from './key-files.ts';
import { semanticProblems } from './semantics.ts';

const ajv = new Ajv({ allErrors: true, useDefaults: true, discriminator: true, strict: false });
const validateSchema = ajv.compile<Config>(ConfigSchema);

export interface LoadedConfig {
  readonly config: Config;
  /** Where it came from: a file path, or 'embedded default'. */
  readonly source: string;
}

export function loadConfigFile(path: string): LoadedConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ProvenantError('CONFIG_UNREADABLE', `cannot read config file ${path}: ${String(err)}`, {
      cause: err,
    });
  }
  return { config: parseConfig(text, path, dirname(resolve(path))), source: resolve(path) };
}

/** Parses, validates, defaults and freezes. `baseDir` anchors relative file paths (TLS, CA files). */
export function parseConfig(text: string, source: string, baseDir: string): Config {
  const raw = parseYaml(text, source);
  const problems = schemaProblems(raw);
  // Cross-field checks need well-formed validators and rules; any other section may still be broken,
  // and its problems are reported together with these. An unknown top-level field (say, Connaisseur's
  // `alerting:`) leaves both lists intact, so it must not hide their problems.
  const shapeBroken = problems.some(
    (p) =>
      p.startsWith('/validators') ||
      p.startsWith('/policy') ||
      (p.startsWith('/:') && !p.startsWith('/: unknown field')),
  );
  if (!shapeBroken) problems.push(...inlineKeyFiles(raw, baseDir), ...semanticProblems(raw as Config));
  if (problems.length > 0) {
    const list = problems.map((p) => `  - ${p}`).join('\n');
    throw new ProvenantError(
      'CONFIG_INVALID',
      `config ${source} is invalid (${problems.length} problem${problems.length > 1 ? 's' : ''}):\n${list}`,
    );
  }
  return deepFreeze(resolvePaths(raw as Config, baseDir));
}

function parseYaml(text: string, source: string): unknown {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const list = doc.errors.map((e) => `  - ${e.message}`).join('\n');
    throw new ProvenantError('CONFIG_INVALID', `config ${source} is not valid YAML:\n${list}`);
  }
  const value: unknown = doc.toJS({ maxAliasCount: 100 });
  return value ?? {};
}

function schemaProblems(raw: unknown): string[] {
  if (validateSchema(raw)) return [];
  const errors = validateSchema.errors ?? [];
  // A field with a fixed set of values fails one `const` per value plus an `anyOf`: say it once.
  const allowed = new Map<string, string[]>();
  for (const e of errors) {
    if (e.keyword === 'const')
      allowed.set(e.instancePath, [...(allowed.get(e.instancePath) ?? []), String(e.params['allowedValue'])]);
  }
  const enumProblems = [...allowed].map(
    ([path, values]) => `${path || '/'}: must be one of ${values.join(', ')}`,
  );
  const others = errors.filter(
    (e) => !(allowed.has(e.instancePath) && (e.keyword === 'const' || e.keyword === 'anyOf')),
  );
  return [...new Set([...others.map(describeSchemaError), ...enumProblems])];
}

function describeSchemaError(e: ErrorObject): string {
  const path = e.instancePath === '' ? '/' : e.instancePath;
  switch (e.keyword) {
    case 'additionalProperties':
      return `${path}: unknown field "${String(e.params['additionalProperty'])}"`;
    case 'required':
      return `${path}: missing required field "${String(e.params['missingProperty'])}"`;
    case 'discriminator':
      return `${path}/type: must be one of static, cosign, notaryv1, notation`;
    default:
      return `${path}: ${e.message ?? e.keyword}`;
  }
}

// File paths in the config are relative to the config file, as users expect from a mounted ConfigMap.
function resolvePaths(config: Config, baseDir: string): Config {
  const abs = (p: string): string => (isAbsolute(p) ? p : resolve(baseDir, p));
  const tls = config.server.tls;
  return {
    ...config,
    server: {
      ...config.server,
      tls: tls && {
        ...tls,
        cert: abs(tls.cert),
        key: abs(tls.key),
        clientCA: tls.clientCA === undefined ? undefined : abs(tls.clientCA),
      },
    },
    registries: config.registries.map((r) => ({
      ...r,
      ca: r.ca === undefined ? undefined : abs(r.ca),
      auth:
        r.auth !== undefined && 'dockerConfig' in r.auth
          ? { dockerConfig: abs(r.auth.dockerConfig) }
          : r.auth,
    })),
    validators: config.validators.map((v) =>
      v.type === 'cosign' && v.attestation?.policy !== undefined
        ? { ...v, attestation: { ...v.attestation, policy: abs(v.attestation.policy) } }
        : v,
    ),
    sigstore: config.sigstore && {
      ...config.sigstore,
      trustedRoot: config.sigstore.trustedRoot === undefined ? undefined : abs(config.sigstore.trustedRoot),
      tufRoot: config.sigstore.tufRoot === undefined ? undefined : abs(config.sigstore.tufRoot),
    },
  };
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
