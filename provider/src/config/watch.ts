/**
 * Reloads the config file when it changes. A reload that fails keeps the last good config and reports
 * the error; Kubernetes swaps ConfigMap files through symlinks, so the file is polled by stat rather
 * than watched by inode.
 */
import { statSync, unwatchFile, watchFile, type Stats } from 'node:fs';
import { toProvenantError, type ProvenantError } from '../types/errors.ts';
import { loadConfigFile, type LoadedConfig } from './load.ts';

export const CONFIG_POLL_INTERVAL_MS = 1000;
/** How long a changed file must stay unchanged before it is read. */
export const CONFIG_SETTLE_MS = 200;

export interface ConfigWatcherEvents {
  onReload(loaded: LoadedConfig): void;
  onError(error: ProvenantError): void;
}

export class ConfigWatcher {
  private settle: NodeJS.Timeout | undefined;
  private readonly firstCheck: NodeJS.Timeout;
  /** The file as last read (or as found when watching began), so one change is reloaded once. */
  private seen: Stats | undefined;
  // A file rewritten in place can be seen half written: reload only once its stat stops changing.
  private readonly listener = (curr: Stats): void => {
    clearTimeout(this.settle);
    this.settle = setTimeout(() => {
      const now = statSync(this.path, { throwIfNoEntry: false });
      if (now !== undefined && changed(now, curr)) this.listener(now);
      else if (now === undefined || this.seen === undefined || changed(now, this.seen)) this.reload();
    }, CONFIG_SETTLE_MS);
  };

  constructor(
    private readonly path: string,
    private readonly events: ConfigWatcherEvents,
    intervalMs = CONFIG_POLL_INTERVAL_MS,
  ) {
    this.seen = statSync(path, { throwIfNoEntry: false });
    watchFile(path, { interval: intervalMs, persistent: false }, this.listener);
    // watchFile takes its own first stat later, on the thread pool: a change made before that (a busy
    // start) would become its baseline and never be reported. One comparison with the stat taken here
    // closes that gap.
    this.firstCheck = setTimeout(() => {
      const now = statSync(path, { throwIfNoEntry: false });
      if (now !== undefined && (this.seen === undefined || changed(now, this.seen))) this.listener(now);
    }, intervalMs);
    this.firstCheck.unref();
  }

  reload(): void {
    this.seen = statSync(this.path, { throwIfNoEntry: false });
    try {
      this.events.onReload(loadConfigFile(this.path));
    } catch (err) {
      this.events.onError(toProvenantError(err));
    }
  }

  close(): void {
    clearTimeout(this.settle);
    clearTimeout(this.firstCheck);
    unwatchFile(this.path, this.listener);
  }
}

function changed(a: Stats, b: Stats): boolean {
  return a.mtimeMs !== b.mtimeMs || a.size !== b.size || a.ino !== b.ino;
}
