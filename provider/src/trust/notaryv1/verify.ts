/**
 * Verifies a Notary v1 repository's trust data in the order of Notary's client update
 * (notary `client/tufclient.go`, following the TUF spec's client workflow §5): root pinned by the
 * configured keys → timestamp → snapshot (by the hash the timestamp lists) → targets → delegations,
 * checking at each step the signatures against the parent's keys and threshold, the length and hashes
 * the parent lists, the expiry, and that the version did not go back. No network I/O happens here:
 * metadata comes from a MetadataSource.
 */
import { createHash, type KeyObject, type X509Certificate } from 'node:crypto';

import { ProvenantError, type ErrorCode } from '../../types/errors.ts';
import { canonicalJson, CanonicalJsonError } from './canonical.ts';
import { KeyFormatError, parseTufKey, spki, verifySignature, type TufKey } from './keys.ts';
import {
  MetadataFormatError,
  parseEnvelope,
  parseRoot,
  parseSnapshot,
  parseTargets,
  parseTimestamp,
  type Envelope,
  type FileMeta,
  type RoleKeys,
  type TargetsMeta,
} from './metadata.ts';
import type { VersionMemory } from './versions.ts';

/** root.json and timestamp.json have no parent listing their length; these bound them. */
export const ROOT_MAX_BYTES = 512 * 1024;
export const TIMESTAMP_MAX_BYTES = 64 * 1024;
/** Upper bound for any role, whatever length its parent claims. */
export const ROLE_MAX_BYTES = 16 * 1024 * 1024;
/** Bounds the delegation walk of a hostile repository. */
export const MAX_DELEGATED_ROLES = 64;

export interface MetadataSource {
  /** `role` is e.g. `root`, `targets/releases`; with `sha256` (hex) the checksum-addressed file. */
  fetch(role: string, sha256: string | undefined, maxBytes: number): Promise<Buffer>;
}

export interface PinnedKey {
  /** The trust root's name in the validator config. */
  readonly name: string;
  readonly key: KeyObject;
}

export interface TrustDataRequest {
  readonly gun: string;
  /** The image as the caller wrote it, for messages. */
  readonly image: string;
  /** Every one of these keys must have signed root.json. */
  readonly pinned: readonly PinnedKey[];
  /** Delegation roles (`targets/…`) that must sign; empty means Notary's default role. */
  readonly requiredDelegations: readonly string[];
  readonly source: MetadataSource;
  readonly now: Date;
  readonly versions: VersionMemory;
  /** Scopes rollback memory: the Notary server and GUN. */
  readonly scope: string;
}

export interface TrustedRepository {
  /** Roles whose targets the policy accepts (the required delegations, or the default role). */
  readonly accepted: readonly string[];
  /** Every role whose metadata verified, with the targets it may sign (paths applied). */
  readonly roles: ReadonlyMap<string, ReadonlyMap<string, FileMeta>>;
  /** Names of pinned trust roots that signed root.json. */
  readonly signers: readonly string[];
}

export const RELEASES_ROLE = 'targets/releases';
const DELEGATION_NAME = /^[-a-z0-9_]+(?:\/[-a-z0-9_]+)*$/;

export async function verifyTrustData(req: TrustDataRequest): Promise<TrustedRepository> {
  return new Chain(req).run();
}

class Chain {
  private readonly versions: { role: string; version: number }[] = [];

  constructor(private readonly req: TrustDataRequest) {}

