/**
 * Measures the input-validation detectors on the labelled corpus (test/security/corpus/, see its
 * README): detection rate per attack class and overall, false-positive rate on benign AI-style
 * traffic, each value placed where it would realistically travel (path, query string, a
 * user-data header, a nested JSON body field, a /v1/query text field, a free-text `code` field).
 *
 * Thresholds (from the issue): at least 98% detection and at most 1% false positives, on the
 * main corpus and on the whole corpus (main + held-out). The held-out files were written after
 * the detectors were finished and never used to tune them; their figures are printed separately
 * so the generalisation gap stays visible.
 */
import { describe, expect, it } from 'vitest';
import { inspectRequest, type InjectionRule } from '../../src/security/detect/index.js';
import { HOLDOUT_CORPUS, loadCorpusFile, MAIN_CORPUS, placeValue, samples, TEXT_FIELDS, type CorpusFile, type Sample } from './corpus.js';

const MIN_DETECTION = 0.98;
const MAX_FALSE_POSITIVES = 0.01;
const CLASSES: readonly InjectionRule[] = ['sql_injection', 'xss', 'path_traversal', 'command_injection', 'header_injection', 'xml_entity'];
const VERBOSE = process.env.SECURITY_CORPUS_VERBOSE === '1';

interface Tally {
  total: number;
  hit: number;
  /** Attack samples blocked under their own class (the rest were blocked under another class). */
  sameClass: number;
  misses: Sample[];
}
const tally = (): Tally => ({ total: 0, hit: 0, sameClass: 0, misses: [] });

interface Result {
  readonly byClass: Record<InjectionRule, Tally>;
  readonly attacks: Tally;
  readonly benign: Tally;
  readonly benignByKind: Record<'strict' | 'text-field' | 'code-field', Tally>;
}

function evaluate(files: readonly CorpusFile[]): Result {
  const byClass = Object.fromEntries(CLASSES.map((c) => [c, tally()])) as Record<InjectionRule, Tally>;
  const attacks = tally();
  const benign = tally();
  const benignByKind = { strict: tally(), 'text-field': tally(), 'code-field': tally() };
  for (const sample of samples(files)) {
    const finding = inspectRequest(sample.request, sample.options);
    if (sample.label === 'attack' && sample.cls !== undefined) {
      for (const t of [byClass[sample.cls], attacks]) {
        t.total++;
        if (finding !== null) {
          t.hit++;
          if (finding.rule === sample.cls) t.sameClass++;
        } else t.misses.push(sample);
      }
    } else {
      const kind = sample.file === 'benign-code.jsonl' ? 'code-field' : sample.textMode ? 'text-field' : 'strict';
      for (const t of [benign, benignByKind[kind]]) {
        t.total++;
        if (finding !== null) {
          t.hit++;
          t.misses.push(sample);
        }
      }
    }
  }
  return { byClass, attacks, benign, benignByKind };
}

/** Script injection and traversal sent in a /v1/query text field must still be blocked there. */
function evaluateTextMode(files: readonly CorpusFile[]): Record<InjectionRule, Tally> {
  const out = Object.fromEntries(CLASSES.map((c) => [c, tally()])) as Record<InjectionRule, Tally>;
  for (const f of files) {
    if (f.label !== 'attack') continue;
    for (const sample of samples([f])) {
      if (sample.placement !== 'body' || sample.cls === undefined) continue;
      const placed = placeValue(sample.value, 'body', 'query');
      if (placed === null) continue;
      const finding = inspectRequest(placed.request, placed.options);
      const t = out[sample.cls];
      t.total++;
      if (finding !== null) t.hit++;
      else t.misses.push(sample);
    }
  }
  return out;
}

const pct = (t: Tally) => (t.total === 0 ? '   n/a ' : `${((100 * t.hit) / t.total).toFixed(2).padStart(6)}%`);
const row = (corpus: string, what: string, t: Tally, note = '') =>
  `${corpus.padEnd(8)} ${what.padEnd(46)} ${String(t.total).padStart(6)} ${String(t.hit).padStart(6)}  ${pct(t)}  ${note}`;

