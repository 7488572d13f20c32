import {
  EMBEDDED_CONFIG_SOURCE,
  embeddedConfig,
  loadConfigFile,
  type LoadedConfig,
} from '../config/index.ts';

/** The config named by --config, or the embedded development default. */
export function loadConfig(path: string | undefined): LoadedConfig {
  return path === undefined
    ? { config: embeddedConfig(), source: EMBEDDED_CONFIG_SOURCE }
    : loadConfigFile(path);
}