  async run(): Promise<TrustedRepository> {
    const { source } = this.req;
    // §5.3: root, pinned by the configured keys rather than by a previously trusted root.
    const rootBytes = await source.fetch('root', undefined, ROOT_MAX_BYTES);
    const rootEnv = this.parse(rootBytes, 'root', 'Root');
    const root = this.guard('root', () => parseRoot(rootEnv.signed));
    const keys = this.keys('root', root.keys);
    const signers = this.checkPinned(rootEnv, keys, root.roles.root);
    this.checkThreshold('root', rootEnv, keys, root.roles.root);
    this.checkFresh('root', root);

    // §5.4: timestamp, the only role fetched without a known hash.
    const tsBytes = await source.fetch('timestamp', undefined, TIMESTAMP_MAX_BYTES);
    const ts = this.verifyRole('timestamp', 'Timestamp', tsBytes, keys, root.roles.timestamp, parseTimestamp);

    // §5.5: snapshot, exactly the one the timestamp names; it also pins the root's bytes.
    const snapBytes = await this.fetchListed('snapshot', ts.snapshot);
    const snap = this.verifyRole('snapshot', 'Snapshot', snapBytes, keys, root.roles.snapshot, parseSnapshot);
    const rootListed = snap.meta.get('root');
    if (rootListed !== undefined) this.checkHashes('root', rootBytes, rootListed);

    // §5.6: targets, then the delegations it (transitively) names.
    const targetsBytes = await this.fetchListed('targets', this.listed(snap.meta, 'targets'));
    const targets = this.verifyRole('targets', 'Targets', targetsBytes, keys, root.roles.targets, (signed) =>
      parseTargets(signed, 'targets'),
    );
    const accepted = this.acceptedRoles(targets);
    const roles = new Map<string, ReadonlyMap<string, FileMeta>>([['targets', targets.targets]]);
    await this.walkDelegations(targets, 'targets', [], snap.meta, accepted, roles);
    const missing = accepted.find((role) => !roles.has(role));
    if (missing !== undefined) {
      throw this.error(
        'NOTARY_DELEGATION_NOT_FOUND',
        `the rule requires delegation ${missing}, found only ${[...roles.keys()].join(', ')}`,
      );
    }
    // Remember versions only once the whole chain is trusted.
    for (const { role, version } of this.versions) this.req.versions.record(this.req.scope, role, version);
    return { accepted, roles, signers };
  }

  /** Parse, then signatures against the parent's keys and threshold, then expiry and rollback. */
  private verifyRole<T extends { version: number; expires: Date }>(
    name: string,
    type: string,
    bytes: Buffer,
    keys: Map<string, TufKey>,
    role: RoleKeys,
    parse: (signed: Record<string, unknown>) => T,
  ): T {
    const env = this.parse(bytes, name, type);
    const meta = this.guard(name, () => parse(env.signed));
    this.checkThreshold(name, env, keys, role);
    this.checkFresh(name, meta);
    return meta;
  }

  private acceptedRoles(targets: TargetsMeta): string[] {
    if (this.req.requiredDelegations.length > 0) return [...this.req.requiredDelegations];
    // Connaisseur (and docker's content trust) read targets/releases when the repository has it.
    return targets.delegations.some((d) => d.name === RELEASES_ROLE) ? [RELEASES_ROLE] : ['targets'];
  }

  /**
   * Verifies every delegation reachable from `parent`. A role the policy depends on (accepted, or an
   * ancestor of an accepted role) must verify; any other role that fails is left out, as Notary's
   * client skips invalid delegations when it looks for a target.
   */
  private async walkDelegations(
    parent: TargetsMeta,
    parentName: string,
    parentPaths: (readonly string[])[],
    listing: ReadonlyMap<string, FileMeta>,
    accepted: readonly string[],
    roles: Map<string, ReadonlyMap<string, FileMeta>>,
  ): Promise<void> {
    for (const d of parent.delegations) {
      // Notary's data.IsDelegation: a child of its parent, spelled [-a-z0-9_/] without empty segments.
      const suffix = d.name.slice(parentName.length + 1);
      if (!d.name.startsWith(`${parentName}/`) || !DELEGATION_NAME.test(suffix) || roles.has(d.name))
        continue;
      if (roles.size >= MAX_DELEGATED_ROLES) {
        throw this.error('NOTARY_BAD_METADATA', `expected at most ${MAX_DELEGATED_ROLES} roles, found more`);
      }
      const needed = accepted.some((a) => a === d.name || a.startsWith(`${d.name}/`));
      try {
        const child = await this.verifyDelegation(d, parent, listing);
        const paths = [...parentPaths, d.paths];
        roles.set(d.name, child === undefined ? new Map() : allowed(child.targets, paths));
        if (child !== undefined) await this.walkDelegations(child, d.name, paths, listing, accepted, roles);
      } catch (err) {
        if (needed || !(err instanceof ProvenantError) || err.transient) throw err;
      }
    }
  }

