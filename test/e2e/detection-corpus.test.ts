import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanup, startGateway, type GatewayProcess } from '../helpers/gateway.js';
import { call, type HttpResult } from '../helpers/http.js';
import { standIns, type StandIn } from '../helpers/upstreams.js';
import { HOLDOUT_CORPUS, MAIN_CORPUS, samples, type CorpusFile, type Sample } from '../security/corpus.js';

/*
 * The labelled corpus (test/security/corpus) sent through the running gateway, each value in
 * its realistic place: detection and false-positive rates as clients and upstreams see them
 * (403 GW_SECURITY_INPUT_REJECTED vs the upstream's answer), and proof that rejected input
 * never reached an upstream.
 */

const MIN_DETECTION = 0.98;
const MAX_FALSE_POSITIVES = 0.01;

let gw: GatewayProcess;
let upstreams: StandIn[];

beforeAll(async () => {
  const ups = await standIns();
  upstreams = Object.values(ups.byName);
  gw = await startGateway({
    env: ups.env,
    // /v1/query is served by knowledge until the routing model picks services (its text
    // fields run in `text` mode); `code` is a free-text field wherever it appears.
    yaml: `
limits: { headerCount: 100 }
routes:
  - { prefix: /v1/query, service: knowledge, textFields: [query, prompt, message], freeTextFields: [code] }
  - { prefix: /v1/upload, service: knowledge, freeTextFields: [code] }
  - { prefix: /v1/knowledge, service: knowledge, freeTextFields: [code] }
  - { prefix: /v1/twin, service: twin, freeTextFields: [code] }
`,
  });
});
afterAll(cleanup);

