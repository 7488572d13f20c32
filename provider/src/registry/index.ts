export { RegistryClient, type RegistryClientOptions } from './client.ts';
export { parseChallenge, type Challenge } from './challenge.ts';
export { retryDelayMs } from './transport.ts';
export * from './media-types.ts';