function report(name: string, r: Result, text: Record<InjectionRule, Tally>): string {
  const lines = [
    row(name, 'detection: sql_injection', r.byClass.sql_injection, `same class ${r.byClass.sql_injection.sameClass}`),
    row(name, 'detection: xss', r.byClass.xss, `same class ${r.byClass.xss.sameClass}`),
    row(name, 'detection: path_traversal', r.byClass.path_traversal, `same class ${r.byClass.path_traversal.sameClass}`),
    row(name, 'detection: command_injection', r.byClass.command_injection, `same class ${r.byClass.command_injection.sameClass}`),
    row(name, 'detection: header_injection', r.byClass.header_injection, `same class ${r.byClass.header_injection.sameClass}`),
    row(name, 'detection: xml_entity', r.byClass.xml_entity, `same class ${r.byClass.xml_entity.sameClass}`),
    row(name, 'DETECTION (all attacks, strict)', r.attacks),
    row(name, 'false positives: strict fields', r.benignByKind.strict),
    row(name, 'false positives: text fields', r.benignByKind['text-field']),
    row(name, 'false positives: free-text code', r.benignByKind['code-field']),
    row(name, 'FALSE POSITIVES (all benign)', r.benign),
    row(name, 'text mode: xss still blocked', text.xss),
    row(name, 'text mode: traversal still blocked', text.path_traversal),
    row(name, 'text mode: sqli (passes by design)', text.sql_injection),
    row(name, 'text mode: command (passes by design)', text.command_injection),
  ];
  if (VERBOSE) {
    for (const s of r.attacks.misses) lines.push(`  MISS ${s.cls} @${s.placement}: ${JSON.stringify(s.value)}`);
    for (const s of r.benign.misses) lines.push(`  FP   @${s.placement}${s.textMode ? ' (text)' : ''}: ${JSON.stringify(s.value)}`);
  }
  return lines.join('\n');
}

const main = evaluate(MAIN_CORPUS);
const holdout = evaluate(HOLDOUT_CORPUS);
const all = evaluate([...MAIN_CORPUS, ...HOLDOUT_CORPUS]);
const header = `${'corpus'.padEnd(8)} ${'measure'.padEnd(46)} ${'n'.padStart(6)} ${'hits'.padStart(6)}  ${'rate'.padStart(7)}`;
console.log(
  [
    '',
    'Input validation on the labelled corpus (placements: path / query / header / JSON body / text field / code field)',
    header,
    report('main', main, evaluateTextMode(MAIN_CORPUS)),
    report('holdout', holdout, evaluateTextMode(HOLDOUT_CORPUS)),
    report('all', all, evaluateTextMode([...MAIN_CORPUS, ...HOLDOUT_CORPUS])),
    '',
  ].join('\n'),
);

const rate = (t: Tally) => t.hit / t.total;

/** Detection (attack files) or false positives (benign files) of each corpus file on its own. */
function perFile(files: readonly CorpusFile[]): { file: CorpusFile; tally: Tally }[] {
  return files.map((file) => {
    const t = tally();
    for (const sample of samples([file])) {
      const finding = inspectRequest(sample.request, sample.options);
      t.total++;
      if ((finding !== null) === (sample.label === 'attack')) {
        if (sample.label === 'attack') t.hit++;
      } else if (sample.label === 'attack') t.misses.push(sample);
      if (sample.label === 'benign' && finding !== null) {
        t.hit++;
        t.misses.push(sample);
      }
    }
    return { file, tally: t };
  });
}

const files = perFile([...MAIN_CORPUS, ...HOLDOUT_CORPUS]);
/** The misses (or false positives) of a file, for the failure message. */
const missed = (t: Tally) => t.misses.map((m) => `${m.placement}: ${JSON.stringify(m.value)}`).join('\n');
console.log(
  [
    'Per corpus file (attack files: detection; benign files: false positives)',
    ...files.map(({ file, tally: t }) => row(HOLDOUT_CORPUS.includes(file) ? 'holdout' : 'main', `${file.label === 'attack' ? 'detection' : 'false pos.'}: ${file.file}`, t)),
    '',
  ].join('\n'),
);

