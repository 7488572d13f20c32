import {
  EMBEDDED_CONFIG_SOURCE,
  embeddedConfig,
  loadConfigFile,
  semanticWarnings,
  type LoadedConfig,
} from '../config/index.ts';

/** The config named by --config, or the embedded development default. */
export function loadConfig(path: string | undefined): LoadedConfig {
  if (path !== undefined) return loadConfigFile(path);
  const config = embeddedConfig();
  return { config, source: EMBEDDED_CONFIG_SOURCE, warnings: semanticWarnings(config) };
}

/** Load-time warnings of a command run from a terminal go to stderr, so stdout stays its result. */
export function printWarnings(loaded: LoadedConfig, err: NodeJS.WritableStream = process.stderr): void {
  for (const warning of loaded.warnings) err.write(`provenant: warning: ${warning}\n`);
}
