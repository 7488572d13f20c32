export { MemoryCache, type Cache } from './cache.ts';
export { Coalescer } from './coalesce.ts';
