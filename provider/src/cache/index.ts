export { MemoryCache, type Cache, type Clock } from './cache.ts';
export { RedisCache, TieredCache, type RedisCacheOptions } from './redis.ts';
export { Coalescer } from './coalesce.ts';