describe('detection rate and false-positive rate on the corpus', () => {
  it('the corpus is big enough and balanced as the issue asks (counted in values, not placements)', () => {
    const values = (files: readonly CorpusFile[], pick: (f: CorpusFile) => boolean) =>
      files.filter(pick).reduce((n, f) => n + loadCorpusFile(f.file).length, 0);
    const ofClass = (c: InjectionRule) => (f: CorpusFile) => f.label === 'attack' && f.cls === c;
    expect(values(MAIN_CORPUS, ofClass('sql_injection'))).toBeGreaterThanOrEqual(150);
    expect(values(MAIN_CORPUS, ofClass('xss'))).toBeGreaterThanOrEqual(100);
    expect(values(MAIN_CORPUS, ofClass('path_traversal'))).toBeGreaterThanOrEqual(60);
    expect(values(MAIN_CORPUS, ofClass('command_injection'))).toBeGreaterThanOrEqual(60);
    expect(values(MAIN_CORPUS, ofClass('header_injection'))).toBeGreaterThanOrEqual(30);
    expect(values(MAIN_CORPUS, ofClass('xml_entity'))).toBeGreaterThanOrEqual(20);
    const attacks = values(MAIN_CORPUS, (f) => f.label === 'attack');
    expect(values(MAIN_CORPUS, (f) => f.label === 'benign')).toBeGreaterThanOrEqual(Math.max(400, attacks));
    // the held-out set is about a fifth of each class
    for (const c of CLASSES) {
      const share = values(HOLDOUT_CORPUS, ofClass(c)) / values(MAIN_CORPUS, ofClass(c));
      expect(share, c).toBeGreaterThanOrEqual(0.15);
    }
    expect(values(HOLDOUT_CORPUS, (f) => f.label === 'benign')).toBeGreaterThan(0);
  });

  for (const [name, r] of [['main', main], ['main + held-out', all]] as const) {
    it(`${name}: detects at least ${MIN_DETECTION * 100}% of attacks overall and per class`, () => {
      expect(rate(r.attacks)).toBeGreaterThanOrEqual(MIN_DETECTION);
      for (const c of CLASSES) expect(rate(r.byClass[c]), c).toBeGreaterThanOrEqual(MIN_DETECTION);
    });
    it(`${name}: at most ${MAX_FALSE_POSITIVES * 100}% false positives`, () => {
      expect(rate(r.benign)).toBeLessThanOrEqual(MAX_FALSE_POSITIVES);
    });
  }

  // Issue 11: the thresholds hold on every file on its own, the held-out ones and the new classes included.
  for (const { file, tally: t } of files) {
    if (file.label === 'attack') {
      it(`${file.file}: detects at least ${MIN_DETECTION * 100}% of its attacks`, () => {
        expect(rate(t), missed(t)).toBeGreaterThanOrEqual(MIN_DETECTION);
      });
    } else {
      it(`${file.file}: at most ${MAX_FALSE_POSITIVES * 100}% false positives`, () => {
        expect(rate(t), missed(t)).toBeLessThanOrEqual(MAX_FALSE_POSITIVES);
      });
    }
  }

  it('text fields still block script injection and traversal', () => {
    const text = evaluateTextMode([...MAIN_CORPUS, ...HOLDOUT_CORPUS]);
    expect(rate(text.xss)).toBeGreaterThanOrEqual(MIN_DETECTION);
    expect(rate(text.path_traversal)).toBeGreaterThanOrEqual(MIN_DETECTION);
  });

  it('free-text code fields never trip', () => {
    expect(main.benignByKind['code-field'].hit).toBe(0);
  });

  it('the text fields of /v1/query are the ones the issue names', () => {
    expect([...TEXT_FIELDS].sort()).toEqual(['message', 'prompt', 'query']);
  });
});