  private async verifyDelegation(
    d: RoleKeys & { name: string },
    parent: TargetsMeta,
    listing: ReadonlyMap<string, FileMeta>,
  ): Promise<TargetsMeta | undefined> {
    const meta = listing.get(d.name);
    // A delegation that never published metadata is absent from the snapshot: it signs nothing.
    if (meta === undefined) return undefined;
    const bytes = await this.fetchListed(d.name, meta);
    const keys = this.keys(d.name, parent.delegationKeys);
    return this.verifyRole(d.name, 'Targets', bytes, keys, d, (signed) => parseTargets(signed, d.name));
  }

  private checkPinned(env: Envelope<unknown>, keys: Map<string, TufKey>, role: RoleKeys): string[] {
    const data = this.canonical('root', env.signedRaw);
    for (const pin of this.req.pinned) {
      const wanted = spki(pin.key);
      const signedBy = env.signatures.find((s) => {
        const key = role.keyids.includes(s.keyid) ? keys.get(s.keyid) : undefined;
        return (
          key !== undefined &&
          spki(key.publicKey).equals(wanted) &&
          verifySignature(key, s.method, data, s.sig)
        );
      });
      if (signedBy === undefined) {
        throw this.error(
          'NOTARY_ROOT_NOT_TRUSTED',
          `expected root.json signed by trust root "${pin.name}", found signatures only by key(s) ${env.signatures.map((s) => s.keyid).join(', ') || 'none'} (none of them is that key, or the signature is invalid)`,
        );
      }
      const cert = keys.get(signedBy.keyid)?.certificate;
      if (cert !== undefined) this.checkRootCertificate(cert, pin.name);
    }
    return this.req.pinned.map((p) => p.name);
  }

  /**
   * Notary's trust pinning (`trustpinning/certs.go`, validRootLeafCerts): a root certificate names its
   * repository in its CN, so one root key reused across repositories cannot vouch for another one's
   * trust data served under this GUN; and it must not have expired.
   */
  private checkRootCertificate(cert: X509Certificate, pinName: string): void {
    const cn = cert.subject
      .split('\n')
      .find((part) => part.startsWith('CN='))
      ?.slice(3);
    if (cn !== this.req.gun) {
      throw this.error(
        'NOTARY_ROOT_NOT_TRUSTED',
        `expected the root certificate of trust root "${pinName}" to be issued for ${this.req.gun}, found CN ${JSON.stringify(cn ?? null)}`,
      );
    }
    if (new Date(cert.validTo).getTime() <= this.req.now.getTime()) {
      throw this.error(
        'NOTARY_EXPIRED',
        `expected a valid root certificate for trust root "${pinName}", found one that expired ${new Date(cert.validTo).toISOString()}`,
      );
    }
  }

  /** TUF §5.x: at least `threshold` distinct role keys produced a valid signature. */
  private checkThreshold(
    name: string,
    env: Envelope<unknown>,
    keys: Map<string, TufKey>,
    role: RoleKeys,
  ): void {
    const data = this.canonical(name, env.signedRaw);
    const valid = new Set<string>();
    for (const s of env.signatures) {
      const key = role.keyids.includes(s.keyid) ? keys.get(s.keyid) : undefined;
      if (key !== undefined && verifySignature(key, s.method, data, s.sig)) valid.add(s.keyid);
    }
    if (valid.size < role.threshold) {
      throw this.error(
        'NOTARY_SIGNATURE_INVALID',
        `expected ${name} signed by at least ${role.threshold} of its ${role.keyids.length} key(s), found ${valid.size} valid signature(s)`,
      );
    }
  }

