export { ResponseCache, type CachedEntry, type CacheStored, type Respond, type Send } from './response-cache.js';
export * from './policy.js';
