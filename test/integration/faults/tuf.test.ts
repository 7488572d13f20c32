/**
 * TUF faults for the Sigstore trusted root (sigstore.tufMirror, sigstore.tufCacheDir): the real TUF
 * client (@sigstore/tuf over tuf-js) against a TUF repository served on loopback. The mirror going down
 * after a good refresh, and the cache directory's disk filling up: the refresh fails, is reported, and
 * the last good root stays in use; once the fault is gone the next refresh succeeds.
 * The disk is a 64 KiB tmpfs filled to ENOSPC when the tests run as root (mount needs it); otherwise a
 * directory without write permission stands in (EACCES), the same "cannot write the cache" fault.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SigstoreTrust } from '../../../provider/src/trust/sigstore/index.ts';
import { TufRefresher } from '../../../provider/src/trust/sigstore/tuf.ts';
import { serveTufRepository, tufRepository } from '../../../provider/test/helpers/tuf-repository.ts';
import { makeTempDir } from '../../harness/process.ts';
import { PROJECT_ROOT } from '../../harness/provenant.ts';

const run = promisify(execFile);
const TMPFS_BYTES = 64 * 1024;
/** Any valid trusted root will do as the TUF target: the public-good one of the shared fixtures. */
const TARGET = path.resolve(PROJECT_ROOT, '../shared/fixtures/sigstore/trust/public-good/trusted_root.json');

describe('TUF mirror and cache faults', () => {
  const target = readFileSync(TARGET);
  let dir: string;
  const servers: Server[] = [];
  let mounted: string | undefined;

  beforeAll(async () => {
    dir = await makeTempDir('faults-tuf');
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    if (mounted !== undefined) await run('umount', [mounted]);
    await rm(dir, { recursive: true, force: true });
  });

  async function refresher(name: string, cacheDir: string) {
    const repo = tufRepository(target);
    const { url, server } = await serveTufRepository(repo);
    servers.push(server);
    const rootPath = path.join(dir, `${name}-root.json`);
    await writeFile(rootPath, repo.root);
    const trust = new SigstoreTrust();
    let last: Error | undefined;
    const r = new TufRefresher(trust, { mirror: url, rootPath, cacheDir, onRefresh: (e) => (last = e) });
    return {
      trust,
      server,
      refresh: async (): Promise<Error | undefined> => (await r.refresh(), last),
    };
  }

  it('keeps the root of its last good refresh when the mirror goes down', async () => {
    const { trust, server, refresh } = await refresher('down', path.join(dir, 'down-cache'));
    const initial = trust.current();
    expect(await refresh()).toBeUndefined();
    const refreshed = trust.current();
    expect(refreshed).not.toBe(initial);
    await new Promise((r) => server.close(r));
    const error = await refresh();
    expect(error).toBeInstanceOf(Error);
    expect(trust.current()).toBe(refreshed);
  });

  it('keeps the last good root when its cache directory is full, and refreshes once there is room', async () => {
    const cacheDir = path.join(dir, 'full');
    await mkdir(cacheDir, { mode: 0o700 });
    const filler = path.join(cacheDir, 'filler');
    const fill = await diskFull(cacheDir, filler);
    const { trust, refresh } = await refresher('full', path.join(cacheDir, 'tuf'));
    const initial = trust.current();
    const error = await refresh();
    expect(error?.message).toMatch(fill === 'tmpfs' ? /ENOSPC|no space/i : /EACCES|permission/i);
    expect(trust.current()).toBe(initial);
    await (fill === 'tmpfs' ? rm(filler) : chmod(cacheDir, 0o700));
    expect(await refresh()).toBeUndefined();
    expect(trust.current()).not.toBe(initial);
  });

  /** A tmpfs of TMPFS_BYTES at `at`, filled by `filler` (root), or `at` made read-only (anyone else). */
  async function diskFull(at: string, filler: string): Promise<'tmpfs' | 'read-only'> {
    if (process.getuid?.() !== 0) {
      await chmod(at, 0o500);
      return 'read-only';
    }
    await run('mount', ['-t', 'tmpfs', '-o', `size=${TMPFS_BYTES},mode=0700`, 'tmpfs', at]);
    mounted = at;
    await expect(writeFile(filler, Buffer.alloc(TMPFS_BYTES * 2))).rejects.toThrow(/ENOSPC/);
    return 'tmpfs';
  }
});
