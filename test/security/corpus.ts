/**
 * The labelled corpus (test/security/corpus/*.jsonl) and how its entries are placed into
 * requests. Shared by the in-process detection test and, later, a run against the live gateway:
 * `samples()` yields ready-made requests (path, query string, headers, JSON body, route options).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { InjectionRule, InspectInput, InspectOptions } from '../../src/security/detect/index.js';

export type Placement = 'path' | 'query' | 'header' | 'body';

export interface CorpusEntry {
  /** The value (payload or benign text). */
  readonly v: string;
  /** Sub-category inside the file (e.g. "union", "encoded", "tricky-issue"). */
  readonly cat?: string;
  /** Where the value goes; absent: the file's default placements. */
  readonly at?: readonly Placement[];
  /** `text`: the value is sent in a text-mode field (`field`) as /v1/query does. */
  readonly mode?: 'text';
  readonly field?: string;
  /** For the `header` placement: the header that carries the value (default: chosen by the value's shape). */
  readonly header?: string;
  /** The attack class of this entry, in files that mix classes (attacks-headers.jsonl). */
  readonly cls?: InjectionRule;
}

export type CorpusFile =
  /** `cls` absent: each entry names its class. `at`: the file's default placements. */
  | { readonly file: string; readonly label: 'attack'; readonly cls?: InjectionRule; readonly at?: readonly Placement[] }
  | { readonly file: string; readonly label: 'benign'; readonly kind: 'text' | 'code' };

export const MAIN_CORPUS: readonly CorpusFile[] = [
  { file: 'attacks-sqli.jsonl', label: 'attack', cls: 'sql_injection' },
  { file: 'attacks-xss.jsonl', label: 'attack', cls: 'xss' },
  { file: 'attacks-traversal.jsonl', label: 'attack', cls: 'path_traversal' },
  { file: 'attacks-command.jsonl', label: 'attack', cls: 'command_injection' },
  { file: 'benign.jsonl', label: 'benign', kind: 'text' },
  { file: 'benign-code.jsonl', label: 'benign', kind: 'code' },
  // issue 11, item 9: evasions that passed, each a class of its own, and benign values near them
  { file: 'attacks-sqli-numeric.jsonl', label: 'attack', cls: 'sql_injection' },
  { file: 'attacks-command-obfuscated.jsonl', label: 'attack', cls: 'command_injection' },
  { file: 'attacks-traversal-unicode.jsonl', label: 'attack', cls: 'path_traversal' },
  { file: 'attacks-headers.jsonl', label: 'attack', at: ['header'] },
  { file: 'benign-near-evasions.jsonl', label: 'benign', kind: 'text' },
  // header injection (CRLF, response splitting) in the path, query and headers
  { file: 'attacks-header-injection.jsonl', label: 'attack', cls: 'header_injection' },
  // XML documents whose DTD declares entities or loads one, and XInclude, in a field or parameter
  { file: 'attacks-xml-entities.jsonl', label: 'attack', cls: 'xml_entity' },
];

export const HOLDOUT_CORPUS: readonly CorpusFile[] = [
  { file: 'holdout-sqli.jsonl', label: 'attack', cls: 'sql_injection' },
  { file: 'holdout-xss.jsonl', label: 'attack', cls: 'xss' },
  { file: 'holdout-traversal.jsonl', label: 'attack', cls: 'path_traversal' },
  { file: 'holdout-command.jsonl', label: 'attack', cls: 'command_injection' },
  { file: 'holdout-header-injection.jsonl', label: 'attack', cls: 'header_injection' },
  { file: 'holdout-xml-entities.jsonl', label: 'attack', cls: 'xml_entity' },
  { file: 'holdout-benign.jsonl', label: 'benign', kind: 'text' },
];

const DEFAULT_PLACEMENTS: Readonly<Record<InjectionRule | 'benign', readonly Placement[]>> = {
  sql_injection: ['query', 'body', 'header'],
  xss: ['query', 'body', 'header'],
  path_traversal: ['path', 'query', 'body'],
  command_injection: ['query', 'body', 'header'],
  // Not the body: there a line break before `Location:` is multi-line text (src/security/detect/header-injection.ts).
  header_injection: ['path', 'query', 'header'],
  xml_entity: ['query', 'body'],
  // Keys, not values: tested in test/security/detect.test.ts and the body-inspection tests.
  prototype_pollution: [],
  benign: ['query', 'body'],
};

/** The /v1/query text fields (text mode by default) and the free-text field used for snippets. */
export const TEXT_FIELDS: ReadonlySet<string> = new Set(['query', 'prompt', 'message']);
export const FREE_TEXT_FIELDS: ReadonlySet<string> = new Set(['code']);

const CORPUS_DIR = fileURLToPath(new URL('./corpus/', import.meta.url));

