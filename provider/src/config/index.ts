export { loadConfigFile, parseConfig, type LoadedConfig } from './load.ts';
export { embeddedConfig, EMBEDDED_CONFIG_SOURCE } from './embedded.ts';
export { ConfigWatcher } from './watch.ts';
export { SUPPORTED_VALIDATOR_TYPES, semanticWarnings } from './semantics.ts';
export type * from './schema.ts';
