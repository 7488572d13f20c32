/**
 * A Notary v1 repository signed at test time with node:crypto keys, for the faults a real
 * notary-server never produces on demand (a compromised timestamp key replaying an old snapshot,
 * tampered bytes, short thresholds, key IDs that lie). The shapes follow what notary-server and the
 * `notary` client publish (see test/integration/notaryv1 for the real thing).
 */
import { createHash, generateKeyPairSync, sign, constants, type KeyObject } from 'node:crypto';

import { ProvenantError } from '../../../src/types/errors.ts';
import { canonicalJson } from '../../../src/trust/notaryv1/canonical.ts';
import { tufKeyId } from '../../../src/trust/notaryv1/keys.ts';
import type { MetadataSource } from '../../../src/trust/notaryv1/verify.ts';

export interface TestKey {
  readonly id: string;
  readonly keytype: 'ecdsa' | 'rsa' | 'ed25519';
  readonly public: string;
  readonly publicKey: KeyObject;
  readonly privateKey: KeyObject;
}

export function makeKey(keytype: TestKey['keytype'] = 'ecdsa'): TestKey {
  const { publicKey, privateKey } =
    keytype === 'ecdsa'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : keytype === 'rsa'
        ? generateKeyPairSync('rsa', { modulusLength: 2048 })
        : generateKeyPairSync('ed25519');
  const pub =
    keytype === 'ed25519'
      ? Buffer.from(publicKey.export({ format: 'jwk' }).x as string, 'base64url').toString('base64')
      : publicKey.export({ format: 'der', type: 'spki' }).toString('base64');
  return { id: tufKeyId(keytype, pub), keytype, public: pub, publicKey, privateKey };
}

