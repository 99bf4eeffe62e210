/**
 * Input validation: pure functions that look at the parts of a request that reach an upstream
 * (path, query string, user-data headers, JSON body string values and keys) and name the first
 * attack class they find. No I/O, no state; the Fastify hook that calls this lives elsewhere.
 *
 * Modes (per route, `validation:` in the route table; per field via textFields/freeTextFields):
 * - `strict` (default everywhere): SQL injection, command injection, XSS, path traversal,
 *   header injection (CRLF) in the path, query and headers, and XML documents whose DTD
 *   declares entities. Built to let natural language through: the detectors look for attack
 *   syntax, not keywords.
 * - in every mode but `off`: keys that reach an object's prototype (`__proto__`,
 *   `constructor.prototype`) in the query and in bodies, which Fastify refuses in its own JSON.
 * - `text` (default for the `query`/`prompt`/`message` fields of /v1/query): XSS and path
 *   traversal only. SQL and shell are things people legitimately write *about* to an AI
 *   ("why does ' OR 1=1 -- show up in my logs?", "what does `ps aux | grep node` do?"), and the
 *   services receive that text as language, never as SQL or shell. Script injection and
 *   traversal stay blocked because the text may be rendered in a browser or used as a path.
 * - free-text fields (`freeTextFields`, e.g. a `code` field holding a snippet): not inspected at
 *   all. A snippet may legitimately contain `<script>`, `' OR 1=1`, `../` and `| sh`; the route
 *   that declares the field takes responsibility for treating it as inert data.
 * - `off`: nothing is inspected.
 *
 * A finding names the rule class, where it was found and the field name (query parameter,
 * header name or JSON path of safe-looking keys) — never the offending value.
 *
 * Cost: every detector runs in time linear in its input (see test/security/linear-time.test.ts),
 * and what one request may have inspected is bounded by an InspectionBudget (`limits.inspect*`):
 * a value longer than `valueChars`, or more text in one request than `requestChars`, is the
 * finding `input_too_large` (413), never unbounded work and never a silently skipped value.
 */
import { detectCommandInjection } from './command.js';
import { percentDecode } from './decode.js';
import { detectHeaderInjection } from './header-injection.js';
import { isPrototypeKey } from './prototype.js';
import { detectSqlInjection } from './sqli.js';
import { detectTraversal, type Position } from './traversal.js';
import { detectXmlEntities } from './xml.js';
import { detectXss } from './xss.js';

export type InjectionRule =
  | 'sql_injection'
  | 'xss'
  | 'path_traversal'
  | 'command_injection'
  | 'header_injection'
  | 'xml_entity'
  | 'prototype_pollution';
/**
 * `input_too_complex`: the body nests deeper, or has more values, than can be inspected.
 * `input_too_large`: a value, or the request's text in total, is over the inspection budget.
 */
export type RuleClass = InjectionRule | 'input_too_complex' | 'input_too_large';
export type ValidationMode = 'strict' | 'text' | 'off';
export type Location = Position;

export interface Finding {
  readonly rule: RuleClass;
  readonly location: Location;
  /** Query parameter, header name, or JSON path (`input.items[2].text`); never the value. */
  readonly field?: string;
}

export interface InspectInput {
  /** The request path as received (percent-encoded); a `?query` part is ignored. */
  readonly path: string;
  /** The raw query string, without the leading `?`. */
  readonly query: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The parsed JSON body (objects, arrays, scalars); a string body is inspected as one value. */
  readonly body?: unknown;
}

export interface InspectOptions {
  readonly mode: ValidationMode;
  /** Body keys / query parameters checked in `text` mode (key name, or dotted path without indices). */
  readonly textFields?: ReadonlySet<string>;
  /** Body keys / query parameters not inspected at all (code snippets). */
  readonly freeTextFields?: ReadonlySet<string>;
  /** The request's inspection budget, when these options travel with one request (body inspection). */
  readonly budget?: InspectionBudget;
}

/** How much text is inspected: per value, and per request in total (UTF-16 code units). */
export interface InspectionLimits {
  readonly valueChars: number;
  readonly requestChars: number;
}

/**
 * The defaults of `limits.inspectValueBytes` / `limits.inspectRequestBytes`: a body of the
 * default `limits.jsonBodyBytes` (1 MiB) can be inspected whole, with room for the path, query
 * and headers. A character count never exceeds the UTF-8 byte count it was decoded from.
 */
export const DEFAULT_INSPECTION_LIMITS: InspectionLimits = Object.freeze({ valueChars: 1024 * 1024, requestChars: 1280 * 1024 });

/**
 * What is left to inspect in one request. Create one per request and pass it to every
 * inspectRequest() call for that request (head, body, form fields...), so the total is bounded.
 */
