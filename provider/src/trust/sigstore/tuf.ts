/**
 * Keeps the Sigstore trusted root current through TUF (`sigstore.tufMirror`, `sigstore.tufRoot`), in
 * the background: a refresh runs at start and every REFRESH_INTERVAL_MS, and a success swaps the root
 * that validators read. The admission path never waits for TUF; until a refresh succeeds (or when one
 * fails) the previous root keeps serving, so an unreachable mirror degrades to "last known good".
 * The TUF client (@sigstore/tuf over tuf-js) does the spec's update workflow: root rotation, expiry,
 * rollback and hash checks of `trusted_root.json` (TUF spec §5 "Detailed client workflow").
 */
import { createHash } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { ProvenantError } from '../../types/errors.ts';
import { SigstoreTrust } from './source.ts';
import { parseTrustedRoot } from './trusted-root.ts';

/** Sigstore rotates keys with weeks of notice; an hourly check is ample and cheap. */
export const REFRESH_INTERVAL_MS = 60 * 60 * 1000;
export const TUF_FETCH_TIMEOUT_MS = 5000;

export interface TufRefreshOptions {
  /** TUF repository base URL (`https://tuf-repo-cdn.sigstore.dev` for public-good). */
  readonly mirror: string;
  /** The initial, trusted root.json of that repository; absent: @sigstore/tuf's seed for known mirrors. */
  readonly rootPath?: string | undefined;
  /**
   * Where TUF metadata is cached between refreshes: a private directory (tufCacheDir), never a shared
   * one. A root.json found there is the client's trust anchor (TUF spec §5.2: the trusted root is the
   * last one the client verified), so whoever can write the directory decides what is trusted.
   */
  readonly cacheDir: string;
  readonly intervalMs?: number | undefined;
  /** Told about every refresh: `undefined` on success, the error otherwise. */
  readonly onRefresh?: ((error: Error | undefined) => void) | undefined;
}

export class TufRefresher {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly trust: SigstoreTrust,
    private readonly options: TufRefreshOptions,
  ) {}

  /** Starts refreshing in the background; returns at once. */
  start(): void {
    void this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.options.intervalMs ?? REFRESH_INTERVAL_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One refresh; concurrent calls share it. Never rejects: failures go to onRefresh. */
  refresh(): Promise<void> {
    this.running ??= this.update().finally(() => (this.running = undefined));
    return this.running;
  }

  private async update(): Promise<void> {
    try {
      // Loaded on the first refresh, not at start: @sigstore/tuf brings tuf-js and an HTTP client stack
      // (about 17 MB of RSS, half a second of loading) that only a TUF-refreshed root needs.
      const { getTrustedRoot } = await import('@sigstore/tuf');
      const root = await getTrustedRoot({
        mirrorURL: this.options.mirror,
        rootPath: this.options.rootPath,
        cachePath: this.options.cacheDir,
        timeout: TUF_FETCH_TIMEOUT_MS,
        retry: false,
      });
      // The target's bytes were hash-checked by TUF; its shape is checked like any trusted root's.
      this.trust.update(
        parseTrustedRoot(
          JSON.stringify(TrustedRoot.toJSON(root)),
          `${this.options.mirror} trusted_root.json`,
        ),
      );
      this.options.onRefresh?.(undefined);
    } catch (err) {
      this.options.onRefresh?.(err instanceof Error ? err : new Error(String(err)));
    }
  }
}

/**
 * The private TUF cache for one repository and initial root: `<base>/<hash of mirror and root>`, so a
 * changed `tufRoot` or `tufMirror` starts from its own root instead of metadata an older one left. The
 * base is `sigstore.tufCacheDir`, else `$XDG_CACHE_HOME/provenant/tuf` or `~/.cache/provenant/tuf`, else
 * (no writable home, e.g. a read-only root filesystem) a fresh private temp directory.
 * Throws CONFIG_UNSAFE_DIRECTORY when a directory is not the process's own (see privateDir).
 */
export function tufCacheDir(options: {
  readonly base?: string | undefined;
  readonly mirror: string;
  readonly rootPath?: string | undefined;
}): string {
  const root =
    options.rootPath === undefined ? Buffer.from('@sigstore/tuf seed') : readRoot(options.rootPath);
  const id = createHash('sha256').update(`${options.mirror}\n`).update(root).digest('hex').slice(0, 16);
  const base = options.base === undefined ? defaultBase() : privateDir(options.base, 'repair');
  return privateDir(path.join(base, id), 'wipe');
}

