/**
 * Adversarial inputs for the linear-time check of the input detectors (issue 11, item 1): the
 * shapes that made the original detectors backtrack (a `:` followed by many spaces or `+`, runs
 * of newlines, runs of dots, a markdown table row of commands, unclosed brackets...) and random
 * mixes of the characters the detectors react to. Shared by test/security/linear-time.test.ts and
 * `npm run bench:validation -- --adversarial`.
 *
 * Every shape is a function of the wanted length, deterministic (seeded), so runs compare.
 */
import {
  detectCommandInjection,
  detectHeaderInjection,
  detectSqlInjection,
  detectTraversal,
  detectXmlEntities,
  detectXss,
  inspectRequest,
  isPrototypeKey,
  inspectValue,
  type InspectOptions,
} from '../../src/security/detect/index.js';
import { prng } from '../../src/routing/model/trainer.js';
import { markupDecode, percentDecode } from '../../src/security/detect/decode.js';

/** `unit` repeated (after `head`) until the string is `size` long, then `tail`. */
function fill(size: number, unit: string, head = '', tail = ''): string {
  const body = size - head.length - tail.length;
  return head + unit.repeat(Math.max(0, Math.ceil(body / unit.length))).slice(0, Math.max(0, body)) + tail;
}

/**
 * A random concatenation of `tokens` (1,000 characters, seeded) repeated up to `size`
 * characters. Repeated rather than drawn anew at each size: the 1 MB input then has the same mix
 * as the 100 KB one, instead of more chances of a rare combination that turns on one more
 * (linear) decoding round, which would blur the growth ratio the test measures.
 */
function mix(tokens: readonly string[], seed: number): (size: number) => string {
  const next = prng(seed);
  const parts: string[] = [];
  let length = 0;
  while (length < 1000) {
    const t = tokens[Math.floor(next() * tokens.length)] as string;
    parts.push(t);
    length += t.length;
  }
  const block = parts.join('').slice(0, 1000);
  return (size) => fill(size, block);
}

const TRIGGERS = {
  css: [':', '=', ' ', '+', '"', "'", '\t', 'expression', 'behavior', 'url', '(', 'x'],
  shell: ['\n', ' ', '\t', '{', ';', '|', '&', '`', '$', '(', ')', 'id', 'a', ',', '/', '?', '*', "'", '\\', '\r'],
  path: ['.', '..', '/', '\\', ';', ' ', '%2e', '%2f', '%25', 'a', '\u2025', '\uff0e', '=', ':', 'etc'],
  sql: ["'", '"', '[', '`', '/*', '*/', '--', '#', ' or ', ' and ', '1', '=', '(', ')', '@', 'union', 'select', ';', ' ', '\\'],
  markup: ['<', '>', 'a', ' ', 'on', 'onerror', '=', '"', "'", '`', '&#', '&', '%', '\\u', '\\x', '+AD', 'javascript', ':', '\t', '{{', '${', '}'],
  all: [
    "'", '"', ':', '=', ' ', '+', '\n', '.', '/', '\\', '|', '$', '{', '}', '<', '>', '%', '`', ';', '&', '(', ')', '[', ']',
    '#', '-', '@', '*', '?', ',', ' or ', ' and ', 'union', 'select', 'id', 'on', 'expression', '..', '%2e', '&#', '\t', 'a', '1',
  ],
} as const;

