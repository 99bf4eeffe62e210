/*
 * A strict parser of the Prometheus text exposition format (version 0.0.4), for tests: it
 * throws on anything the format does not allow rather than guessing, and checks the
 * invariants Prometheus relies on when it scrapes:
 *  - `# HELP name text` and `# TYPE name type` at most once per family, TYPE before its samples;
 *  - metric names [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]* (no reserved "__"),
 *    label values quoted with only \\ \" \n escapes, no label repeated;
 *  - values Go-style floats (plus NaN, +Inf, -Inf), optional integer millisecond timestamp;
 *  - a family's samples contiguous, no series (name + label set) twice;
 *  - counters never negative; histograms only _bucket/_sum/_count, each series with an "le"
 *    per bucket, cumulative (monotone) counts, a +Inf bucket equal to _count, and a _sum;
 *    summaries only quantile samples in [0, 1], _sum and _count;
 *  - the text ends with a line feed.
 */

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
  readonly timestampMs?: number;
  readonly line: number;
}

export interface MetricFamily {
  readonly name: string;
  type: MetricType;
  help?: string;
  readonly samples: Sample[];
}

export class ExpositionError extends Error {
  constructor(line: number, message: string, text?: string) {
    super(`line ${line}: ${message}${text === undefined ? '' : `\n  ${JSON.stringify(text)}`}`);
    this.name = 'ExpositionError';
  }
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const METRIC_NAME_PREFIX = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME_PREFIX = /^[a-zA-Z_][a-zA-Z0-9_]*/;
const FLOAT = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
const SPECIAL_FLOAT = /^(?:[+-]?(?:inf|infinity)|nan)$/i;
const TIMESTAMP = /^-?\d+$/;
const TYPES: readonly MetricType[] = ['counter', 'gauge', 'histogram', 'summary', 'untyped'];

/** Go's strconv.ParseFloat forms that exposition allows; throws on anything else. */
export function parseFloatStrict(token: string, line: number): number {
  if (FLOAT.test(token)) return Number(token);
  if (SPECIAL_FLOAT.test(token)) {
    const t = token.toLowerCase();
    if (t === 'nan') return Number.NaN;
    return t.startsWith('-') ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
  }
  throw new ExpositionError(line, `invalid float value "${token}"`);
}

function unescapeHelp(text: string, line: number): string {
  return text.replace(/\\(.?)/g, (_m, c: string) => {
    if (c === '\\') return '\\';
    if (c === 'n') return '\n';
    throw new ExpositionError(line, `invalid escape "\\${c}" in HELP`);
  });
}

function allowedSampleNames(family: MetricFamily): string[] {
  const n = family.name;
  switch (family.type) {
    case 'histogram':
      return [`${n}_bucket`, `${n}_sum`, `${n}_count`];
    case 'summary':
      return [n, `${n}_sum`, `${n}_count`];
    default:
      return [n];
  }
}

/** Labels of one sample line after the name, from "{" up to and including "}"; returns the rest. */
function parseLabels(rest: string, line: number, text: string): { labels: Record<string, string>; rest: string } {
  const labels: Record<string, string> = {};
  let i = 1; // past "{"
  const skipWs = () => {
    while (rest[i] === ' ' || rest[i] === '\t') i += 1;
  };
  for (;;) {
    skipWs();
    if (rest[i] === '}') return { labels, rest: rest.slice(i + 1) };
    const m = LABEL_NAME_PREFIX.exec(rest.slice(i));
    if (!m) throw new ExpositionError(line, 'invalid label name', text);
    const name = m[0];
    if (name.startsWith('__')) throw new ExpositionError(line, `label name "${name}" is reserved`, text);
    if (name in labels) throw new ExpositionError(line, `label "${name}" repeated`, text);
    i += name.length;
    skipWs();
    if (rest[i] !== '=') throw new ExpositionError(line, `expected "=" after label "${name}"`, text);
    i += 1;
    skipWs();
    if (rest[i] !== '"') throw new ExpositionError(line, `expected a quoted value for label "${name}"`, text);
    i += 1;
    let value = '';
    for (;;) {
      const c = rest[i];
      if (c === undefined) throw new ExpositionError(line, `unterminated value of label "${name}"`, text);
      i += 1;
      if (c === '"') break;
      if (c === '\\') {
        const e = rest[i];
        i += 1;
        if (e === '\\') value += '\\';
        else if (e === '"') value += '"';
        else if (e === 'n') value += '\n';
        else throw new ExpositionError(line, `invalid escape "\\${e ?? ''}" in label "${name}"`, text);
      } else value += c;
    }
    labels[name] = value;
    skipWs();
    if (rest[i] === ',') {
      i += 1;
      continue;
    }
    if (rest[i] === '}') return { labels, rest: rest.slice(i + 1) };
    throw new ExpositionError(line, `expected "," or "}" after label "${name}"`, text);
  }
}

function seriesKey(name: string, labels: Readonly<Record<string, string>>, omit?: string): string {
  return `${name}{${Object.keys(labels)
    .filter((k) => k !== omit)
    .sort()
    .map((k) => `${k}=${JSON.stringify(labels[k])}`)
    .join(',')}}`;
}

/** Parse a whole exposition; throws ExpositionError on the first violation. */
export function parsePrometheusText(text: string): Map<string, MetricFamily> {
  const families = new Map<string, MetricFamily>();
  if (text.length > 0 && !text.endsWith('\n')) throw new ExpositionError(text.split('\n').length, 'the last line must end with a line feed');
  const lines = text.split('\n');
  lines.pop();
  let current: MetricFamily | undefined;
  const series = new Set<string>();
  const typed = new Set<string>();

  const enter = (name: string, lineNo: number, raw: string): MetricFamily => {
    if (current?.name === name) return current;
    if (families.has(name)) throw new ExpositionError(lineNo, `metric family "${name}" is not contiguous (seen before)`, raw);
    current = { name, type: 'untyped', samples: [] };
    families.set(name, current);
    return current;
  };

  lines.forEach((raw, index) => {
    const lineNo = index + 1;
    if (raw.includes('\r')) throw new ExpositionError(lineNo, 'carriage return in line (LF line endings only)', raw);
    if (raw.trim() === '') return;
    if (raw.startsWith('#')) {
      const meta = /^#[ \t]+(HELP|TYPE)(?:[ \t]+(.*))?$/.exec(raw);
      if (!meta) return; // a plain comment
      const [, kind, body = ''] = meta;
      const m = /^(\S+)(?:[ \t]+(.*))?$/.exec(body);
      if (!m) throw new ExpositionError(lineNo, `${kind} without a metric name`, raw);
      const [, name = '', rest] = m;
      if (!METRIC_NAME.test(name)) throw new ExpositionError(lineNo, `invalid metric name "${name}"`, raw);
      const family = enter(name, lineNo, raw);
      if (kind === 'HELP') {
        if (family.help !== undefined) throw new ExpositionError(lineNo, `second HELP for "${name}"`, raw);
        family.help = unescapeHelp(rest ?? '', lineNo);
      } else {
        const type = (rest ?? '').trim();
        if (!TYPES.includes(type as MetricType)) throw new ExpositionError(lineNo, `unknown metric type "${type}"`, raw);
        if (typed.has(name)) throw new ExpositionError(lineNo, `second TYPE for "${name}"`, raw);
        if (family.samples.length > 0) throw new ExpositionError(lineNo, `TYPE for "${name}" after its samples`, raw);
        family.type = type as MetricType;
        typed.add(name);
      }
      return;
    }

    const nameMatch = METRIC_NAME_PREFIX.exec(raw);
    if (!nameMatch) throw new ExpositionError(lineNo, 'invalid metric name', raw);
    const name = nameMatch[0];
    let rest = raw.slice(name.length);
    let labels: Record<string, string> = {};
    const afterName = rest.replace(/^[ \t]*/, '');
    if (afterName.startsWith('{')) {
      ({ labels, rest } = parseLabels(afterName, lineNo, raw));
    }
    if (!/^[ \t]/.test(rest)) throw new ExpositionError(lineNo, 'expected whitespace before the value', raw);
    const tokens = rest.trim().split(/[ \t]+/);
    if (tokens.length < 1 || tokens.length > 2 || tokens[0] === '') throw new ExpositionError(lineNo, 'expected "value [timestamp]"', raw);
    const value = parseFloatStrict(tokens[0]!, lineNo);
    let timestampMs: number | undefined;
    if (tokens[1] !== undefined) {
      if (!TIMESTAMP.test(tokens[1])) throw new ExpositionError(lineNo, `invalid timestamp "${tokens[1]}"`, raw);
      timestampMs = Number(tokens[1]);
    }

    // Which family the sample belongs to: the current one if its type allows the name, else its own.
    let family = current && allowedSampleNames(current).includes(name) ? current : undefined;
    if (!family) {
      family = enter(name, lineNo, raw);
      if (!allowedSampleNames(family).includes(name)) {
        throw new ExpositionError(lineNo, `sample "${name}" does not fit its ${family.type} family "${family.name}"`, raw);
      }
    }
    const key = seriesKey(name, labels);
    if (series.has(key)) throw new ExpositionError(lineNo, `series ${key} repeated`, raw);
    series.add(key);
    family.samples.push({ name, labels, value, ...(timestampMs !== undefined ? { timestampMs } : {}), line: lineNo });
  });

  for (const family of families.values()) checkFamily(family);
  return families;
}

function checkFamily(family: MetricFamily): void {
  const { name, type, samples } = family;
  if (type === 'counter') {
    for (const s of samples) {
      if (!(s.value >= 0)) throw new ExpositionError(s.line, `counter ${name} has value ${s.value}`);
    }
  }
  if (type === 'summary') {
    for (const s of samples) {
      if (s.name !== name) continue;
      const q = s.labels.quantile;
      if (q === undefined) throw new ExpositionError(s.line, `summary ${name} sample without a quantile label`);
      const qv = parseFloatStrict(q, s.line);
      if (!(qv >= 0 && qv <= 1)) throw new ExpositionError(s.line, `summary ${name} quantile ${q} outside [0, 1]`);
    }
  }
  if (type !== 'histogram') return;

  interface Series {
    buckets: Array<{ le: number; value: number; line: number }>;
    count?: Sample;
    sum?: Sample;
    line: number;
  }
  const bySeries = new Map<string, Series>();
  const get = (s: Sample) => {
    const key = seriesKey('', s.labels, 'le');
    let entry = bySeries.get(key);
    if (!entry) bySeries.set(key, (entry = { buckets: [], line: s.line }));
    return entry;
  };
  for (const s of samples) {
    const entry = get(s);
    if (s.name === `${name}_bucket`) {
      const le = s.labels.le;
      if (le === undefined) throw new ExpositionError(s.line, `histogram bucket of ${name} without "le"`);
      const leValue = parseFloatStrict(le, s.line);
      if (Number.isNaN(leValue)) throw new ExpositionError(s.line, `histogram ${name} has le="NaN"`);
      if (entry.buckets.some((b) => b.le === leValue)) throw new ExpositionError(s.line, `histogram ${name} repeats le="${le}"`);
      if (!(s.value >= 0)) throw new ExpositionError(s.line, `histogram ${name} bucket has value ${s.value}`);
      entry.buckets.push({ le: leValue, value: s.value, line: s.line });
    } else if ('le' in s.labels) {
      throw new ExpositionError(s.line, `${s.name} must not carry an "le" label`);
    } else if (s.name === `${name}_count`) entry.count = s;
    else entry.sum = s;
  }
  for (const [key, entry] of bySeries) {
    const where = `histogram ${name}${key}`;
    if (entry.buckets.length === 0) throw new ExpositionError(entry.line, `${where} has no buckets`);
    const sorted = [...entry.buckets].sort((a, b) => a.le - b.le);
    const last = sorted[sorted.length - 1]!;
    if (last.le !== Number.POSITIVE_INFINITY) throw new ExpositionError(entry.line, `${where} has no le="+Inf" bucket`);
    for (let i = 1; i < sorted.length; i += 1) {
      if (sorted[i]!.value < sorted[i - 1]!.value) {
        throw new ExpositionError(sorted[i]!.line, `${where} buckets are not cumulative: le=${sorted[i]!.le} has ${sorted[i]!.value} < ${sorted[i - 1]!.value}`);
      }
    }
    if (entry.count === undefined) throw new ExpositionError(entry.line, `${where} has no _count`);
    if (entry.sum === undefined) throw new ExpositionError(entry.line, `${where} has no _sum`);
    if (entry.count.value !== last.value) {
      throw new ExpositionError(entry.count.line, `${where}: _count ${entry.count.value} differs from the +Inf bucket ${last.value}`);
    }
  }
}
