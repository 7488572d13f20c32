/**
 * Loading turns YAML text into a frozen, fully defaulted Config, or a CONFIG_INVALID error that lists
 * every bad field path at once (schema problems and cross-field problems together).
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { LineCounter, Parser, parseDocument, type CST, type Document } from 'yaml';
import { ProvenantError } from '../types/errors.ts';
import type { Config } from './schema.ts';
import { validateConfigSchema as validateSchema } from './schema-validator.ts';
import { inlineKeyFiles } from './key-files.ts';
import { schemaProblems, yamlProblems } from './problems.ts';
import { semanticProblems, semanticWarnings } from './semantics.ts';

export interface LoadedConfig {
  readonly config: Config;
  /** Where it came from: a file path, or 'embedded default'. */
  readonly source: string;
  /** What loaded but is likely a mistake (a pattern that can never match), for the caller to show. */
  readonly warnings: readonly string[];
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
  const config = parseConfig(text, path, dirname(resolve(path)));
  return { config, source: resolve(path), warnings: semanticWarnings(config) };
}

/** Parses, validates, defaults and freezes. `baseDir` anchors relative file paths (TLS, CA files). */
export function parseConfig(text: string, source: string, baseDir: string): Config {
  const { value: raw, doc, lines } = parseYaml(text, source);
  const problems = validateSchema(raw) ? [] : schemaProblems(validateSchema.errors ?? [], doc, lines);
  // Cross-field checks need well-formed validators and rules; any other section may still be broken,
  // and its problems are reported together with these. An unknown top-level field (say, Connaisseur's
  // `features:`) leaves both lists intact, so it must not hide their problems.
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

/**
 * Collections nested deeper than this are refused before yaml composes the document. yaml's composer
 * recurses once per level and turns a stack overflow into a parse error, but V8 may abort the whole
 * process when the overflow strikes while a RegExp is being compiled ("RegExpCompiler Allocation
 * failed - process out of memory": a 5 000-deep `[[[…]]]` killed the fuzzing worker). Real configs
 * nest under 10 levels.
 */
export const MAX_CONFIG_NESTING = 64;

/** How deep collections nest in `text`, from yaml's CST (its parser keeps an explicit stack). */
function nestingDepth(text: string): number {
  let deepest = 0;
  const pending: [CST.Token | null | undefined, number][] = [];
  for (const token of new Parser().parse(text)) pending.push([token, 0]);
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const [token, depth] = next;
    if (token === undefined || token === null) continue;
    if (token.type === 'document') pending.push([token.value, depth]);
    if (token.type === 'block-map' || token.type === 'block-seq' || token.type === 'flow-collection') {
      deepest = Math.max(deepest, depth + 1);
      for (const item of token.items)
        pending.push(['key' in item ? item.key : undefined, depth + 1], [item.value, depth + 1]);
    }
  }
  return deepest;
}

function parseYaml(text: string, source: string): { value: unknown; doc: Document; lines: LineCounter } {
  const depth = nestingDepth(text);
  if (depth > MAX_CONFIG_NESTING) {
    throw new ProvenantError(
      'CONFIG_INVALID',
      `config ${source} is not valid YAML: collections nested ${depth} levels deep, at most ${MAX_CONFIG_NESTING} allowed`,
    );
  }
  const lines = new LineCounter();
  // prettyErrors would copy the offending source lines, secrets included, into the message.
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true, lineCounter: lines });
  // Warnings too (an unknown tag, say): a value the parser had to guess is not loaded.
  const errors = [...doc.errors, ...doc.warnings];
  if (errors.length > 0) {
    const list = yamlProblems(errors, lines)
      .map((p) => `  - ${p}`)
      .join('\n');
    throw new ProvenantError('CONFIG_INVALID', `config ${source} is not valid YAML:\n${list}`);
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch {
    throw new ProvenantError('CONFIG_INVALID', `config ${source} is not valid YAML: too many aliases`);
  }
  return { value: value ?? {}, doc, lines };
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
      auth: {
        ...config.server.auth,
        kyverno: {
          ...config.server.auth.kyverno,
          kubeconfig:
            config.server.auth.kyverno.kubeconfig === undefined
              ? undefined
              : abs(config.server.auth.kyverno.kubeconfig),
        },
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
        : v.type === 'notation' && v.trustPolicy !== undefined
          ? { ...v, trustPolicy: abs(v.trustPolicy) }
          : v,
    ),
    cache: {
      ...config.cache,
      hmacKeyFile: config.cache.hmacKeyFile === undefined ? undefined : abs(config.cache.hmacKeyFile),
    },
    sigstore: config.sigstore && {
      ...config.sigstore,
      trustedRoot: config.sigstore.trustedRoot === undefined ? undefined : abs(config.sigstore.trustedRoot),
      tufRoot: config.sigstore.tufRoot === undefined ? undefined : abs(config.sigstore.tufRoot),
      tufCacheDir: config.sigstore.tufCacheDir === undefined ? undefined : abs(config.sigstore.tufCacheDir),
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