/** Named shapes: each a function of the wanted length. */
export const SHAPES: Readonly<Record<string, (size: number) => string>> = {
  'colon+spaces': (n) => fill(n, ' ', ':', 'x'),
  'colon+plus': (n) => fill(n, '+', ':', 'x'),
  'equals+spaces+quote': (n) => fill(n, ' ', '= "', 'x'),
  'colon-space runs': (n) => fill(n, ':' + ' '.repeat(999)),
  newlines: (n) => fill(n, '\n', 'a', 'x'),
  'newline-space runs': (n) => fill(n, '\n \t', ';', 'x'),
  'separators+spaces': (n) => fill(n, ' ', '; ', 'x'),
  spaces: (n) => fill(n, ' ', 'a', 'x'),
  'spaces in braces': (n) => fill(n, ' ', '{{a', 'x'),
  dots: (n) => fill(n, '.', '', 'x'),
  'dots, then ../': (n) => fill(n, '.', 'see ', ' ../x'),
  'dots after slash': (n) => fill(n, '.', 'a/', 'x'),
  'dot runs': (n) => fill(n, '.'.repeat(500) + 'x'),
  'dotdot-semicolons': (n) => fill(n, '..;', '', 'x'),
  'markdown table row': (n) => fill(n, ' id |', '|', ''),
  'pipes + commands': (n) => fill(n, '| id ', 'a ', ''),
  'open brackets': (n) => fill(n, '[', "' ", ''),
  'brackets after (': (n) => fill(n, '[', '( ', ''),
  backticks: (n) => fill(n, ' `a', '', ''),
  'percent-25': (n) => fill(n, '%25', '', ''),
  'entity-amp': (n) => fill(n, '&amp;', '', ''),
  'tag opens': (n) => fill(n, '<a ', '', ''),
  'quotes + on': (n) => fill(n, '" on', '', ''),
  'template braces': (n) => fill(n, '{{ a ', '', ''),
  'unicode dots': (n) => fill(n, '\u2025\uff0e', '', 'x'),
  'line breaks before a name': (n) => fill(n, '\r\n \t', 'x-', 'x'),
  'broken header lines': (n) => fill(n, '\r\nset-cookie', ' ', 'x'),
  'broken status lines': (n) => fill(n, '\nHTTP/1.1 ', '', 'x'),
  'lookalike breaks': (n) => fill(n, '\u010a\u560d\u2028', 'content-', 'x'),
  'long names after breaks': (n) => fill(n, '\nx-' + 'a'.repeat(200)),
  'doctype heads': (n) => fill(n, ' system public', '<!DOCTYPE r', ''),
  'doctype literals': (n) => fill(n, '"\'', '<!doctype r system ', ''),
  'doctypes': (n) => fill(n, '<!doctype ', '<', ''),
  'random css': mix(TRIGGERS.css, 1),
  'random shell': mix(TRIGGERS.shell, 2),
  'random path': mix(TRIGGERS.path, 3),
  'random sql': mix(TRIGGERS.sql, 4),
  'random markup': mix(TRIGGERS.markup, 5),
  'random all': mix(TRIGGERS.all, 6),
  'random all (2)': mix(TRIGGERS.all, 7),
  'random all (3)': mix(TRIGGERS.all, 8),
  'random all (4)': mix(TRIGGERS.all, 9),
};

const STRICT: InspectOptions = { mode: 'strict' };
const TEXT_ROUTE: InspectOptions = { mode: 'strict', textFields: new Set(['query']) };
const HEADERS = { host: 'gateway.example', accept: 'application/json' };

/**
 * Every detector and entry point, each taking one input string. The budget of inspectValue /
 * inspectRequest is raised here so the detectors behind them are exercised at 1 MB.
 */
export const TARGETS: Readonly<Record<string, (s: string) => unknown>> = {
  detectXss: (s) => detectXss(s),
  detectCommandInjection: (s) => detectCommandInjection(s),
  detectHeaderInjection: (s) => detectHeaderInjection(s),
  detectXmlEntities: (s) => detectXmlEntities(s),
  isPrototypeKey: (s) => isPrototypeKey(s),
  detectSqlInjection: (s) => detectSqlInjection(s, s),
  'detectTraversal (body)': (s) => detectTraversal(s, s, 'body'),
  'detectTraversal (path)': (s) => detectTraversal(s, s, 'path'),
  percentDecode: (s) => percentDecode(s),
  markupDecode: (s) => markupDecode(s),
  'inspectValue (strict)': (s) => inspectValue(s, 'strict', 'body'),
  'inspectValue (text)': (s) => inspectValue(s, 'text', 'query'),
  'inspectRequest (body)': (s) => inspectRequest({ path: '/v1/twin/notes', query: '', headers: HEADERS, body: { text: s } }, STRICT),
  'inspectRequest (raw query)': (s) => inspectRequest({ path: '/v1/knowledge/search', query: `q=${s}`, headers: HEADERS }, STRICT),
  'inspectRequest (query)': (s) => inspectRequest({ path: '/v1/knowledge/search', query: `q=${encodeURIComponent(s)}`, headers: HEADERS }, STRICT),
  'inspectRequest (header)': (s) => inspectRequest({ path: '/v1/twin/chat', query: '', headers: { ...HEADERS, 'x-client-context': s } }, STRICT),
  'inspectRequest (text field)': (s) => inspectRequest({ path: '/v1/query', query: '', headers: HEADERS, body: { query: s } }, TEXT_ROUTE),
};

/** Milliseconds of one call (best of `reps`, stopping early once one call exceeds `longMs`). */
export function timeCall(fn: (s: string) => unknown, input: string, reps: number, longMs = 1000): number {
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < reps; r++) {
    const t0 = process.hrtime.bigint();
    fn(input);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (ms < best) best = ms;
    if (ms > longMs) break;
  }
  return best;
}