export function loadCorpusFile(file: string): CorpusEntry[] {
  const text = readFileSync(CORPUS_DIR + file, 'utf8');
  const entries: CorpusEntry[] = [];
  for (const [i, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue;
    const entry = JSON.parse(line) as CorpusEntry;
    if (typeof entry.v !== 'string' || entry.v === '') throw new Error(`${file}:${i + 1}: entry without a value`);
    entries.push(entry);
  }
  return entries;
}

/** Characters a client cannot send raw in a request-target; everything else is kept as written. */
function toRawPath(value: string): string {
  let out = '';
  for (const ch of value) {
    const code = ch.codePointAt(0) ?? 0;
    if (code <= 0x20 || code >= 0x7f || '"<>`{}|^#?'.includes(ch)) out += encodeURIComponent(ch);
    else out += ch;
  }
  return out;
}

/** Header values cannot carry CR/LF or non-Latin-1 characters, and are trimmed by parsers. */
function headerPlaceable(value: string): boolean {
  return /^[\t\x20-\x7e\x80-\xff]*$/.test(value) && value.trim() !== '';
}

function headerNameFor(value: string, named?: string): string {
  if (named !== undefined) return named;
  if (/^https?:\/\//.test(value)) return 'referer';
  if (/^[\d., ]+$/.test(value)) return 'x-forwarded-for';
  if (/^[\w.-]+\/[\w.]/.test(value)) return 'user-agent';
  return 'x-client-context';
}

export interface Sample {
  readonly file: string;
  readonly label: 'attack' | 'benign';
  readonly cls?: InjectionRule;
  readonly cat: string;
  readonly value: string;
  readonly placement: Placement;
  /** True when the sample runs in text mode (a /v1/query text field). */
  readonly textMode: boolean;
  readonly request: InspectInput;
  readonly options: InspectOptions;
}

const BASE_HEADERS = { host: 'gateway.example', accept: 'application/json', 'content-type': 'application/json' };

function strictOptions(): InspectOptions {
  return { mode: 'strict', textFields: TEXT_FIELDS, freeTextFields: FREE_TEXT_FIELDS };
}

/**
 * A request carrying `value` at `placement`. `textField` puts a body value into that text-mode
 * field (as a /v1/query client would); otherwise body values go into an ordinary nested field.
 */
export function placeValue(
  value: string,
  placement: Placement,
  textField?: string,
  header?: string,
): { request: InspectInput; options: InspectOptions } | null {
  const options = strictOptions();
  switch (placement) {
    case 'path':
      return {
        request: { path: value.startsWith('/v1/') ? value : `/v1/knowledge/documents/${toRawPath(value)}`, query: '', headers: BASE_HEADERS },
        options,
      };
    case 'query':
      return {
        request: { path: '/v1/knowledge/search', query: `q=${encodeURIComponent(value)}&limit=10&lang=en`, headers: BASE_HEADERS },
        options,
      };
    case 'header': {
      if (!headerPlaceable(value)) return null;
      const trimmed = value.trim();
      return { request: { path: '/v1/twin/chat', query: '', headers: { ...BASE_HEADERS, [headerNameFor(trimmed, header)]: trimmed } }, options };
    }
    case 'body': {
      const body =
        textField !== undefined
          ? { [textField]: value, options: { stream: false, topK: 5 } }
          : { request: { text: value, lang: 'en' }, tags: ['notes', 'assistant'], priority: 2 };
      return { request: { path: textField !== undefined ? '/v1/query' : '/v1/twin/notes', query: '', headers: BASE_HEADERS, body }, options };
    }
  }
}

/** Every (entry, placement) of the given corpus files as a request. */
export function* samples(files: readonly CorpusFile[]): Generator<Sample> {
  for (const f of files) {
    for (const entry of loadCorpusFile(f.file)) {
      const cat = entry.cat ?? '';
      if (f.label === 'benign' && f.kind === 'code') {
        // Code snippets go into the free-text `code` field, next to an ordinary strict field.
        const body = { code: entry.v, question: 'why does this not work?', language: 'auto' };
        yield {
          file: f.file, label: 'benign', cat, value: entry.v, placement: 'body', textMode: false,
          request: { path: '/v1/knowledge/ask', query: '', headers: BASE_HEADERS, body },
          options: strictOptions(),
        };
        continue;
      }
      const cls = f.label === 'attack' ? (entry.cls ?? f.cls) : undefined;
      if (f.label === 'attack' && cls === undefined) throw new Error(`${f.file}: an entry without a class: ${JSON.stringify(entry.v)}`);
      const placements = entry.at ?? (f.label === 'attack' ? f.at : undefined) ?? DEFAULT_PLACEMENTS[cls ?? 'benign'];
      for (const placement of placements) {
        const textField = entry.mode === 'text' ? (entry.field ?? 'query') : undefined;
        const placed = placeValue(entry.v, placement, textField, entry.header);
        if (placed === null) continue;
        yield {
          file: f.file,
          label: f.label,
          ...(cls !== undefined ? { cls } : {}),
          cat,
          value: entry.v,
          placement,
          textMode: textField !== undefined,
          ...placed,
        };
      }
    }
  }
}
