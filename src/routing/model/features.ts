import { combine, fmix32, fnvStep, fnvString, NS } from './hashing.js';
import { LEXICON_MATCHING, lexiconAnagramTable, lexiconStemTable, lexiconTable, STEM_MAX, STEM_MIN } from './lexicon.js';

/*
 * What the routing model sees of a request, and how it becomes hashed features. The same
 * extractor serves training, evaluation and live inference, so a feature means the same thing
 * in all three. Extraction writes into buffers allocated once per extractor: routing a request
 * allocates nothing.
 *
 * Features (each kind hashed from its own namespace seed, see hashing.ts):
 *  - words of the text fields of the JSON body (`query`, `prompt`, `message` by default) and of
 *    the uploaded file's name: lowercased, digits folded to 0, split on anything that is not a
 *    letter or digit; word unigrams, word bigrams, character n-grams of each word with
 *    boundary markers (fastText style, so typos and inflections still share most features);
 *  - the method, the path and each path segment, the media type of the body;
 *  - selected headers (name=value), the uploaded file's extension and media type.
 * Each feature has a sign (top bit of its hash) so that colliding features tend to cancel
 * rather than add up, and the feature vector is scaled by 1/sqrt(count).
 */

/** A request as the routing model sees it (built from a live request or a data line). */
export interface RoutingInput {
  readonly method: string;
  /** The request path; a query string is ignored. */
  readonly path: string;
  /** The Content-Type header (parameters are ignored). */
  readonly contentType?: string | undefined;
  /** Request headers, lowercased names (only the ones in the feature settings are read). */
  readonly headers?: Readonly<Record<string, string | readonly string[] | undefined>> | undefined;
  /** The parsed JSON body, or the text fields of a multipart form. */
  readonly body?: unknown;
  /** The uploaded file (POST /v1/upload). */
  readonly file?: { readonly name?: string | undefined; readonly type?: string | undefined } | undefined;
}

export interface FeatureSettings {
  /** Size of the hashed feature space; a power of two. */
  readonly buckets: number;
  /** Word bigrams on (unigrams always are). */
  readonly wordBigrams: boolean;
  /** Character n-grams per word, from min to max length (min 0: none). */
  readonly charNgramMin: number;
  readonly charNgramMax: number;
  /** JSON body fields read as text, in order. */
  readonly textFields: readonly string[];
  /** Request headers (lowercase names) whose value is a feature. */
  readonly headers: readonly string[];
  /** Text characters read per request (all text fields and the file name together). */
  readonly maxTextChars: number;
  /** Digits become 0 (ids and dates generalise). */
  readonly foldDigits: boolean;
  /**
   * Accented Latin letters become their base letter ("é" -> "e", "ü" -> "u"), so "réseau",
   * "reseau" and "Réseau" are one word (typed with or without accents). Absent in models
   * trained before it (off).
   */
  readonly foldAccents?: boolean | undefined;
  /**
   * A domain lexicon of lexicon.ts by name: a word of one of its groups also emits the group's
   * concept (synonyms and translations share weight). Absent in older models (none).
   */
  readonly lexicon?: string | undefined;
}

export const DEFAULT_FEATURE_SETTINGS: FeatureSettings = Object.freeze({
  buckets: 1 << 17,
  wordBigrams: true,
  charNgramMin: 3,
  charNgramMax: 5,
  textFields: Object.freeze(['query', 'prompt', 'message']),
  headers: Object.freeze(['x-client-app']),
  maxTextChars: 256,
  foldDigits: true,
  foldAccents: true,
  lexicon: 'domain-3',
});

/** Longest word kept whole for character n-grams (longer words still count as words). */
const MAX_WORD = 32;
/** Markers around a word for its character n-grams: "<word>". */
const BOW = 1;
const EOW = 2;
/** Items read from an array-valued text field (e.g. a list of messages). */
const MAX_ARRAY_ITEMS = 16;
/** Characters of a header value or a media type that count. */
const MAX_VALUE_CHARS = 64;

/**
 * A character folded for features: lowercase letter, digit (0 when folded), any other
 * non-punctuation code unit as is; -1 for a separator.
 */
