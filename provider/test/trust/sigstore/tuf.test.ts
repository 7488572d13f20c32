/**
 * TUF refresh of the trusted root against a TUF repository generated here (ed25519 keys, TUF spec 1.0
 * metadata signed over canonical JSON) and served on loopback: a good repository replaces the root, a
 * tampered target or an unreachable mirror leaves the last good one in place.
 */
import { readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, stat, symlink, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SigstoreTrust } from '../../../src/trust/sigstore/index.ts';
import {
  configureSigstore,
  TufRefresher,
  tufCacheDir,
  type ConfiguredSigstore,
} from '../../../src/trust/sigstore/tuf.ts';
import { ProvenantError } from '../../../src/types/errors.ts';
import { serveTufRepository as serve, tufRepository, type Repo } from '../../helpers/tuf-repository.ts';

const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const PUBLIC_GOOD_ROOT = path.resolve(
  PROJECT_ROOT,
  '../shared/fixtures/sigstore/trust/public-good/trusted_root.json',
);

describe('TUF refresh of the Sigstore trusted root', () => {
  const target = readFileSync(PUBLIC_GOOD_ROOT);
  let dir: string;
  const servers: Server[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'provenant-tuf-test-'));
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    await rm(dir, { recursive: true, force: true });
  });

  async function refresher(
    repo: Repo,
    name: string,
    trust: SigstoreTrust,
  ): Promise<{ refresh: () => Promise<Error | undefined> }> {
    const { url, server } = await serve(repo);
    servers.push(server);
    const rootPath = path.join(dir, `${name}-root.json`);
    await writeFile(rootPath, repo.root);
    let last: Error | undefined;
    const r = new TufRefresher(trust, {
      mirror: url,
      rootPath,
      cacheDir: path.join(dir, name),
      onRefresh: (e) => (last = e),
    });
    return { refresh: async () => (await r.refresh(), last) };
  }

  it('replaces the trusted root with the one the TUF repository signs for', async () => {
    const trust = new SigstoreTrust();
    const before = trust.current();
    const { refresh } = await refresher(tufRepository(target), 'good', trust);
    expect(await refresh()).toBeUndefined();
    expect(trust.current()).not.toBe(before);
    expect(trust.current().tlogs.map((t) => t.baseUrl)).toContain('https://rekor.sigstore.dev');
  });

  it('keeps the last good root when the served target does not match its signed hash', async () => {
    const trust = new SigstoreTrust();
    const before = trust.current();
    const tampered = Buffer.from(target.toString('utf8').replace('rekor.sigstore.dev', 'rekor.evilstor.dev'));
    const { refresh } = await refresher(tufRepository(target, tampered), 'tampered', trust);
    expect(tampered.length).toBe(target.length);
    const error = await refresh();
    expect(error?.message).toMatch(/hash|target/i);
    expect(trust.current()).toBe(before);
  });

  it('keeps the last good root when the mirror is unreachable, without throwing', async () => {
    const trust = new SigstoreTrust();
    const before = trust.current();
    const rootPath = path.join(dir, 'unreachable-root.json');
    await writeFile(rootPath, tufRepository(target).root);
    let last: Error | undefined;
    const r = new TufRefresher(trust, {
      mirror: 'http://127.0.0.1:1',
      rootPath,
      cacheDir: path.join(dir, 'unreachable'),
      onRefresh: (e) => (last = e),
    });
    await r.refresh();
    expect(last).toBeInstanceOf(Error);
    expect(trust.current()).toBe(before);
  });
});

