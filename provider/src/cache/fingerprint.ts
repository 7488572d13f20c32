/**
 * The fingerprint of everything in a config that decides a verdict, used as the cache namespace: a
 * reload that changes any of it never serves the old config's verdicts, and replicas that share Redis
 * with the same config share entries. Files the config names (a registry CA, an attestation policy, a
 * trusted root, a TUF root, key or certificate files) count by their contents, read at each load, so an
 * edited file takes effect with the next reload instead of hiding behind cached verdicts.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Config } from '../config/index.ts';

/**
 * Config fields that may name a file. PEM text and KMS references in `key`/`cert` are not paths; a value
 * that is not a readable file counts as written. Credentials (`auth`) are left out: they decide access,
 * not trust, and a hash of a password must not end up in Redis key names.
 */
const FILE_FIELDS: ReadonlySet<string> = new Set([
  'ca',
  'policy',
  'trustedRoot',
  'tufRoot',
  'key',
  'cert',
  'tsCert',
]);
const EXCLUDED_FIELDS: ReadonlySet<string> = new Set(['auth']);

export function configFingerprint(config: Config): string {
  const decisive = [config.validators, config.policy, config.registries, config.sigstore];
  const hash = createHash('sha256');
  hash.update(JSON.stringify(decisive, (field, value: unknown) => withContents(field, value)));
  return hash.digest('hex').slice(0, 16);
}

function withContents(field: string, value: unknown): unknown {
  if (EXCLUDED_FIELDS.has(field)) return undefined;
  if (!FILE_FIELDS.has(field) || typeof value !== 'string' || value.includes('\n')) return value;
  const contents = fileContents(value);
  return contents === undefined ? value : { path: value, sha256: contents };
}

function fileContents(path: string): string | undefined {
  try {
    return createHash('sha256').update(readFileSync(path)).digest('hex');
  } catch {
    return undefined;
  }
}
