/*
 * Feature hashing for the routing model: 32-bit FNV-1a over UTF-16 code units, finished with
 * murmur3's fmix32 so that the low bits (the bucket) and the top bit (the sign) are both well
 * mixed. Everything works on numbers (no strings are built), so hashing a request allocates
 * nothing.
 */

export const FNV_OFFSET = 0x811c9dc5 | 0;
const FNV_PRIME = 0x01000193;

/** One step of FNV-1a: mix one 16-bit code unit (or any small integer) into `h`. */
export function fnvStep(h: number, code: number): number {
  return Math.imul(h ^ code, FNV_PRIME);
}

/** FNV-1a of a whole string, from `seed`. Used for namespace seeds and tests, not on the hot path. */
export function fnvString(s: string, seed: number = FNV_OFFSET): number {
  let h = seed;
  for (let i = 0; i < s.length; i++) h = fnvStep(h, s.charCodeAt(i));
  return h;
}

/** murmur3 fmix32: a bijective avalanche of a 32-bit value. */
export function fmix32(x: number): number {
  let h = x ^ (x >>> 16);
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}

/** Combine two hashes in an order-sensitive way (word bigrams). */
export function combine(a: number, b: number): number {
  return fmix32(Math.imul(a, 0x9e3779b1) ^ b);
}

/**
 * Namespace seeds: each kind of feature (word, bigram, character n-gram, path segment, ...) hashes
 * from its own seed, so "query" as a word and "query" as a path segment are different features.
 */
export const NS = {
  word: fnvString('w1'),
  bigram: fnvString('w2'),
  char: fnvString('c'),
  method: fnvString('m'),
  pathSegment: fnvString('p'),
  path: fnvString('P'),
  contentType: fnvString('ct'),
  header: fnvString('h'),
  fileExt: fnvString('fx'),
  fileType: fnvString('ft'),
  fileMajorType: fnvString('ftm'),
  hasFile: fnvString('f?'),
  hasText: fnvString('t?'),
  lexicon: fnvString('lx'),
  bias: fnvString('b'),
} as const;
