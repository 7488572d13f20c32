import type { KeyObject } from 'node:crypto';

import { describe, expect, it } from 'vitest';

import { parseReference } from '../../../src/reference/index.ts';
import { signedDigest } from '../../../src/trust/notaryv1/select.ts';
import { verifyTrustData, type TrustedRepository } from '../../../src/trust/notaryv1/verify.ts';
import { VersionMemory } from '../../../src/trust/notaryv1/versions.ts';
import { ProvenantError } from '../../../src/types/errors.ts';
import { hex, makeKey, sourceOf, TestRepo } from './repo.ts';

const GUN = 'registry.example/team/app';
const IMAGE = `${GUN}:v1`;

interface Options {
  required?: string[];
  now?: Date;
  versions?: VersionMemory;
  pinned?: { name: string; key: KeyObject }[];
}

function verify(repo: TestRepo, files = repo.publish(), opts: Options = {}): Promise<TrustedRepository> {
  return verifyTrustData({
    gun: GUN,
    image: IMAGE,
    pinned: opts.pinned ?? [{ name: 'default', key: repo.root.publicKey }],
    requiredDelegations: opts.required ?? [],
    source: sourceOf(files),
    now: opts.now ?? new Date(),
    versions: opts.versions ?? new VersionMemory(),
    scope: `https://notary.example ${GUN}`,
  });
}

async function failure(p: Promise<unknown>): Promise<ProvenantError> {
  const err: unknown = await p.then(
    () => new Error('expected a rejection'),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ProvenantError);
  expect((err as ProvenantError).message).toContain(IMAGE);
  return err as ProvenantError;
}

function signedRepo(): TestRepo {
  const repo = new TestRepo();
  repo.targets = { v1: hex('a') };
  return repo;
}

