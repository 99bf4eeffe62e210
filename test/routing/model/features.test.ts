import { describe, expect, it } from 'vitest';
import { DEFAULT_FEATURE_SETTINGS, FeatureExtractor, type RoutingInput } from '../../../src/routing/model/features.js';
import { query } from './helpers.js';

function features(input: RoutingInput, settings = DEFAULT_FEATURE_SETTINGS): { set: string[]; names: string[] } {
  const ex = new FeatureExtractor(settings);
  ex.names = [];
  const n = ex.extract(input);
  const set = Array.from({ length: n }, (_v, i) => `${ex.sign[i]! > 0 ? '+' : '-'}${ex.index[i]}`);
  return { set, names: [...ex.names] };
}

describe('feature extraction', () => {
  it('is deterministic and independent of the extractor instance', () => {
    const a = features(query('Remind me to call Mom at 5'));
    const b = features(query('Remind me to call Mom at 5'));
    expect(a.set).toEqual(b.set);
    expect(a.set.length).toBeGreaterThan(20);
  });

  it('records one readable name per feature (explain) without changing the features', () => {
    const ex = new FeatureExtractor(DEFAULT_FEATURE_SETTINGS);
    const n1 = ex.extract(query('sync my notes'));
    const plain = Array.from(ex.index.subarray(0, n1));
    ex.names = [];
    const n2 = ex.extract(query('sync my notes'));
    expect(n2).toBe(n1);
    expect(Array.from(ex.index.subarray(0, n2))).toEqual(plain);
    expect(ex.names).toHaveLength(n2);
    expect(ex.names).toEqual(expect.arrayContaining(['word:sync', 'word:notes', 'bigram:my notes', 'chars:<sy (sync)', 'path=/v1/query', 'path-segment=query', 'content-type=application/json', 'method=post', 'text?']));
  });

  it('lowercases, folds digits and splits on punctuation', () => {
    expect(features(query('JOB 4821 status!!')).set).toEqual(features(query('job 1234 status')).set);
    expect(features(query('agent-controller')).names).toEqual(expect.arrayContaining(['word:agent', 'word:controller']));
    const legacy = { ...DEFAULT_FEATURE_SETTINGS, foldAccents: undefined, lexicon: undefined };
    expect(features(query('Ünïcode CAFÉ'), legacy).names).toEqual(expect.arrayContaining(['word:ünïcode', 'word:café']));
  });

  it('folds accents when foldAccents is on: typed with or without them, a word is one feature', () => {
    expect(features(query('Ünïcode CAFÉ')).names).toEqual(expect.arrayContaining(['word:unicode', 'word:cafe']));
    expect(features(query('où sont les résultats du nœud ŁÓDŹ')).set).toEqual(features(query('ou sont les resultats du nœud łodz')).set);
    // models trained before it (no foldAccents) keep their features
    const legacy = { ...DEFAULT_FEATURE_SETTINGS, foldAccents: undefined, lexicon: undefined };
    expect(features(query('résultats'), legacy).set).not.toEqual(features(query('resultats'), legacy).set);
  });

  it('adds the lexicon concept of a word (synonyms and translations share it), whole words only in domain-1 and domain-2', () => {
    const domain2 = { ...DEFAULT_FEATURE_SETTINGS, lexicon: 'domain-2' };
    const concepts = (text: string) => features(query(text), domain2).names.filter((n) => n.startsWith('lexicon:'));
    expect(concepts('remind me')).toEqual(['lexicon:remind']);
    expect(concepts('przypomnij mi')).toEqual(['lexicon:remind']);
    expect(concepts('erinnere mich')).toEqual(['lexicon:remind']);
    expect(concepts('mon nœud ne trouve aucun pair')).toEqual(['lexicon:node', 'lexicon:peer']);
    expect(concepts('reminderz')).toEqual([]);
    const ex = new FeatureExtractor(DEFAULT_FEATURE_SETTINGS);
    const a = ex.extract(query('przypomnij'));
    const idxA = new Set(Array.from(ex.index.subarray(0, a)));
    const b = ex.extract(query('ricordami'));
    const shared = Array.from(ex.index.subarray(0, b)).filter((i) => idxA.has(i));
    expect(shared.length).toBeGreaterThan(0);
    expect(features(query('remind me'), { ...DEFAULT_FEATURE_SETTINGS, lexicon: undefined }).names.some((n) => n.startsWith('lexicon:'))).toBe(false);
    expect(() => new FeatureExtractor({ ...DEFAULT_FEATURE_SETTINGS, lexicon: 'nope' })).toThrow(/unknown lexicon/);
    expect(concepts('agnet ricordarmi')).toEqual([]);
  });

  it('domain-3 also matches stems (inflections) and misspelt words with a lexicon word\'s letters, one concept per word', () => {
    const domain3 = { ...DEFAULT_FEATURE_SETTINGS, lexicon: 'domain-3' };
    const concepts = (text: string) => features(query(text), domain3).names.filter((n) => n.startsWith('lexicon:'));
    // inflections of the five languages every reviewer uses, by stem
    expect(concepts('ricordarmi')).toEqual(['lexicon:remind (stem)']);
    expect(concepts('recuerdes')).toEqual(['lexicon:remind']); // also a whole word of domain-3
    expect(concepts('recuérdamelo')).toEqual(['lexicon:remind (stem)']);
    expect(concepts('sincronizzazione')).toEqual(['lexicon:connect (stem)']);
    expect(concepts('Synchronisierungen')).toEqual(['lexicon:connect (stem)']);
    expect(concepts('riassumimelo')).toEqual(['lexicon:summarise (stem)']);
    // a stem must be shorter than the word, and ambiguous prefixes are no stems
    expect(concepts('notebook')).toEqual(['lexicon:device']);
    expect(concepts('notebooks')).toEqual([]);
    // transposed letters of a lexicon word of five or more letters; the first letter must match
    expect(concepts('retrian the agnet')).toEqual(['lexicon:agentOps (letters)', 'lexicon:agent (letters)']);
    expect(concepts('early layer')).toEqual([]);
    expect(concepts('sycn')).toEqual([]); // too short to tell from other words
    // whole words first, and the same concept feature whichever way a word matched
    const ex = new FeatureExtractor(domain3);
    const conceptIndex = (text: string) => {
      ex.names = [];
      const n = ex.extract(query(text));
      return Array.from({ length: n }, (_v, i) => i).filter((i) => ex.names![i]!.startsWith('lexicon:')).map((i) => ex.index[i]);
    };
    expect(conceptIndex('agnet')).toEqual(conceptIndex('agent'));
    expect(conceptIndex('ricordarmi')).toEqual(conceptIndex('remind'));
  });

  it('keeps kinds apart: a word and a path segment with the same letters are different features', () => {
    const ex = new FeatureExtractor(DEFAULT_FEATURE_SETTINGS);
    ex.names = [];
    const n = ex.extract({ method: 'POST', path: '/v1/query', body: { query: 'query' } });
    const byName = new Map(ex.names.map((name, i) => [name, ex.index[i]]));
    expect(n).toBe(ex.names.length);
    expect(byName.get('word:query')).not.toBe(byName.get('path-segment=query'));
  });

  it('reads query, prompt and message (strings, {content}, lists), ignores other fields and the query string', () => {
    const base = features({ method: 'POST', path: '/v1/query', body: { query: 'deploy the agent' } }).set;
    expect(features({ method: 'POST', path: '/v1/query?x=1', body: { query: 'deploy the agent', session_id: 'abc', top_k: 5 } }).set).toEqual(base);
    expect(features({ method: 'POST', path: '/v1/query', body: { prompt: 'deploy the agent' } }).set).toEqual(base);
    expect(features({ method: 'POST', path: '/v1/query', body: { message: { content: 'deploy the agent' } } }).set).toEqual(base);
    const list = features({ method: 'POST', path: '/v1/query', body: { message: [{ role: 'user', content: 'deploy' }, 'the agent'] } }).names;
    expect(list).toEqual(expect.arrayContaining(['word:deploy', 'word:agent']));
    expect(features({ method: 'POST', path: '/v1/query', body: ['deploy'] }).names).not.toContain('word:deploy');
  });

  it('uses the upload file name, extension and media type; parameters of media types do not count', () => {
    const names = features({ method: 'POST', path: '/v1/upload', contentType: 'multipart/form-data; boundary=xyz', file: { name: 'Q3_Report.PDF', type: 'application/pdf' } }).names;
    expect(names).toEqual(expect.arrayContaining(['word:q0', 'word:report', 'word:pdf', 'file-ext=pdf', 'file-type=application/pdf', 'file-major-type=application', 'content-type=multipart/form-data', 'file?']));
  });

  it('reads only the configured headers', () => {
    const names = features({ ...query('x'), headers: { 'x-client-app': 'Forge-CLI', authorization: 'Bearer secret' } }).names;
    expect(names).toContain('x-client-app=forge-cli');
    expect(names.join(' ')).not.toContain('secret');
  });

  it('stops at the character budget, so a huge body costs no more than maxTextChars', () => {
    const settings = { ...DEFAULT_FEATURE_SETTINGS, maxTextChars: 64 };
    const long = features(query('word '.repeat(10_000)), settings).set.length;
    const budget = features(query('word '.repeat(13)), settings).set.length;
    expect(long).toBeLessThanOrEqual(budget + 2);
  });

  it('an empty request still has its structural features', () => {
    const { names } = features({ method: 'POST', path: '/v1/query', body: {} });
    expect(names).toEqual(['method=post', 'path-segment=v1', 'path-segment=query', 'path=/v1/query']);
  });
});
