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
  // A file rewritten in place can be seen half written: reload only once its stat stops changing.
  private readonly listener = (curr: Stats): void => {
    clearTimeout(this.settle);
    this.settle = setTimeout(() => {
      const now = statSync(this.path, { throwIfNoEntry: false });
      if (now !== undefined && (now.mtimeMs !== curr.mtimeMs || now.size !== curr.size)) this.listener(now);
      else this.reload();
    }, CONFIG_SETTLE_MS);
  };

  constructor(
    private readonly path: string,
    private readonly events: ConfigWatcherEvents,
    intervalMs = CONFIG_POLL_INTERVAL_MS,
  ) {
    watchFile(path, { interval: intervalMs, persistent: false }, this.listener);
  }

  reload(): void {
    try {
      this.events.onReload(loadConfigFile(this.path));
    } catch (err) {
      this.events.onError(toProvenantError(err));
    }
  }

  close(): void {
    clearTimeout(this.settle);
    unwatchFile(this.path, this.listener);
  }
}