  private checkFresh(name: string, meta: { version: number; expires: Date }): void {
    if (meta.expires.getTime() <= this.req.now.getTime()) {
      throw this.error(
        'NOTARY_EXPIRED',
        `expected ${name} to be valid at ${this.req.now.toISOString()}, found it expired at ${meta.expires.toISOString()}`,
      );
    }
    const last = this.req.versions.last(this.req.scope, name);
    if (meta.version < last) {
      throw this.error(
        'NOTARY_ROLLBACK',
        `expected ${name} version ${last} or later (already seen), found version ${meta.version}`,
      );
    }
    this.versions.push({ role: name, version: meta.version });
  }

  private listed(listing: ReadonlyMap<string, FileMeta>, role: string): FileMeta {
    const meta = listing.get(role);
    if (meta === undefined)
      throw this.error('NOTARY_BAD_METADATA', `expected snapshot to list ${role}, found no entry`);
    return meta;
  }

  /** Fetches the checksum-addressed file the parent lists, then checks its length and hashes. */
  private async fetchListed(role: string, meta: FileMeta): Promise<Buffer> {
    if (meta.length > ROLE_MAX_BYTES) {
      throw this.error(
        'NOTARY_BAD_METADATA',
        `expected ${role} of at most ${ROLE_MAX_BYTES} bytes, found a listed length of ${meta.length}`,
      );
    }
    const bytes = await this.req.source.fetch(role, meta.hashes['sha256'], meta.length);
    this.checkHashes(role, bytes, meta);
    return bytes;
  }

  private checkHashes(role: string, bytes: Buffer, meta: FileMeta): void {
    if (bytes.length !== meta.length) {
      throw this.error(
        'NOTARY_HASH_MISMATCH',
        `expected ${role} of ${meta.length} bytes, found ${bytes.length}`,
      );
    }
    for (const [alg, hex] of Object.entries(meta.hashes)) {
      const found = createHash(alg).update(bytes).digest('hex');
      if (found !== hex)
        throw this.error('NOTARY_HASH_MISMATCH', `expected ${role} with ${alg} ${hex}, found ${found}`);
    }
  }

  private parse(bytes: Buffer, role: string, type: string): Envelope<Record<string, unknown>> {
    return this.guard(role, () => parseEnvelope(bytes, role, type));
  }

  private keys(role: string, raw: Readonly<Record<string, unknown>>): Map<string, TufKey> {
    return this.guard(role, () => new Map(Object.entries(raw).map(([id, k]) => [id, parseTufKey(id, k)])));
  }

  private canonical(role: string, signed: unknown): Buffer {
    return this.guard(role, () => canonicalJson(signed));
  }

  private guard<T>(role: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (
        err instanceof MetadataFormatError ||
        err instanceof KeyFormatError ||
        err instanceof CanonicalJsonError
      ) {
        throw this.error('NOTARY_BAD_METADATA', `malformed ${role}: ${err.message}`, err);
      }
      throw err;
    }
  }

  private error(code: ErrorCode, detail: string, cause?: unknown): ProvenantError {
    return new ProvenantError(code, `trust data of ${this.req.gun} for image ${this.req.image}: ${detail}`, {
      image: this.req.image,
      cause,
    });
  }
}

/** The targets a delegation may sign: each name must fall under the paths of every role above it. */
function allowed(
  targets: ReadonlyMap<string, FileMeta>,
  paths: (readonly string[])[],
): Map<string, FileMeta> {
  return new Map([...targets].filter(([name]) => paths.every((ps) => ps.some((p) => name.startsWith(p)))));
}