function fold(c: number, foldDigits: boolean): number {
  if (c < 128) {
    if (c >= 97 && c <= 122) return c;
    if (c >= 65 && c <= 90) return c + 32;
    if (c >= 48 && c <= 57) return foldDigits ? 48 : c;
    return -1;
  }
  if (c === 0xa0 || c === 0xad || c === 0xd7 || c === 0xf7) return -1;
  if (c < 0xc0) return -1; // Latin-1 punctuation and symbols
  if (c <= 0xde) return c + 32; // Latin-1 capitals
  if (c >= 0x391 && c <= 0x3a9) return c + 32; // Greek capitals
  if (c >= 0x410 && c <= 0x42f) return c + 32; // Cyrillic capitals
  if (c >= 0x2000 && c <= 0x206f) return -1; // general punctuation, dashes, quotes
  if (c >= 0x3000 && c <= 0x303f) return -1; // CJK punctuation
  if (c >= 0xfe30 && c <= 0xfe4f) return -1;
  if (c >= 0xff00 && c <= 0xff0f) return -1;
  if (c >= 0xd800 && c <= 0xdfff) return -1; // surrogates (emoji and the like)
  return c;
}

/**
 * Base letter of each accented Latin letter from U+00C0 to U+024F, lowercased ("Ł" -> "ł",
 * "Ś" -> "s"), 0 where it stays as it is (ß, æ, ø, ...): built once from Unicode's canonical decomposition, so the hot path is
 * one array read.
 */
const ACCENT_BASE = (() => {
  const table = new Uint16Array(0x250);
  for (let c = 0xc0; c < 0x250; c++) {
    // lowercase first (fold() lowercases Latin-1 only), then drop the combining marks
    const d = String.fromCharCode(c).toLowerCase().normalize('NFD').charCodeAt(0);
    if (d !== c) table[c] = d;
  }
  return table;
})();

/**
 * A lexicon's keys as an open-addressing table over typed arrays: key hash -> concept feature
 * (and the concept's name, for explain). A Map lookup per word measurably slowed predictions.
 */
class ConceptTable {
  readonly keys: Int32Array;
  readonly values: Int32Array;
  readonly used: Uint8Array;
  readonly names: string[];
  readonly #mask: number;

  constructor(table: ReadonlyMap<number, { hash: number; concept: string }>) {
    let size = 16;
    while (size < table.size * 4) size *= 2;
    this.#mask = size - 1;
    this.keys = new Int32Array(size);
    this.values = new Int32Array(size);
    this.used = new Uint8Array(size);
    this.names = new Array<string>(size).fill('');
    for (const [key, entry] of table) {
      let slot = fmix32(key) & this.#mask;
      while (this.used[slot] === 1) slot = (slot + 1) & this.#mask;
      this.used[slot] = 1;
      this.keys[slot] = key;
      this.values[slot] = entry.hash;
      this.names[slot] = entry.concept;
    }
  }

  /** The slot of `key`, or -1. */
  find(key: number): number {
    for (let slot = fmix32(key) & this.#mask; this.used[slot] === 1; slot = (slot + 1) & this.#mask) {
      if (this.keys[slot] === key) return slot;
    }
    return -1;
  }
}

/** Letters-in-any-order key of a folded word: its first letter, then the others as a multiset (a sum of mixed codes), and its length. */
function anagramKey(word: ArrayLike<number>, len: number): number {
  let sum = 0;
  for (let i = 1; i < len; i++) sum = (sum + fmix32(word[i]! + 0x9e3779b9)) | 0;
  return fmix32(sum ^ Math.imul(word[0]! + 1, 0x01000193) ^ (len << 24));
}

/** Lowercase ASCII, for header values, paths and media types. */
function lower(c: number): number {
  return c >= 65 && c <= 90 ? c + 32 : c;
}

export class FeatureExtractor {
  readonly settings: FeatureSettings;
  /** Bucket of each feature of the last extraction. */
  readonly index: Int32Array;
  /** Sign of each feature (+1 or -1). */
  readonly sign: Float32Array;
  /** Features in the last extraction. */
  count = 0;
  /** Set to an array to record a readable name per feature (explain); null on the hot path. */
  names: string[] | null = null;

  readonly #mask: number;
  readonly #capacity: number;
  readonly #word = new Int32Array(MAX_WORD);
  readonly #headerSeeds: Int32Array;
  readonly #headerNames: readonly string[];
  readonly #fieldNames: readonly string[];
  /** The lexicon's whole words, stems and letters-in-any-order keys (null: none). */
  readonly #lexWords: ConceptTable | null = null;
  readonly #lexStems: ConceptTable | null = null;
  readonly #lexAnagrams: ConceptTable | null = null;
  readonly #anagramMin: number = 0;
  #budget = 0;
  #prevWord = 0;
  #hasPrev = false;

