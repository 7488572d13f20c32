/**
 * Docker's `config.json` shape (also the `.dockerconfigjson` of a Kubernetes Secret): `auths` keyed by
 * registry (host, `https://host`, `https://host/v1/`), each with `auth` (base64 `user:password`) or
 * `username`/`password`; plus `credHelpers` (per registry) and `credsStore` (default) naming a
 * `docker-credential-<helper>` program.
 */
import { preview } from '../../types/preview.ts';

export interface BasicCredentials {
  readonly username: string;
  readonly password: string;
}

export interface DockerConfig {
  readonly auths: ReadonlyMap<string, BasicCredentials>;
  readonly credHelpers: ReadonlyMap<string, string>;
  readonly credsStore: string | undefined;
}

/** Throws an Error whose message says what is wrong (never the secret values themselves). */
export function parseDockerConfig(text: string): DockerConfig {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error('expected JSON, found text that does not parse');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new Error('expected a JSON object with "auths"');
  const obj = json as Record<string, unknown>;
  const auths = new Map<string, BasicCredentials>();
  for (const [key, entry] of Object.entries(asObject(obj['auths'], 'auths'))) {
    const creds = entryCredentials(entry, key);
    if (creds !== undefined) auths.set(registryKey(key), creds);
  }
  const credHelpers = new Map<string, string>();
  for (const [key, helper] of Object.entries(asObject(obj['credHelpers'], 'credHelpers'))) {
    if (typeof helper !== 'string' || !HELPER_NAME.test(helper))
      throw new Error(`credHelpers["${key}"]: expected a helper name, found ${preview(helper)}`);
    credHelpers.set(registryKey(key), helper);
  }
  const store = obj['credsStore'];
  if (store !== undefined && (typeof store !== 'string' || !HELPER_NAME.test(store)))
    throw new Error(`credsStore: expected a helper name, found ${preview(store)}`);
  return { auths, credHelpers, credsStore: store === '' ? undefined : store };
}

/** Helper names become part of a program name: letters, digits, `.`, `_`, `-` only. */
const HELPER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

function asObject(value: unknown, name: string): Record<string, unknown> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new Error(`${name}: expected an object`);
  return value as Record<string, unknown>;
}

function entryCredentials(entry: unknown, key: string): BasicCredentials | undefined {
  const e = asObject(entry, `auths["${key}"]`);
  if (typeof e['auth'] === 'string' && e['auth'] !== '') {
    const decoded = Buffer.from(e['auth'], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) throw new Error(`auths["${key}"].auth: expected base64 of "user:password"`);
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  if (typeof e['username'] === 'string' && typeof e['password'] === 'string')
    return { username: e['username'], password: e['password'] };
  // identitytoken (an OAuth2 refresh token) and empty entries give no basic credentials.
  return undefined;
}

/**
 * The registry host an `auths`/`credHelpers` key names: `https://index.docker.io/v1/` → `docker.io`,
 * `https://r.example:5000/` → `r.example:5000`. Lower-cased, as registry hosts are.
 */
export function registryKey(key: string): string {
  const host = key
    .replace(/^[a-z]+:\/\//i, '')
    .replace(/\/.*$/, '')
    .toLowerCase();
  return host === 'index.docker.io' || host === 'registry-1.docker.io' ? 'docker.io' : host;
}
