export { CacheLookup, ResponseCache, type CachedEntry, type CacheStored, type ResponseCacheOptions } from './response-cache.js';
export * from './policy.js';