  constructor(settings: FeatureSettings) {
    if (!Number.isInteger(Math.log2(settings.buckets))) throw new RangeError('buckets must be a power of two');
    this.settings = settings;
    this.#mask = settings.buckets - 1;
    const grams = settings.charNgramMin > 0 ? settings.charNgramMax - settings.charNgramMin + 1 : 0;
    // Upper bound: per text character at most one word, one bigram, one lexicon concept and `grams` n-grams, plus the fixed features.
    this.#capacity = settings.maxTextChars * (3 + grams) + 2 * MAX_ARRAY_ITEMS + settings.headers.length + 64;
    this.index = new Int32Array(this.#capacity);
    this.sign = new Float32Array(this.#capacity);
    this.#headerNames = settings.headers.map((h) => h.toLowerCase());
    this.#headerSeeds = Int32Array.from(this.#headerNames, (h) => fnvString(`${h}=`, NS.header));
    this.#fieldNames = settings.textFields;
    if (settings.lexicon !== undefined) {
      const conceptHash = (c: string) => fnvString(c, NS.lexicon);
      this.#lexWords = new ConceptTable(lexiconTable(settings.lexicon, (w) => this.#hashWord(w), conceptHash));
      const stems = lexiconStemTable(settings.lexicon, (w) => this.#hashWord(w), conceptHash);
      if (stems.size > 0) this.#lexStems = new ConceptTable(stems);
      const min = LEXICON_MATCHING[settings.lexicon]?.anagramMinLength ?? 0;
      const anagrams = lexiconAnagramTable(settings.lexicon, (w) => {
        const folded = this.#foldWord(w);
        return folded.length >= min && folded.length <= MAX_WORD ? anagramKey(folded, folded.length) : undefined;
      }, conceptHash);
      if (anagrams.size > 0) {
        this.#lexAnagrams = new ConceptTable(anagrams);
        this.#anagramMin = min;
      }
    }
  }

  /** The characters #text keeps of a word (for the lexicon: same folding). */
  #foldWord(word: string): number[] {
    const out: number[] = [];
    for (let i = 0; i < word.length; i++) {
      let c = fold(word.charCodeAt(i), this.settings.foldDigits);
      if (this.settings.foldAccents === true && c >= 0xc0 && c < 0x250 && ACCENT_BASE[c]! !== 0) c = ACCENT_BASE[c]!;
      if (c >= 0) out.push(c);
    }
    return out;
  }

  /** The hash #text gives a whole word (for the lexicon: same folding, same seed). */
  #hashWord(word: string): number {
    let h = NS.word;
    for (const c of this.#foldWord(word)) h = fnvStep(h, c);
    return h;
  }

  /** Extract the features of one request into `index`/`sign`; returns their count. */
  extract(input: RoutingInput): number {
    this.count = 0;
    this.#budget = this.settings.maxTextChars;
    if (this.names !== null) this.names.length = 0;

    let hasText = false;
    const body = input.body;
    if (body !== null && typeof body === 'object' && !Array.isArray(body)) {
      const fields = this.#fieldNames;
      for (let f = 0; f < fields.length; f++) {
        if (this.#textValue((body as Record<string, unknown>)[fields[f]!])) hasText = true;
      }
    }
    const file = input.file;
    if (file !== undefined && file !== null) {
      this.#emitConst(NS.hasFile, 'file?');
      if (typeof file.name === 'string' && file.name.length > 0) {
        if (this.#text(file.name)) hasText = true;
        this.#fileExtension(file.name);
      }
      if (typeof file.type === 'string' && file.type.length > 0) this.#fileType(file.type);
    }
    if (hasText) this.#emitConst(NS.hasText, 'text?');

    this.#simple(NS.method, input.method, 'method');
    this.#path(input.path);
    if (input.contentType !== undefined) this.#mediaType(NS.contentType, input.contentType, 'content-type');
    const headers = input.headers;
    if (headers !== undefined) {
      for (let i = 0; i < this.#headerNames.length; i++) {
        const raw = headers[this.#headerNames[i]!];
        const value = typeof raw === 'string' ? raw : raw !== undefined ? raw[0] : undefined;
        if (value !== undefined && value.length > 0) this.#simple(this.#headerSeeds[i]!, value, this.#headerNames[i]!);
      }
    }
    return this.count;
  }

  #emit(h: number): void {
    if (this.count >= this.#capacity) return;
    const m = fmix32(h);
    this.index[this.count] = m & this.#mask;
    this.sign[this.count] = m < 0 ? -1 : 1;
    this.count++;
  }

  #emitConst(seed: number, name: string): void {
    if (this.names !== null) this.names.push(name);
    this.#emit(seed);
  }

  /** A text field's value: a string, or text/content of an object, or a list of those. */
  #textValue(v: unknown): boolean {
    if (typeof v === 'string') return this.#text(v);
    if (v === null || typeof v !== 'object') return false;
    if (Array.isArray(v)) {
      let any = false;
      const n = v.length < MAX_ARRAY_ITEMS ? v.length : MAX_ARRAY_ITEMS;
      for (let i = 0; i < n; i++) if (this.#textItem(v[i])) any = true;
      return any;
    }
    return this.#textItem(v);
  }

  #textItem(v: unknown): boolean {
    if (typeof v === 'string') return this.#text(v);
    if (v === null || typeof v !== 'object') return false;
    const o = v as Record<string, unknown>;
    if (typeof o.content === 'string') return this.#text(o.content);
    if (typeof o.text === 'string') return this.#text(o.text);
    return false;
  }

  /** Words, bigrams and character n-grams of a text, within the remaining character budget. */
  #text(s: string): boolean {
    const n = s.length < this.#budget ? s.length : this.#budget;
    if (n <= 0) return false;
    this.#budget -= n;
    const foldDigits = this.settings.foldDigits;
    const foldAccents = this.settings.foldAccents === true;
    const word = this.#word;
    this.#hasPrev = false;
    let len = 0;
    let h = NS.word;
    let any = false;
    for (let i = 0; i <= n; i++) {
      let c = i < n ? fold(s.charCodeAt(i), foldDigits) : -1;
      if (foldAccents && c >= 0xc0 && c < 0x250) {
        // Latin Extended-A/B capitals are odd/even pairs: fold() leaves them, the table maps both.
        const base = ACCENT_BASE[c]!;
        if (base !== 0) c = base;
      }
      if (c >= 0) {
        if (len < MAX_WORD) word[len] = c;
        len++;
        h = fnvStep(h, c);
      } else if (len > 0) {
        this.#endWord(h, len);
        any = true;
        len = 0;
        h = NS.word;
      }
    }
    return any;
  }

  #endWord(h: number, len: number): void {
    const recording = this.names !== null;
    const kept = len < MAX_WORD ? len : MAX_WORD;
    const word = this.#word;
    if (recording) this.names!.push(`word:${this.#wordText(0, kept)}`);
    this.#emit(h);
    if (this.settings.wordBigrams && this.#hasPrev) {
      if (recording) this.names!.push(`bigram:${this.#lastWordName ?? '?'} ${this.#wordText(0, kept)}`);
      this.#emit(combine(this.#prevWord ^ NS.bigram, h));
    }
    if (this.#lexWords !== null) {
      // One concept per word: the whole word, else its longest stem, else a lexicon word with its letters in another order.
      let table = this.#lexWords;
      let slot = table.find(h);
      let how = '';
      if (slot < 0 && this.#lexStems !== null && len > STEM_MIN) {
        table = this.#lexStems;
        slot = this.#stemSlot(table, len < kept ? len : kept);
        how = ' (stem)';
      }
      if (slot < 0 && this.#lexAnagrams !== null && len >= this.#anagramMin && len <= MAX_WORD) {
        table = this.#lexAnagrams;
        slot = table.find(anagramKey(word, len));
        how = ' (letters)';
      }
      if (slot >= 0) {
        if (recording) this.names!.push(`lexicon:${table.names[slot]}${how}`);
        this.#emit(table.values[slot]!);
      }
    }
    this.#prevWord = h;
    this.#hasPrev = true;
    if (recording) this.#lastWordName = this.#wordText(0, kept);

    const min = this.settings.charNgramMin;
    if (min <= 0) return;
    const total = kept + 2; // with the markers
    const max = this.settings.charNgramMax;
    for (let g = min; g <= max && g <= total; g++) {
      for (let start = 0; start + g <= total; start++) {
        let ch = fnvStep(NS.char, g);
        for (let k = start; k < start + g; k++) {
          ch = fnvStep(ch, k === 0 ? BOW : k === total - 1 ? EOW : word[k - 1]!);
        }
        if (recording) this.names!.push(`chars:${this.#gramText(start, g, total)} (${this.#lastWordName})`);
        this.#emit(ch);
      }
    }
  }

  #lastWordName: string | null = null;

  /** The slot of the longest stem that the current word (of `len` kept characters) starts with and is longer than, or -1. */
  #stemSlot(stems: ConceptTable, len: number): number {
    const word = this.#word;
    const n = len - 1 < STEM_MAX ? len - 1 : STEM_MAX;
    let h = NS.word;
    let found = -1;
    for (let i = 0; i < n; i++) {
      h = fnvStep(h, word[i]!);
      if (i + 1 >= STEM_MIN) {
        const slot = stems.find(h);
        if (slot >= 0) found = slot;
      }
    }
    return found;
  }