describe('notary v1 trust data verification', () => {
  it('verifies root (ECDSA), timestamp (Ed25519), snapshot and targets (RSA-PSS) and returns the targets', async () => {
    const trusted = await verify(signedRepo());
    expect(trusted.accepted).toEqual(['targets']);
    expect(trusted.roles.get('targets')?.get('v1')?.hashes['sha256']).toBe(hex('a'));
    expect(trusted.signers).toEqual(['default']);
  });

  it('fetches snapshot and targets by the hashes their parents list', async () => {
    const repo = signedRepo();
    const files = repo.publish();
    const source = sourceOf(files);
    await verifyTrustData({
      gun: GUN,
      image: IMAGE,
      pinned: [{ name: 'default', key: repo.root.publicKey }],
      requiredDelegations: [],
      source,
      now: new Date(),
      versions: new VersionMemory(),
      scope: 's',
    });
    expect(source.fetched.map((f) => f.replace(/[0-9a-f]{64}/, 'H'))).toEqual([
      'root',
      'timestamp',
      'snapshot.H',
      'targets.H',
    ]);
  });

  it('rejects a root that the pinned key did not sign', async () => {
    const e = await failure(
      verify(signedRepo(), undefined, { pinned: [{ name: 'ops', key: makeKey().publicKey }] }),
    );
    expect(e.code).toBe('NOTARY_ROOT_NOT_TRUSTED');
    expect(e.message).toContain('trust root "ops"');
  });

  it('rejects a root signed by the pinned key but below its own threshold', async () => {
    const repo = signedRepo();
    repo.rootKeys = [repo.root, makeKey()];
    repo.rootThreshold = 2;
    const e = await failure(verify(repo));
    expect(e.code).toBe('NOTARY_SIGNATURE_INVALID');
    expect(e.message).toContain('expected root signed by at least 2 of its 2 key(s), found 1');
  });

  it('rejects a timestamp signed by a key the root does not name', async () => {
    const repo = signedRepo();
    repo.timestampSigners = [makeKey('ed25519')];
    const e = await failure(verify(repo));
    expect(e.code).toBe('NOTARY_SIGNATURE_INVALID');
    expect(e.message).toContain('expected timestamp signed');
  });

  it('rejects a snapshot whose bytes do not match the hash the timestamp lists', async () => {
    const repo = signedRepo();
    const files = repo.publish();
    const [name, bytes] = [...files].find(([n]) => n.startsWith('snapshot.')) as [string, Buffer];
    const tampered = Buffer.from(bytes);
    tampered.writeUInt8((tampered.at(-3) ?? 0) ^ 1, tampered.length - 3);
    files.set(name, tampered);
    const e = await failure(verify(repo, files));
    expect(e.code).toBe('NOTARY_HASH_MISMATCH');
    expect(e.message).toMatch(/expected snapshot with sha256 [0-9a-f]{64}, found [0-9a-f]{64}/);
  });

  it('rejects a role whose length differs from the listed one', async () => {
    const repo = signedRepo();
    const files = repo.publish();
    const [name, bytes] = [...files].find(([n]) => n.startsWith('targets.')) as [string, Buffer];
    files.set(name, Buffer.concat([bytes, Buffer.from(' ')]));
    const e = await failure(verify(repo, files));
    expect(e.code).toBe('NOTARY_HASH_MISMATCH');
    expect(e.message).toContain(`expected targets of ${bytes.length} bytes, found ${bytes.length + 1}`);
  });

  it.each(['root', 'timestamp', 'snapshot', 'targets'] as const)('rejects an expired %s', async (role) => {
    const repo = signedRepo();
    repo.expires[role] = new Date(Date.now() - 1000);
    const e = await failure(verify(repo));
    expect(e.code).toBe('NOTARY_EXPIRED');
    expect(e.message).toContain(`expected ${role} to be valid at`);
  });

  it('rejects a snapshot rolled back behind a newer timestamp (a compromised timestamp key)', async () => {
    const repo = signedRepo();
    const versions = new VersionMemory();
    repo.version.snapshot = 5;
    repo.version.timestamp = 5;
    await verify(repo, repo.publish(), { versions });
    repo.version.snapshot = 4;
    repo.version.timestamp = 6;
    const e = await failure(verify(repo, repo.publish(), { versions }));
    expect(e.code).toBe('NOTARY_ROLLBACK');
    expect(e.message).toContain('expected snapshot version 5 or later (already seen), found version 4');
  });

  it('accepts the same or a newer version again', async () => {
    const repo = signedRepo();
    const versions = new VersionMemory();
    await verify(repo, repo.publish(), { versions });
    await verify(repo, repo.publish(), { versions });
    repo.version.targets = 2;
    repo.version.snapshot = 2;
    repo.version.timestamp = 2;
    await expect(verify(repo, repo.publish(), { versions })).resolves.toBeDefined();
    expect(versions.last(`https://notary.example ${GUN}`, 'targets')).toBe(2);
  });

  it('does not remember versions of a chain that failed to verify', async () => {
    const repo = signedRepo();
    const versions = new VersionMemory();
    repo.version.timestamp = 9;
    repo.expires.targets = new Date(Date.now() - 1000);
    await failure(verify(repo, repo.publish(), { versions }));
    expect(versions.last(`https://notary.example ${GUN}`, 'timestamp')).toBe(0);
  });

  it('rejects a key whose ID is not the one Notary would compute', async () => {
    const repo = signedRepo();
    const files = repo.publish();
    const root = JSON.parse((files.get('root') as Buffer).toString()) as {
      signed: { keys: Record<string, unknown> };
    };
    const [id, key] = Object.entries(root.signed.keys)[0] as [string, unknown];
    delete root.signed.keys[id];
    root.signed.keys[hex('f')] = key;
    files.set('root', Buffer.from(JSON.stringify(root)));
    const e = await failure(verify(repo, files));
    expect(e.code).toBe('NOTARY_BAD_METADATA');
    expect(e.message).toContain(`expected its ID to be ${id}`);
  });

  it('rejects metadata of the wrong type', async () => {
    const repo = signedRepo();
    const files = repo.publish();
    files.set('timestamp', files.get('root') as Buffer);
    const e = await failure(verify(repo, files));
    expect(e.code).toBe('NOTARY_BAD_METADATA');
    expect(e.message).toContain('timestamp.signed._type: expected "Timestamp", found "Root"');
  });

  describe('delegations', () => {
    function delegatedRepo(): TestRepo {
      const repo = signedRepo();
      repo.delegations.set('targets/releases', {
        keys: [makeKey()],
        threshold: 1,
        paths: [''],
        targets: { v1: hex('b') },
      });
      return repo;
    }

    it('accepts targets/releases by default when the repository delegates to it', async () => {
      const trusted = await verify(delegatedRepo());
      expect(trusted.accepted).toEqual(['targets/releases']);
      expect(signedDigest(trusted, parseReference(IMAGE), GUN)).toBe(`sha256:${hex('b')}`);
    });

    it('rejects a required delegation signed below its threshold', async () => {
      const repo = delegatedRepo();
      const keys = [makeKey(), makeKey()];
      repo.delegations.set('targets/qa', {
        keys,
        threshold: 2,
        paths: [''],
        targets: {},
        signers: [keys[0] as never],
      });
      const e = await failure(verify(repo, undefined, { required: ['targets/qa'] }));
      expect(e.code).toBe('NOTARY_SIGNATURE_INVALID');
      expect(e.message).toContain('expected targets/qa signed by at least 2 of its 2 key(s), found 1');
    });

    it('rejects an expired delegation the rule requires', async () => {
      const repo = delegatedRepo();
      const releases = repo.delegations.get('targets/releases');
      if (releases !== undefined) releases.expires = new Date(Date.now() - 1000);
      const e = await failure(verify(repo, undefined, { required: ['targets/releases'] }));
      expect(e.code).toBe('NOTARY_EXPIRED');
      expect(e.message).toContain('expected targets/releases to be valid at');
    });

    it('leaves out an invalid delegation the rule does not depend on', async () => {
      const repo = delegatedRepo();
      repo.delegations.set('targets/other', {
        keys: [makeKey()],
        threshold: 1,
        paths: [''],
        targets: { v1: hex('c') },
        expires: new Date(Date.now() - 1000),
      });
      const trusted = await verify(repo, undefined, { required: ['targets/releases'] });
      expect([...trusted.roles.keys()]).toEqual(['targets', 'targets/releases']);
    });

    it('ignores delegations whose names Notary would refuse (no path tricks in URLs)', async () => {
      const repo = delegatedRepo();
      for (const name of ['targets/../root', 'targets//x', 'targets/Upper', 'other/role'])
        repo.delegations.set(name, {
          keys: [makeKey()],
          threshold: 1,
          paths: [''],
          targets: { v1: hex('c') },
        });
      const trusted = await verify(repo);
      expect([...trusted.roles.keys()]).toEqual(['targets', 'targets/releases']);
    });

    it('ignores targets outside the paths a delegation may sign', async () => {
      const repo = signedRepo();
      repo.delegations.set('targets/releases', {
        keys: [makeKey()],
        threshold: 1,
        paths: ['release-'],
        targets: { v1: hex('b'), 'release-1': hex('d') },
      });
      const trusted = await verify(repo);
      expect([...(trusted.roles.get('targets/releases')?.keys() ?? [])]).toEqual(['release-1']);
      const e = await failure(
        Promise.resolve().then(() => signedDigest(trusted, parseReference(IMAGE), GUN)),
      );
      expect(e.code).toBe('NOTARY_DELEGATION_NOT_SIGNED');
      expect(e.message).toContain('signed only by targets,');
    });

    it('reports required delegations that sign different digests for the tag', async () => {
      const repo = delegatedRepo();
      repo.delegations.set('targets/qa', {
        keys: [makeKey()],
        threshold: 1,
        paths: [''],
        targets: { v1: hex('e') },
      });
      const trusted = await verify(repo, undefined, { required: ['targets/releases', 'targets/qa'] });
      const e = await failure(
        Promise.resolve().then(() => signedDigest(trusted, parseReference(IMAGE), GUN)),
      );
      expect(e.code).toBe('NOTARY_AMBIGUOUS_DIGEST');
      expect(e.message).toContain('found 2');
    });

    it('reports a required delegation the repository does not have', async () => {
      const e = await failure(verify(delegatedRepo(), undefined, { required: ['targets/qa'] }));
      expect(e.code).toBe('NOTARY_DELEGATION_NOT_FOUND');
      expect(e.message).toContain('the rule requires delegation targets/qa');
    });
  });
});