describe('the TUF cache directory', () => {
  const target = readFileSync(PUBLIC_GOOD_ROOT);
  // The attacker's repository signs a trusted root naming their own transparency log.
  const evilTarget = Buffer.from(
    target.toString('utf8').replaceAll('rekor.sigstore.dev', 'rekor.evilstor.dev'),
  );
  const OLD_SHARED_DIR = path.join(tmpdir(), 'provenant-tuf');
  let dir: string;
  let home: string | undefined;
  const servers: Server[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'provenant-tufdir-test-'));
    home = process.env['XDG_CACHE_HOME'];
    process.env['XDG_CACHE_HOME'] = path.join(dir, 'xdg');
  });
  afterAll(async () => {
    if (home === undefined) delete process.env['XDG_CACHE_HOME'];
    else process.env['XDG_CACHE_HOME'] = home;
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    await rm(dir, { recursive: true, force: true });
  });

  /** A mirror serving whatever `current.repo` holds, so a test can swap the repository behind one URL. */
  async function mirror(repo: Repo): Promise<{ url: string; current: { repo: Repo } }> {
    const current = { repo };
    const { url, server } = await serve({
      get files() {
        return current.repo.files;
      },
    });
    servers.push(server);
    return { url, current };
  }

  /** Runs one refresh through configureSigstore, as serve does, and gives back its result. */
  function refreshOnce(
    config: Parameters<typeof configureSigstore>[0],
    previous?: ConfiguredSigstore,
  ): Promise<{
    error: Error | undefined;
    rekors: string[];
    /** The root's logs before the refresh: what a reload starts from. */
    rekorsAtStart: string[];
    configured: ConfiguredSigstore;
  }> {
    return new Promise((resolve) => {
      const rekorsOf = (c: ConfiguredSigstore): string[] =>
        c.trust?.current().tlogs.map((t) => t.baseUrl) ?? [];
      const configured: ConfiguredSigstore = configureSigstore(
        config,
        (error) => {
          configured.stop();
          resolve({ error, rekors: rekorsOf(configured), rekorsAtStart, configured });
        },
        false,
        previous,
      );
      const rekorsAtStart = rekorsOf(configured);
    });
  }

  /** The attacker serves their repository; the configured root is the legitimate one. */
  async function attack(name: string): Promise<{ url: string; rootPath: string; evilRoot: Buffer }> {
    const legit = tufRepository(target);
    const evil = tufRepository(evilTarget);
    const { url } = await mirror(evil);
    const rootPath = path.join(dir, `${name}-root.json`);
    await writeFile(rootPath, legit.root);
    return { url, rootPath, evilRoot: evil.root };
  }

  /** Where @sigstore/tuf keeps the trusted root.json of `mirror` under a cache directory. */
  async function plant(cache: string, mirrorUrl: string, root: Buffer): Promise<string> {
    const repoDir = path.join(cache, encodeURIComponent(new URL(mirrorUrl).host));
    await mkdir(repoDir, { recursive: true });
    await writeFile(path.join(repoDir, 'root.json'), root);
    return repoDir;
  }

  it('ignores a root.json pre-placed in the shared temp directory the cache used to live in', async () => {
    const { url, rootPath, evilRoot } = await attack('shared');
    const planted = await plant(OLD_SHARED_DIR, url, evilRoot);
    try {
      const { error, rekors } = await refreshOnce({ tufMirror: url, tufRoot: rootPath });
      expect(error).toBeInstanceOf(Error);
      expect(rekors.join()).not.toContain('evilstor');
    } finally {
      await rm(planted, { recursive: true, force: true });
    }
  });

  it('ignores a root.json pre-placed in a default cache directory others could write', async () => {
    const { url, rootPath, evilRoot } = await attack('exposed');
    const cache = tufCacheDir({ mirror: url, rootPath });
    expect(cache.startsWith(path.join(dir, 'xdg', 'provenant', 'tuf'))).toBe(true);
    await plant(cache, url, evilRoot);
    await chmod(cache, 0o777);
    const { error, rekors } = await refreshOnce({ tufMirror: url, tufRoot: rootPath });
    expect(error).toBeInstanceOf(Error);
    expect(rekors.join()).not.toContain('evilstor');
    expect((await stat(cache)).mode & 0o777).toBe(0o700);
  });

  it('creates its directories private to the user', async () => {
    const base = path.join(dir, 'configured', 'tuf');
    const cache = tufCacheDir({ base, mirror: 'https://tuf.example' });
    for (const d of [base, cache]) expect((await stat(d)).mode & 0o777).toBe(0o700);
  });

  it('refuses a configured cache directory that is a symlink', async () => {
    const real = path.join(dir, 'real');
    await mkdir(real, { mode: 0o700 });
    const link = path.join(dir, 'link');
    await symlink(real, link);
    let thrown: unknown;
    try {
      tufCacheDir({ base: link, mirror: 'https://tuf.example' });
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(ProvenantError);
    expect((thrown as ProvenantError).code).toBe('CONFIG_UNSAFE_DIRECTORY');
  });

  it('starts a reload from the root its last refresh verified, and keeps it while the mirror is down', async () => {
    // The repository's target names its own log, so its root is told apart from the embedded one.
    const repo = tufRepository(evilTarget);
    const { url, current } = await mirror(repo);
    const rootPath = path.join(dir, 'reload-root.json');
    await writeFile(rootPath, repo.root);
    const config = { tufMirror: url, tufRoot: rootPath, tufCacheDir: path.join(dir, 'reload-cache') };
    const first = await refreshOnce(config);
    expect(first.error).toBeUndefined();
    expect(first.rekors.join()).toContain('evilstor');
    current.repo = { ...repo, files: new Map() }; // the mirror answers 404 to everything
    const reloaded = await refreshOnce(config, first.configured);
    expect(reloaded.rekorsAtStart).toEqual(first.rekors);
    expect(reloaded.error).toBeInstanceOf(Error);
    expect(reloaded.rekors).toEqual(first.rekors);
    // A reload with another initial root does not inherit what the old one verified.
    const otherRoot = path.join(dir, 'reload-other-root.json');
    await writeFile(otherRoot, tufRepository(target).root);
    const other = await refreshOnce({ ...config, tufRoot: otherRoot }, reloaded.configured);
    expect(other.rekorsAtStart.join()).not.toContain('evilstor');
  });

  it('starts again from a changed tufRoot instead of the root an earlier one left in the cache', async () => {
    const first = tufRepository(target);
    const second = tufRepository(evilTarget); // another key; its target is told apart by its log URL
    const { url, current } = await mirror(first);
    const rootPath = path.join(dir, 'rotated-root.json');
    const base = path.join(dir, 'rotated-cache');
    await writeFile(rootPath, first.root);
    expect(
      (await refreshOnce({ tufMirror: url, tufRoot: rootPath, tufCacheDir: base })).error,
    ).toBeUndefined();
    current.repo = second;
    await writeFile(rootPath, second.root);
    const { error, rekors } = await refreshOnce({ tufMirror: url, tufRoot: rootPath, tufCacheDir: base });
    expect(error).toBeUndefined();
    expect(rekors.join()).toContain('evilstor');
  });
});
