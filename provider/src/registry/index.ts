export { RegistryClient, type RegistryClientOptions, type ReferrersOptions } from './client.ts';
export { parseChallenge, type Challenge } from './challenge.ts';
export { retryDelayMs, Transport, type HttpRequest, type HttpResponse } from './transport.ts';
export { parseManifest, DIGEST_PATTERN, type Descriptor, type Manifest } from './manifest.ts';
export { checkJsonDocument, closeParseWorkers } from './json-worker.ts';
export { warmUpHttpClient } from './warm-up.ts';
export { parseDockerConfig, registryKey, type BasicCredentials } from './credentials/index.ts';
export * from './media-types.ts';