function readRoot(rootPath: string): Buffer {
  try {
    return readFileSync(rootPath);
  } catch (err) {
    throw new ProvenantError(
      'CONFIG_UNREADABLE',
      `cannot read sigstore.tufRoot ${rootPath}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
    );
  }
}

let fallbackBase: string | undefined;

function defaultBase(): string {
  const xdg = process.env['XDG_CACHE_HOME'];
  const cacheHome = xdg !== undefined && path.isAbsolute(xdg) ? xdg : path.join(os.homedir(), '.cache');
  try {
    return privateDir(path.join(cacheHome, 'provenant', 'tuf'), 'repair');
  } catch (err) {
    if (err instanceof ProvenantError) throw err;
    // Not creatable here: a directory mkdtemp makes (mode 0700, new, ours) is private by construction.
    fallbackBase ??= mkdtempSync(path.join(os.tmpdir(), 'provenant-tuf-'));
    return fallbackBase;
  }
}

/**
 * Creates `dir` (0700) or checks the one there: it must be a real directory (no symlink) owned by this
 * process's user. One other users can write or read is made private: `repair` just tightens its mode
 * (a base, whose subdirectories are checked in turn); `wipe` also removes what it holds, which anyone
 * may have placed there.
 */
function privateDir(dir: string, exposed: 'repair' | 'wipe'): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const stat = lstatSync(dir);
  const uid = process.getuid?.();
  if (!stat.isDirectory() || (uid !== undefined && stat.uid !== uid)) {
    throw new ProvenantError(
      'CONFIG_UNSAFE_DIRECTORY',
      `TUF cache ${dir} is ${stat.isDirectory() ? `owned by uid ${stat.uid}` : 'not a directory'}: expected a directory of uid ${uid}, which no one else can write`,
    );
  }
  if ((stat.mode & 0o077) !== 0) {
    if (exposed === 'wipe') {
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { mode: 0o700 });
    }
    chmodSync(dir, 0o700);
  }
  return dir;
}

/** Sigstore's public-good TUF repository (its initial root ships inside @sigstore/tuf). */
export const PUBLIC_GOOD_TUF_MIRROR = 'https://tuf-repo-cdn.sigstore.dev';

export interface SigstoreConfig {
  readonly offline?: boolean | undefined;
  readonly tufMirror?: string | undefined;
  readonly tufRoot?: string | undefined;
  readonly trustedRoot?: string | undefined;
  readonly tufCacheDir?: string | undefined;
}

export interface ConfiguredSigstore {
  /** Undefined: validators use the embedded public-good root. */
  readonly trust: SigstoreTrust | undefined;
  /** Stops background refreshes (config replaced, shutdown). */
  stop(): void;
  /** The TUF cache directory refreshes go through (one per mirror and initial root), if any. */
  readonly tufCache?: string | undefined;
  /** The root of the last successful TUF refresh, if one succeeded. */
  lastRefreshed?(): TrustedRoot | undefined;
}

/**
 * The `sigstore:` config section as trust material: a static `trustedRoot` (read now), kept current from
 * `tufMirror` (initial root `tufRoot`) when one is configured. `previous` is the section this one
 * replaces (a config reload): when both refresh from the same repository and initial root, the new one
 * starts from the root the previous one last verified, so a reload while the mirror is down keeps the
 * last good root instead of falling back to the initial one (TUF spec §5.2: the trusted root is the
 * last one the client verified).
 */
export function configureSigstore(
  config: SigstoreConfig | undefined,
  onRefresh?: (error: Error | undefined) => void,
  /**
   * With neither `trustedRoot` nor `tufMirror`: keep the embedded public-good root current from
   * public-good's own TUF repository (`provenant serve` with cosign validators, unless `offline`).
   */
  refreshPublicGood = false,
  previous?: ConfiguredSigstore,
): ConfiguredSigstore {
  const publicGood =
    config?.trustedRoot === undefined &&
    config?.tufMirror === undefined &&
    refreshPublicGood &&
    config?.offline !== true;
  if (config?.trustedRoot === undefined && config?.tufMirror === undefined && !publicGood)
    return { trust: undefined, stop: () => {} };
  const trust = new SigstoreTrust({ trustedRoot: config?.trustedRoot });
  const mirror = config?.tufMirror ?? (publicGood ? PUBLIC_GOOD_TUF_MIRROR : undefined);
  if (mirror === undefined) return { trust, stop: () => {} };
  const cacheDir = tufCacheDir({ base: config?.tufCacheDir, mirror, rootPath: config?.tufRoot });
  let refreshed = previous?.tufCache === cacheDir ? previous.lastRefreshed?.() : undefined;
  if (refreshed !== undefined) trust.update(refreshed);
  const refresher = new TufRefresher(trust, {
    mirror,
    rootPath: config?.tufRoot,
    cacheDir,
    onRefresh: (error) => {
      if (error === undefined) refreshed = trust.current();
      onRefresh?.(error);
    },
  });
  refresher.start();
  return { trust, stop: () => refresher.stop(), tufCache: cacheDir, lastRefreshed: () => refreshed };
}