  #wordText(from: number, to: number): string {
    let out = '';
    for (let i = from; i < to; i++) out += String.fromCharCode(this.#word[i]!);
    return out;
  }

  #gramText(start: number, g: number, total: number): string {
    let out = '';
    for (let k = start; k < start + g; k++) out += k === 0 ? '<' : k === total - 1 ? '>' : String.fromCharCode(this.#word[k - 1]!);
    return out;
  }

  /** A short value hashed whole, lowercased (method, header value). */
  #simple(seed: number, value: string, name: string): void {
    let h = seed;
    const n = value.length < MAX_VALUE_CHARS ? value.length : MAX_VALUE_CHARS;
    for (let i = 0; i < n; i++) h = fnvStep(h, lower(value.charCodeAt(i)));
    if (this.names !== null) this.names.push(`${name}=${value.slice(0, n).toLowerCase()}`);
    this.#emit(h);
  }

  /** A media type without parameters ("multipart/form-data; boundary=..." -> "multipart/form-data"). */
  #mediaType(seed: number, value: string, name: string): void {
    let h = seed;
    let i = 0;
    while (i < value.length && value.charCodeAt(i) === 32) i++;
    const start = i;
    for (; i < value.length && i - start < MAX_VALUE_CHARS; i++) {
      const c = value.charCodeAt(i);
      if (c === 59 || c === 32) break; // ';' or ' '
      h = fnvStep(h, lower(c));
    }
    if (this.names !== null) this.names.push(`${name}=${value.slice(start, i).toLowerCase()}`);
    this.#emit(h);
  }

  /** The whole path and each of its segments (query string ignored), lowercased, digits folded. */
  #path(path: string): void {
    const foldDigits = this.settings.foldDigits;
    let whole = NS.path;
    let seg = NS.pathSegment;
    let segLen = 0;
    let segStart = 0;
    const n = path.length < 256 ? path.length : 256;
    for (let i = 0; i <= n; i++) {
      const c = i < n ? path.charCodeAt(i) : 47;
      if (c === 63) {
        // '?': the query string does not count
        if (segLen > 0) this.#segment(seg, path, segStart, i);
        break;
      }
      const f = c >= 48 && c <= 57 && foldDigits ? 48 : lower(c);
      if (i < n) whole = fnvStep(whole, f);
      if (c === 47) {
        if (segLen > 0) this.#segment(seg, path, segStart, i);
        seg = NS.pathSegment;
        segLen = 0;
        segStart = i + 1;
      } else {
        seg = fnvStep(seg, f);
        segLen++;
      }
    }
    if (this.names !== null) this.names.push(`path=${path.split('?', 1)[0]!.toLowerCase()}`);
    this.#emit(whole);
  }

  #segment(h: number, path: string, from: number, to: number): void {
    if (this.names !== null) this.names.push(`path-segment=${path.slice(from, to).toLowerCase()}`);
    this.#emit(h);
  }

  #fileExtension(name: string): void {
    const dot = name.lastIndexOf('.');
    if (dot < 0 || dot === name.length - 1 || name.length - dot > 12) return;
    let h = NS.fileExt;
    for (let i = dot + 1; i < name.length; i++) h = fnvStep(h, lower(name.charCodeAt(i)));
    if (this.names !== null) this.names.push(`file-ext=${name.slice(dot + 1).toLowerCase()}`);
    this.#emit(h);
  }

  #fileType(type: string): void {
    this.#mediaType(NS.fileType, type, 'file-type');
    let h = NS.fileMajorType;
    let i = 0;
    for (; i < type.length && i < MAX_VALUE_CHARS; i++) {
      const c = type.charCodeAt(i);
      if (c === 47 || c === 59) break;
      h = fnvStep(h, lower(c));
    }
    if (this.names !== null) this.names.push(`file-major-type=${type.slice(0, i).toLowerCase()}`);
    this.#emit(h);
  }
}
