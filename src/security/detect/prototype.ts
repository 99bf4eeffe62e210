/**
 * Prototype pollution: a key that reaches an object's prototype when a JavaScript backend merges
 * or assigns the input (`{"__proto__": {"admin": true}}`, `?__proto__[admin]=1`,
 * `constructor[prototype][admin]=1`): every object of that process then has the property.
 * Fastify refuses such keys in the JSON it parses itself (secure-json-parse); a proxied body is
 * not parsed by it, so the inspection refuses them instead. A key is structure, never prose:
 * no legitimate request names one.
 *
 * In JSON, `{"constructor": {"prototype": ...}}` is found by the body walk (src/security/detect/index.ts),
 * which knows the parent key; here are the keys that say it on their own, in the bracket and dot
 * notations of qs-style parsers (query strings, forms).
 */
/** What separates the segments of a key path: brackets, dots, quotes, blanks (`a[b]`, `a.b`, `a["b"]`). */
const SEGMENT_SEPARATORS = /[[\].'"\s]+/;

/** The key, read as a path of segments, goes through `__proto__` or `constructor` then `prototype`. */
export function isPrototypeKey(key: string): boolean {
  if (!key.includes('__proto__') && !key.includes('prototype')) return false;
  const segments = key.split(SEGMENT_SEPARATORS);
  for (let i = 0; i < segments.length; i++) {
    if (segments[i] === '__proto__') return true;
    if (segments[i] === 'prototype' && i > 0 && segments[i - 1] === 'constructor') return true;
  }
  return false;
}
