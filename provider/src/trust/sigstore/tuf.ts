/**
 * Keeps the Sigstore trusted root current through TUF (`sigstore.tufMirror`, `sigstore.tufRoot`), in
 * the background: a refresh runs at start and every REFRESH_INTERVAL_MS, and a success swaps the root
 * that validators read. The admission path never waits for TUF; until a refresh succeeds (or when one
 * fails) the previous root keeps serving, so an unreachable mirror degrades to "last known good".
 * The TUF client (@sigstore/tuf over tuf-js) does the spec's update workflow: root rotation, expiry,
 * rollback and hash checks of `trusted_root.json` (TUF spec §5 "Detailed client workflow").
 */
import os from 'node:os';
import path from 'node:path';
import { getTrustedRoot } from '@sigstore/tuf';
import { SigstoreTrust } from './source.ts';
import { parseTrustedRoot } from './trusted-root.ts';
import { TrustedRoot } from '@sigstore/protobuf-specs';

/** Sigstore rotates keys with weeks of notice; an hourly check is ample and cheap. */
export const REFRESH_INTERVAL_MS = 60 * 60 * 1000;
export const TUF_FETCH_TIMEOUT_MS = 5000;

export interface TufRefreshOptions {
  /** TUF repository base URL (`https://tuf-repo-cdn.sigstore.dev` for public-good). */
  readonly mirror: string;
  /** The initial, trusted root.json of that repository; absent: @sigstore/tuf's seed for known mirrors. */
  readonly rootPath?: string | undefined;
  /** Where TUF metadata is cached between refreshes. */
  readonly cacheDir?: string | undefined;
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
      const root = await getTrustedRoot({
        mirrorURL: this.options.mirror,
        rootPath: this.options.rootPath,
        cachePath: this.options.cacheDir ?? defaultCacheDir(),
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

function defaultCacheDir(): string {
  return path.join(os.tmpdir(), 'provenant-tuf');
}

/** Sigstore's public-good TUF repository (its initial root ships inside @sigstore/tuf). */
export const PUBLIC_GOOD_TUF_MIRROR = 'https://tuf-repo-cdn.sigstore.dev';

export interface SigstoreConfig {
  readonly offline?: boolean | undefined;
  readonly tufMirror?: string | undefined;
  readonly tufRoot?: string | undefined;
  readonly trustedRoot?: string | undefined;
}

export interface ConfiguredSigstore {
  /** Undefined: validators use the embedded public-good root. */
  readonly trust: SigstoreTrust | undefined;
  /** Stops background refreshes (config replaced, shutdown). */
  stop(): void;
}

/**
 * The `sigstore:` config section as trust material: a static `trustedRoot` (read now), kept current from
 * `tufMirror` (initial root `tufRoot`) when one is configured.
 */
export function configureSigstore(
  config: SigstoreConfig | undefined,
  onRefresh?: (error: Error | undefined) => void,
  /**
   * With neither `trustedRoot` nor `tufMirror`: keep the embedded public-good root current from
   * public-good's own TUF repository (`provenant serve` with cosign validators, unless `offline`).
   */
  refreshPublicGood = false,
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
  const refresher = new TufRefresher(trust, {
    mirror,
    rootPath: config?.tufRoot,
    onRefresh,
  });
  refresher.start();
  return { trust, stop: () => refresher.stop() };
}
