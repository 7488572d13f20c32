/**
 * Reloads the config file when it changes. A reload that fails keeps the last good config and reports
 * the error; Kubernetes swaps ConfigMap files through symlinks, so the file is polled by stat rather
 * than watched by inode.
 */
import { unwatchFile, watchFile } from 'node:fs';
import { toProvenantError, type ProvenantError } from '../types/errors.ts';
import { loadConfigFile, type LoadedConfig } from './load.ts';

export const CONFIG_POLL_INTERVAL_MS = 1000;

export interface ConfigWatcherEvents {
  onReload(loaded: LoadedConfig): void;
  onError(error: ProvenantError): void;
}

export class ConfigWatcher {
  private readonly listener = (): void => this.reload();

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
    unwatchFile(this.path, this.listener);
  }
}