function signatureOf(key: TestKey, data: Buffer): { keyid: string; method: string; sig: string } {
  switch (key.keytype) {
    case 'ecdsa':
      return {
        keyid: key.id,
        method: 'ecdsa',
        sig: sign('sha256', data, { key: key.privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64'),
      };
    case 'rsa':
      return {
        keyid: key.id,
        method: 'rsapss',
        sig: sign('sha256', data, {
          key: key.privateKey,
          padding: constants.RSA_PKCS1_PSS_PADDING,
          saltLength: 32,
        }).toString('base64'),
      };
    case 'ed25519':
      return { keyid: key.id, method: 'eddsa', sig: sign(null, data, key.privateKey).toString('base64') };
  }
}

/** `{signed, signatures}` as notary serves it: canonical bytes throughout. */
export function envelope(signed: object, keys: readonly TestKey[]): Buffer {
  const data = canonicalJson(signed);
  return canonicalJson({ signed, signatures: keys.map((k) => signatureOf(k, data)) });
}

export function fileMeta(bytes: Buffer): { hashes: Record<string, string>; length: number } {
  return {
    hashes: {
      sha256: createHash('sha256').update(bytes).digest('base64'),
      sha512: createHash('sha512').update(bytes).digest('base64'),
    },
    length: bytes.length,
  };
}

export function publicEntry(key: TestKey): object {
  return { keytype: key.keytype, keyval: { private: null, public: key.public } };
}

const YEAR_MS = 365 * 24 * 3600 * 1000;

export interface Delegation {
  keys: TestKey[];
  threshold: number;
  paths: string[];
  targets: Record<string, string>;
  /** Keys that actually sign (default: `keys`). */
  signers?: TestKey[];
  version?: number;
  expires?: Date;
}

/** Everything is mutable: change a field, call publish() again, as a signer would. */
export class TestRepo {
  readonly root = makeKey('ecdsa');
  readonly targetsKey = makeKey('rsa');
  readonly snapshotKey = makeKey('ecdsa');
  readonly timestampKey = makeKey('ed25519');
  version = { root: 1, targets: 1, snapshot: 1, timestamp: 1 };
  expires = {
    root: new Date(Date.now() + 10 * YEAR_MS),
    targets: new Date(Date.now() + YEAR_MS),
    snapshot: new Date(Date.now() + YEAR_MS),
    timestamp: new Date(Date.now() + 14 * 24 * 3600 * 1000),
  };
  /** tag → sha256 hex of the manifest. */
  targets: Record<string, string> = {};
  delegations = new Map<string, Delegation>();
  rootKeys: TestKey[] = [this.root];
  rootThreshold = 1;
  rootSigners: TestKey[] = [this.root];
  timestampSigners: TestKey[] = [this.timestampKey];

  /** The files a server would serve: `root`, `timestamp`, and `<role>.<sha256 hex>` for the rest. */
  publish(): Map<string, Buffer> {
    const files = new Map<string, Buffer>();
    const root = envelope(
      {
        _type: 'Root',
        consistent_snapshot: false,
        expires: this.expires.root.toISOString(),
        keys: Object.fromEntries(
          [...this.rootKeys, this.targetsKey, this.snapshotKey, this.timestampKey].map((k) => [
            k.id,
            publicEntry(k),
          ]),
        ),
        roles: {
          root: { keyids: this.rootKeys.map((k) => k.id), threshold: this.rootThreshold },
          targets: { keyids: [this.targetsKey.id], threshold: 1 },
          snapshot: { keyids: [this.snapshotKey.id], threshold: 1 },
          timestamp: { keyids: [this.timestampKey.id], threshold: 1 },
        },
        version: this.version.root,
      },
      this.rootSigners,
    );
    const delegationKeys = [...this.delegations.values()].flatMap((d) => d.keys);
    const targets = envelope(
      {
        _type: 'Targets',
        delegations: {
          keys: Object.fromEntries(delegationKeys.map((k) => [k.id, publicEntry(k)])),
          roles: [...this.delegations].map(([name, d]) => ({
            name,
            keyids: d.keys.map((k) => k.id),
            threshold: d.threshold,
            paths: d.paths,
          })),
        },
        expires: this.expires.targets.toISOString(),
        targets: targetsOf(this.targets),
        version: this.version.targets,
      },
      [this.targetsKey],
    );
    const meta: Record<string, object> = { root: fileMeta(root), targets: fileMeta(targets) };
    const add = (role: string, bytes: Buffer): void => {
      files.set(`${role}.${createHash('sha256').update(bytes).digest('hex')}`, bytes);
    };
    add('targets', targets);
    for (const [name, d] of this.delegations) {
      const bytes = envelope(
        {
          _type: 'Targets',
          delegations: { keys: {}, roles: [] },
          expires: (d.expires ?? this.expires.targets).toISOString(),
          targets: targetsOf(d.targets),
          version: d.version ?? 1,
        },
        d.signers ?? d.keys,
      );
      meta[name] = fileMeta(bytes);
      add(name, bytes);
    }
    const snapshot = envelope(
      {
        _type: 'Snapshot',
        expires: this.expires.snapshot.toISOString(),
        meta,
        version: this.version.snapshot,
      },
      [this.snapshotKey],
    );
    add('snapshot', snapshot);
    const timestamp = envelope(
      {
        _type: 'Timestamp',
        expires: this.expires.timestamp.toISOString(),
        meta: { snapshot: fileMeta(snapshot) },
        version: this.version.timestamp,
      },
      this.timestampSigners,
    );
    files.set('root', root);
    files.set('timestamp', timestamp);
    return files;
  }
}

function targetsOf(tags: Record<string, string>): Record<string, object> {
  return Object.fromEntries(
    Object.entries(tags).map(([tag, hex]) => [
      tag,
      { hashes: { sha256: Buffer.from(hex, 'hex').toString('base64') }, length: 1234 },
    ]),
  );
}

/** Serves published files; unknown files answer like a 404 from notary-server. */
export function sourceOf(files: ReadonlyMap<string, Buffer>): MetadataSource & { fetched: string[] } {
  const fetched: string[] = [];
  return {
    fetched,
    fetch(role, sha256) {
      const name = sha256 === undefined ? role : `${role}.${sha256}`;
      fetched.push(name);
      const bytes = files.get(name);
      if (bytes === undefined)
        return Promise.reject(new ProvenantError('NOTARY_BAD_METADATA', `test repo has no ${name}`));
      return Promise.resolve(bytes);
    },
  };
}

export const hex = (c: string): string => c.repeat(64);
