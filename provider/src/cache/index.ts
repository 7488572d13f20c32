export { MemoryCache, type Cache, type Clock } from './cache.ts';
export {
  cacheHmacKey,
  cacheRedisPassword,
  MIN_HMAC_KEY_BYTES,
  RedisCache,
  TieredCache,
  type RedisCacheOptions,
  type RejectReason,
} from './redis.ts';
export { Coalescer } from './coalesce.ts';
export { configFingerprint } from './fingerprint.ts';
