/**
 * Notary v1 TUF metadata (notary `tuf/data/{root,timestamp,snapshot,targets}.go`). Everything here
 * comes from the network, so each document enters through a guard that checks the shape before use
 * and names what was wrong.
 */
import { preview } from '../../types/preview.ts';

export type TopRole = 'root' | 'timestamp' | 'snapshot' | 'targets';

export interface Signature {
  readonly keyid: string;
  readonly method: string;
  readonly sig: Buffer;
}

export interface Envelope<T> {
  readonly signed: T;
  /** The `signed` object exactly as parsed, for canonicalisation. */
  readonly signedRaw: unknown;
  readonly signatures: readonly Signature[];
}

export interface FileMeta {
  readonly length: number;
  /** Hex digests by algorithm (`sha256`, `sha512`). */
  readonly hashes: Readonly<Record<string, string>>;
}

export interface RoleKeys {
  readonly keyids: readonly string[];
  readonly threshold: number;
}

interface Common {
  readonly version: number;
  readonly expires: Date;
}

export interface RootMeta extends Common {
  readonly keys: Readonly<Record<string, unknown>>;
  readonly roles: Readonly<Record<TopRole, RoleKeys>>;
}

export interface TimestampMeta extends Common {
  readonly snapshot: FileMeta;
}

export interface SnapshotMeta extends Common {
  readonly meta: ReadonlyMap<string, FileMeta>;
}

export interface DelegatedRole extends RoleKeys {
  readonly name: string;
  /** Target-name prefixes the role may sign; `""` allows every name. */
  readonly paths: readonly string[];
}

export interface TargetsMeta extends Common {
  readonly targets: ReadonlyMap<string, FileMeta>;
  readonly delegationKeys: Readonly<Record<string, unknown>>;
  readonly delegations: readonly DelegatedRole[];
}

export class MetadataFormatError extends Error {
  override readonly name = 'MetadataFormatError';
}

type Obj = Record<string, unknown>;

function fail(what: string, expected: string, found: unknown): never {
  const shown = preview(found);
  throw new MetadataFormatError(`${what}: expected ${expected}, found ${shown}`);
}

function obj(v: unknown, what: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(what, 'an object', v);
  return v as Obj;
}

function int(v: unknown, what: string, min = 0): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) fail(what, `an integer ≥ ${min}`, v);
  return v;
}

function str(v: unknown, what: string): string {
  if (typeof v !== 'string') fail(what, 'a string', v);
  return v;
}

function strings(v: unknown, what: string): string[] {
  if (!Array.isArray(v)) fail(what, 'an array of strings', v);
  return v.map((s, i) => str(s, `${what}[${i}]`));
}

function date(v: unknown, what: string): Date {
  const d = new Date(str(v, what));
  if (Number.isNaN(d.getTime())) fail(what, 'an RFC 3339 time', v);
  return d;
}

/** Parses `{signed, signatures}` and checks `signed._type`. */
export function parseEnvelope(bytes: Buffer, role: string, type: string): Envelope<Obj> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new MetadataFormatError(`${role}: expected JSON, found ${bytes.length} unparsable bytes`);
  }
  const top = obj(parsed, role);
  const signed = obj(top['signed'], `${role}.signed`);
  if (signed['_type'] !== type) fail(`${role}.signed._type`, JSON.stringify(type), signed['_type']);
  const sigs = top['signatures'];
  if (!Array.isArray(sigs)) fail(`${role}.signatures`, 'an array', sigs);
  const signatures = sigs.map((s, i) => {
    const o = obj(s, `${role}.signatures[${i}]`);
    return {
      keyid: str(o['keyid'], `${role}.signatures[${i}].keyid`),
      method: str(o['method'], `${role}.signatures[${i}].method`),
      sig: Buffer.from(str(o['sig'], `${role}.signatures[${i}].sig`), 'base64'),
    };
  });
  return { signed, signedRaw: top['signed'], signatures };
}

function common(signed: Obj, role: string): Common {
  return {
    version: int(signed['version'], `${role}.version`, 1),
    expires: date(signed['expires'], `${role}.expires`),
  };
}

function fileMeta(v: unknown, what: string): FileMeta {
  const o = obj(v, what);
  const hashes = obj(o['hashes'], `${what}.hashes`);
  const hex: Record<string, string> = {};
  for (const [alg, value] of Object.entries(hashes)) {
    if (alg !== 'sha256' && alg !== 'sha512') continue;
    hex[alg] = Buffer.from(str(value, `${what}.hashes.${alg}`), 'base64').toString('hex');
  }
  if (hex['sha256'] === undefined) fail(`${what}.hashes`, 'a sha256 hash', hashes);
  return { length: int(o['length'], `${what}.length`), hashes: hex };
}

function roleKeys(v: unknown, what: string): RoleKeys {
  const o = obj(v, what);
  return {
    keyids: strings(o['keyids'], `${what}.keyids`),
    threshold: int(o['threshold'], `${what}.threshold`, 1),
  };
}

export function parseRoot(signed: Obj): RootMeta {
  const roles = obj(signed['roles'], 'root.roles');
  const pick = (r: TopRole): RoleKeys => roleKeys(roles[r], `root.roles.${r}`);
  return {
    ...common(signed, 'root'),
    keys: obj(signed['keys'], 'root.keys'),
    roles: {
      root: pick('root'),
      timestamp: pick('timestamp'),
      snapshot: pick('snapshot'),
      targets: pick('targets'),
    },
  };
}

export function parseTimestamp(signed: Obj): TimestampMeta {
  const meta = obj(signed['meta'], 'timestamp.meta');
  return { ...common(signed, 'timestamp'), snapshot: fileMeta(meta['snapshot'], 'timestamp.meta.snapshot') };
}

export function parseSnapshot(signed: Obj): SnapshotMeta {
  const meta = obj(signed['meta'], 'snapshot.meta');
  return {
    ...common(signed, 'snapshot'),
    meta: new Map(Object.entries(meta).map(([role, m]) => [role, fileMeta(m, `snapshot.meta.${role}`)])),
  };
}

export function parseTargets(signed: Obj, role: string): TargetsMeta {
  const targets = obj(signed['targets'], `${role}.targets`);
  const delegations =
    signed['delegations'] === undefined ? {} : obj(signed['delegations'], `${role}.delegations`);
  const roles = delegations['roles'] ?? [];
  if (!Array.isArray(roles)) fail(`${role}.delegations.roles`, 'an array', roles);
  return {
    ...common(signed, role),
    targets: new Map(
      Object.entries(targets).map(([name, m]) => [name, fileMeta(m, `${role}.targets.${name}`)]),
    ),
    delegationKeys:
      delegations['keys'] === undefined ? {} : obj(delegations['keys'], `${role}.delegations.keys`),
    delegations: roles.map((r, i) => {
      const what = `${role}.delegations.roles[${i}]`;
      const o = obj(r, what);
      return {
        ...roleKeys(o, what),
        name: str(o['name'], `${what}.name`),
        paths: o['paths'] === undefined ? [] : strings(o['paths'], `${what}.paths`),
      };
    }),
  };
}