function send(s: Sample): Promise<HttpResult> {
  const { path, query, headers, body } = s.request;
  const url = `${gw.url}${path}${query === '' ? '' : `?${query}`}`;
  return call(url, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { ...headers, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

interface Outcome {
  readonly attacks: number;
  /** Attacks refused: 403 by a validation rule, or 400 as a malformed request (counted in `malformed`). */
  readonly blocked: number;
  readonly malformed: number;
  /** Responses that came from an upstream (status 200 from the stand-ins). */
  readonly forwarded: number;
  readonly benign: number;
  readonly falsePositives: number;
  readonly unexpected: string[];
}

async function run(files: readonly CorpusFile[]): Promise<Outcome> {
  const all = [...samples(files)];
  let attacks = 0;
  let blocked = 0;
  let malformed = 0;
  let forwarded = 0;
  let benign = 0;
  let falsePositives = 0;
  const unexpected: string[] = [];
  // A few requests in flight at a time: fast, without turning the test into a load test.
  for (let i = 0; i < all.length; i += 16) {
    const batch = all.slice(i, i + 16);
    const results = await Promise.all(batch.map((s) => send(s).catch((err: Error) => err)));
    results.forEach((res, j) => {
      const s = batch[j]!;
      if (res instanceof Error) {
        unexpected.push(`${s.placement}: ${res.message}`);
        return;
      }
      const code = res.status === 200 ? undefined : (res.json() as { error?: { code?: string } }).error?.code;
      const detected = res.status === 403 && code === 'GW_SECURITY_INPUT_REJECTED';
      // Paths with invalid percent-encoding (overlong UTF-8, %u escapes) never parse as a URL;
      // dot segments and encoded separators break the canonical path rules (GW_REQUEST_PATH_INVALID).
      const refusedAsMalformed = res.status === 400 && (code === 'GW_REQUEST_INVALID' || code === 'GW_REQUEST_PATH_INVALID');
      const rejected = detected || refusedAsMalformed;
      if (res.status === 200) forwarded++;
      else if (!rejected) unexpected.push(`${s.placement} -> ${res.status} ${JSON.stringify(s.request.path)} ${res.text.slice(0, 100)}`);
      if (rejected) expect(res.text.includes(s.value) && s.value.length > 3, 'the payload is never echoed').toBe(false);
      if (s.label === 'attack') {
        attacks++;
        if (rejected) blocked++;
        if (refusedAsMalformed) malformed++;
      } else {
        benign++;
        if (rejected) falsePositives++;
      }
    });
  }
  return { attacks, blocked, malformed, forwarded, benign, falsePositives, unexpected };
}

const pct = (n: number, d: number) => `${((100 * n) / d).toFixed(2)}%`;

function sum(outcomes: readonly Outcome[]): Outcome {
  const total = (k: 'attacks' | 'blocked' | 'malformed' | 'forwarded' | 'benign' | 'falsePositives') => outcomes.reduce((n, o) => n + o[k], 0);
  return {
    attacks: total('attacks'),
    blocked: total('blocked'),
    malformed: total('malformed'),
    forwarded: total('forwarded'),
    benign: total('benign'),
    falsePositives: total('falsePositives'),
    unexpected: outcomes.flatMap((o) => o.unexpected),
  };
}

describe('input validation through the running gateway', () => {
  it('blocks at least 98% of attacks and at most 1% of benign traffic, and blocked input never reaches an upstream', async () => {
    const before = upstreams.reduce((n, u) => n + u.requestCount, 0);
    // file by file (issue 11: the thresholds hold on each file, held-out and new classes included)
    const byFile = new Map<CorpusFile, Outcome>();
    for (const f of [...MAIN_CORPUS, ...HOLDOUT_CORPUS]) byFile.set(f, await run([f]));
    const main = sum(MAIN_CORPUS.map((f) => byFile.get(f) as Outcome));
    const holdout = sum(HOLDOUT_CORPUS.map((f) => byFile.get(f) as Outcome));
    const reached = upstreams.reduce((n, u) => n + u.requestCount, 0) - before;
    const answeredByUpstream = main.forwarded + holdout.forwarded;

    const attacks = main.attacks + holdout.attacks;
    const blocked = main.blocked + holdout.blocked;
    const benign = main.benign + holdout.benign;
    const fps = main.falsePositives + holdout.falsePositives;
    console.log(
      [
        'Input validation through the gateway (blocked = 403 GW_SECURITY_INPUT_REJECTED, or 400 GW_REQUEST_INVALID for unparseable paths):',
        `  main      detection ${main.blocked}/${main.attacks} ${pct(main.blocked, main.attacks)} (${main.malformed} as malformed)   false positives ${main.falsePositives}/${main.benign} ${pct(main.falsePositives, main.benign)}`,
        `  held-out  detection ${holdout.blocked}/${holdout.attacks} ${pct(holdout.blocked, holdout.attacks)} (${holdout.malformed} as malformed)   false positives ${holdout.falsePositives}/${holdout.benign} ${pct(holdout.falsePositives, holdout.benign)}`,
        `  all       detection ${blocked}/${attacks} ${pct(blocked, attacks)}   false positives ${fps}/${benign} ${pct(fps, benign)}`,
        `  requests that reached an upstream: ${reached} (responses answered by an upstream: ${answeredByUpstream})`,
        '  per file:',
        ...[...byFile].map(([f, o]) =>
          f.label === 'attack'
            ? `    ${f.file.padEnd(36)} detection ${o.blocked}/${o.attacks} ${pct(o.blocked, o.attacks)}`
            : `    ${f.file.padEnd(36)} false positives ${o.falsePositives}/${o.benign} ${pct(o.falsePositives, o.benign)}`,
        ),
      ].join('\n'),
    );
    for (const [f, o] of byFile) {
      if (f.label === 'attack') expect(o.blocked / o.attacks, f.file).toBeGreaterThanOrEqual(MIN_DETECTION);
      else expect(o.falsePositives / o.benign, f.file).toBeLessThanOrEqual(MAX_FALSE_POSITIVES);
    }

    expect([...main.unexpected, ...holdout.unexpected]).toEqual([]);
    expect(reached).toBe(answeredByUpstream);
    expect(main.blocked / main.attacks).toBeGreaterThanOrEqual(MIN_DETECTION);
    expect(main.falsePositives / main.benign).toBeLessThanOrEqual(MAX_FALSE_POSITIVES);
    expect(blocked / attacks).toBeGreaterThanOrEqual(MIN_DETECTION);
    expect(fps / benign).toBeLessThanOrEqual(MAX_FALSE_POSITIVES);
  }, 120_000);
});
