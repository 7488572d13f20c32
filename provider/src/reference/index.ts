export { normalizedPinned, parseReference, pinnedReference, registryApiHost } from './reference.ts';
export type { ImageReference } from './reference.ts';