export class InspectionBudget {
  readonly valueChars: number;
  #remaining: number;

  constructor(limits: InspectionLimits = DEFAULT_INSPECTION_LIMITS) {
    this.valueChars = limits.valueChars;
    this.#remaining = limits.requestChars;
  }

  /** Text still allowed in this request. */
  get remaining(): number {
    return this.#remaining;
  }

  /** Takes `length` characters from the budget; false (and nothing taken) when the value or the total is over it. */
  take(length: number): boolean {
    if (length > this.valueChars || length > this.#remaining) return false;
    this.#remaining -= length;
    return true;
  }
}

/** Deepest JSON nesting inspected; deeper bodies are rejected (`input_too_complex`), never skipped. */
export const MAX_BODY_DEPTH = 64;
/** Most JSON nodes (values and keys) inspected per body; more is rejected (`input_too_complex`). */
export const MAX_BODY_NODES = 10_000;
/** Most query parameters inspected; more is rejected (`input_too_complex`). */
export const MAX_QUERY_PARAMS = 512;

/**
 * Headers that carry user data to upstreams: `user-agent`, `referer`, `origin`, `from`,
 * `forwarded`, `cookie` (each cookie's name and value), and every `x-*` header, token headers
 * such as `x-auth-token` / `x-access-token` / `x-csrf-token` included (an upstream reads them
 * as data) — except the gateway's own credentials, which are never read here and never reach an
 * upstream (`authorization`, `proxy-authorization`, `x-api-key`), and the headers the gateway
 * sets itself before forwarding (`x-request-id`, `x-forwarded-proto`, `x-forwarded-host`; see
 * src/proxy/headers.ts, which also removes `x-forwarded-port` and replaces `x-forwarded-for`:
 * those two are inspected like any `x-*` header all the same). Standard protocol headers (`accept*`, `content-*`, `host`,
 * `traceparent`, ...) are not user text and are left to the framing checks.
 */
const INSPECTED_HEADERS = new Set(['user-agent', 'referer', 'origin', 'from', 'forwarded', 'cookie']);
const NEVER_INSPECTED_HEADERS = new Set([
  'authorization',
  'proxy-authorization',
  'x-api-key',
  'x-request-id',
  'x-forwarded-proto',
  'x-forwarded-host',
]);

export function isInspectedHeader(name: string): boolean {
  const lower = name.toLowerCase();
  if (NEVER_INSPECTED_HEADERS.has(lower)) return false;
  return INSPECTED_HEADERS.has(lower) || lower.startsWith('x-');
}

/**
 * The attack class found in one value, or null. `position` sets how strict the traversal rule
 * is (path/query/header: any `..` segment; body: only path-like values, see traversal.ts).
 */
export function inspectValue(value: string, mode: 'strict' | 'text', position: Position = 'body'): InjectionRule | null {
  if (value.length === 0) return null;
  const decoded = value.includes('%') ? percentDecode(value) : value;
  if (mode === 'strict') {
    if (detectSqlInjection(value, decoded)) return 'sql_injection';
    if (detectCommandInjection(decoded)) return 'command_injection';
    // A header line after a line break: in the path, the query and headers, values an upstream
    // may copy into a header it writes. In a body it is multi-line text ("Location: room 4").
    if (position !== 'body' && detectHeaderInjection(decoded)) return 'header_injection';
    // An XML document (a body, or a value holding one) with a DTD that declares entities.
    if (detectXmlEntities(value) || (decoded !== value && detectXmlEntities(decoded))) return 'xml_entity';
  }
  if (detectXss(value, decoded)) return 'xss';
  if (detectTraversal(value, decoded, position)) return 'path_traversal';
  return null;
}

type FieldMode = 'strict' | 'text' | 'free';

/** Names safe to put in a log line or an error response. */
const SAFE_NAME = /^[A-Za-z0-9_$.-]{1,64}$/;
function safeName(name: string): string {
  return SAFE_NAME.test(name) ? name : '?';
}

function fieldMode(name: string, dotted: string | undefined, inherited: FieldMode, options: InspectOptions): FieldMode {
  if (inherited === 'free') return 'free';
  const free = options.freeTextFields;
  if (free !== undefined && (free.has(name) || (dotted !== undefined && free.has(dotted)))) return 'free';
  if (inherited === 'text') return 'text';
  const text = options.textFields;
  if (text !== undefined && (text.has(name) || (dotted !== undefined && text.has(dotted)))) return 'text';
  return inherited;
}

/** Path segments made only of these need no inspection beyond the whole-path traversal check. */
const PLAIN_SEGMENT = /^[A-Za-z0-9._~-]*$/;

function inspectPath(rawPath: string, mode: 'strict' | 'text', budget: InspectionBudget): Finding | null {
  const q = rawPath.indexOf('?');
  const path = q === -1 ? rawPath : rawPath.slice(0, q);
  if (!budget.take(path.length)) return { rule: 'input_too_large', location: 'path' };
  if (detectTraversal(path, path.includes('%') ? percentDecode(path) : path, 'path')) {
    return { rule: 'path_traversal', location: 'path' };
  }
  let start = 0;
  while (start <= path.length) {
    let end = path.indexOf('/', start);
    if (end === -1) end = path.length;
    const segment = path.slice(start, end);
    if (!PLAIN_SEGMENT.test(segment)) {
      const rule = inspectValue(segment, mode, 'path');
      if (rule !== null) return { rule, location: 'path' };
    }
    start = end + 1;
  }
  return null;
}

/**
 * `application/x-www-form-urlencoded` decoding of one `name=value` pair as URLSearchParams does
 * it. The query string is split by hand so that no more than MAX_QUERY_PARAMS + 1 pairs are ever
 * decoded (URLSearchParams would decode all of them first: a 1 MB query of `&`s took seconds).
 */
function queryPair(pair: string): [string, string] {
  const entry = new URLSearchParams(pair).entries().next();
  return entry.done === true ? ['', ''] : entry.value;
}

function inspectQuery(query: string, mode: 'strict' | 'text', options: InspectOptions, budget: InspectionBudget): Finding | null {
  const raw = query.startsWith('?') ? query.slice(1) : query;
  let count = 0;
  for (let start = 0; start < raw.length; ) {
    let end = raw.indexOf('&', start);
    if (end === -1) end = raw.length;
    const pair = raw.slice(start, end);
    start = end + 1;
    if (pair === '') continue;
    if (++count > MAX_QUERY_PARAMS) return { rule: 'input_too_complex', location: 'query' };
    const [key, value] = queryPair(pair);
    if (!budget.take(key.length)) return { rule: 'input_too_large', location: 'query', field: '?' };
    if (isPrototypeKey(key)) return { rule: 'prototype_pollution', location: 'query', field: '?' };
    const keyRule = inspectValue(key, mode, 'query');
    if (keyRule !== null) return { rule: keyRule, location: 'query', field: '?' };
    const m = fieldMode(key, undefined, mode, options);
    if (m === 'free') continue;
    if (!budget.take(value.length)) return { rule: 'input_too_large', location: 'query', field: safeName(key) };
    const rule = inspectValue(value, m, 'query');
    if (rule !== null) return { rule, location: 'query', field: safeName(key) };
  }
  return null;
}

/** The names and values of a Cookie header (`a=1; b="2"`), as upstream frameworks read them. */
function* cookieParts(header: string): Generator<string> {
  for (let start = 0; start < header.length; ) {
    let end = header.indexOf(';', start);
    if (end === -1) end = header.length;
    const pair = header.slice(start, end);
    start = end + 1;
    const eq = pair.indexOf('=');
    const name = (eq === -1 ? '' : pair.slice(0, eq)).trim();
    let value = (eq === -1 ? pair : pair.slice(eq + 1)).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    if (name !== '') yield name;
    if (value !== '') yield value;
  }
}

function inspectHeaders(headers: InspectInput['headers'], mode: 'strict' | 'text', budget: InspectionBudget): Finding | null {
  for (const name in headers) {
    if (!isInspectedHeader(name)) continue;
    const value = headers[name];
    if (value === undefined) continue;
    const field = safeName(name.toLowerCase());
    const cookie = field === 'cookie';
    for (const v of typeof value === 'string' ? [value] : value) {
      if (!budget.take(v.length)) return { rule: 'input_too_large', location: 'header', field };
      for (const part of cookie ? cookieParts(v) : [v]) {
        const rule = inspectValue(part, mode, 'header');
        if (rule !== null) return { rule, location: 'header', field };
      }
    }
  }
  return null;
}

interface Frame {
  readonly value: unknown;
  readonly depth: number;
  readonly mode: FieldMode;
  readonly parent: Frame | undefined;
  /** Property name or array index within the parent. */
  readonly key: string | number | undefined;
  /** Dotted path without indices, kept only when a configured field name needs it. */
  readonly dotted: string | undefined;
}

function jsonPath(frame: Frame | undefined): string | undefined {
  const parts: string[] = [];
  for (let f = frame; f !== undefined && f.key !== undefined; f = f.parent) {
    parts.push(typeof f.key === 'number' ? `[${f.key}]` : `.${safeName(f.key)}`);
  }
  if (parts.length === 0) return undefined;
  const path = parts.reverse().join('');
  const trimmed = path.startsWith('.') ? path.slice(1) : path;
  return trimmed.length > 256 ? `${trimmed.slice(0, 253)}...` : trimmed;
}

function usesDottedNames(options: InspectOptions): boolean {
  for (const set of [options.textFields, options.freeTextFields]) {
    if (set !== undefined) for (const name of set) if (name.includes('.')) return true;
  }
  return false;
}

/**
 * Walks the body iteratively (an explicit stack: no recursion, so no stack overflow however deep
 * the input) and rejects bodies deeper than MAX_BODY_DEPTH or larger than MAX_BODY_NODES instead
 * of leaving part of them unchecked.
 */
function inspectBody(body: unknown, mode: 'strict' | 'text', options: InspectOptions, budget: InspectionBudget): Finding | null {
  if (body === undefined || body === null) return null;
  if (typeof body === 'string') {
    if (!budget.take(body.length)) return { rule: 'input_too_large', location: 'body' };
    const rule = inspectValue(body, mode, 'body');
    return rule === null ? null : { rule, location: 'body' };
  }
  if (typeof body !== 'object' || body instanceof Uint8Array) return null;

  const dottedNames = usesDottedNames(options);
  const stack: Frame[] = [{ value: body, depth: 0, mode, parent: undefined, key: undefined, dotted: undefined }];
  let nodes = 0;
  while (stack.length > 0) {
    const frame = stack.pop() as Frame;
    if (++nodes > MAX_BODY_NODES) return { rule: 'input_too_complex', location: 'body' };
    const { value } = frame;
    if (typeof value === 'string') {
      if (frame.mode === 'free') continue;
      if (!budget.take(value.length)) return { rule: 'input_too_large', location: 'body', ...fieldOf(frame) };
      const rule = inspectValue(value, frame.mode, 'body');
      if (rule !== null) {
        const field = jsonPath(frame);
        return field === undefined ? { rule, location: 'body' } : { rule, location: 'body', field };
      }
      continue;
    }
    if (typeof value !== 'object' || value === null) continue;
    if (frame.depth >= MAX_BODY_DEPTH) return { rule: 'input_too_complex', location: 'body', ...fieldOf(frame) };
    const depth = frame.depth + 1;
    if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) {
        stack.push({ value: value[i], depth, mode: frame.mode, parent: frame, key: i, dotted: frame.dotted });
      }
      continue;
    }
    const keys = Object.keys(value);
    for (let i = keys.length - 1; i >= 0; i--) {
      const key = keys[i] as string;
      if (frame.mode !== 'free') {
        if (++nodes > MAX_BODY_NODES) return { rule: 'input_too_complex', location: 'body' };
        if (!budget.take(key.length)) return { rule: 'input_too_large', location: 'body', ...fieldOf(frame) };
        const keyRule = isPrototypeKey(key) || (key === 'prototype' && frame.key === 'constructor') ? 'prototype_pollution' : inspectValue(key, frame.mode, 'body');
        if (keyRule !== null) {
          // the offending key itself is never echoed: it is `?` in the reported path
          const parent = jsonPath(frame);
          return { rule: keyRule, location: 'body', field: parent === undefined ? '?' : `${parent}.?` };
        }
      }
      const dotted = dottedNames ? (frame.dotted === undefined ? key : `${frame.dotted}.${key}`) : undefined;
      const childMode = fieldMode(key, dotted, frame.mode, options);
      stack.push({ value: (value as Record<string, unknown>)[key], depth, mode: childMode, parent: frame, key, dotted });
    }
  }
  return null;
}

function fieldOf(frame: Frame): { field?: string } {
  const field = jsonPath(frame);
  return field === undefined ? {} : { field };
}

/**
 * The first attack found in the request, or null. Order: path, query, headers, body. The result
 * never contains the offending value. `budget` is what this request may still have inspected:
 * pass the same one to every call made for one request; without it, each call gets the default
 * limits of its own.
 */
export function inspectRequest(input: InspectInput, options: InspectOptions, budget: InspectionBudget = options.budget ?? new InspectionBudget()): Finding | null {
  if (options.mode === 'off') return null;
  const mode = options.mode;
  return (
    inspectPath(input.path, mode, budget) ??
    inspectQuery(input.query, mode, options, budget) ??
    inspectHeaders(input.headers, mode, budget) ??
    inspectBody(input.body, mode, options, budget)
  );
}

export { detectCommandInjection } from './command.js';
export { detectHeaderInjection } from './header-injection.js';
export { isPrototypeKey } from './prototype.js';
export { detectXmlEntities } from './xml.js';
export { detectSqlInjection, sqlFingerprint } from './sqli.js';
export { detectTraversal, type Position } from './traversal.js';
export { detectXss } from './xss.js';
