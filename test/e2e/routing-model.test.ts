import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/auth/api-keys.js';
import { cleanup, NOTHING_LISTENING, onCleanup, ROOT, runCli, startGateway, waitFor, type GatewayProcess } from '../helpers/gateway.js';
import { call, type HttpResult } from '../helpers/http.js';
import { parsePrometheusText } from '../helpers/prometheus.js';
import { standIn, standIns, type StandIn } from '../helpers/upstreams.js';
import { constantModelFile } from '../routing/model/helpers.js';
import { exampleText, loadDataFiles } from '../../src/routing/model/data.js';
import { summarise } from '../../src/routing/model/evaluation.js';

/*
 * The routing model in a running gateway: POST /v1/query and /v1/upload reach the stand-in of
 * the service the model picks; low confidence goes to the default service; X-Target-Service
 * needs write scope; models swap at runtime (CLI promote/rollback, admin API) without restart;
 * shadow mode counts agreement.
 */

const READER_KEY = 'routing-reader-key-0123456789';
const WRITER_KEY = 'routing-writer-key-0123456789';
const SERVICES = ['twin', 'agent-controller', 'knowledge', 'fog', 'p2p'] as const;

let gw: GatewayProcess;
let ups: Record<(typeof SERVICES)[number], StandIn>;
let upsEnv: Record<string, string>;
let modelsDir: string;

/** A copy of the shipped routing-models/ (active.json + models/), so promote/rollback here never touch the real one. */
function copyOfShippedModels(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ugw-routing-e2e-'));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(join(ROOT, 'routing-models/active.json'), join(dir, 'active.json'));
  cpSync(join(ROOT, 'routing-models/models'), join(dir, 'models'), { recursive: true });
  return dir;
}

const yaml = (dir: string, extra = '') => `
auth:
  apiKeys:
    - { name: reader, sha256: ${sha256Hex(READER_KEY)}, scopes: [read] }
    - { name: writer, sha256: ${sha256Hex(WRITER_KEY)}, scopes: [write] }
routing:
  modelsDir: ${dir}
${extra}`;

function ask(text: string, options: { key?: string; headers?: Record<string, string>; body?: Record<string, unknown>; url?: string } = {}): Promise<HttpResult> {
  return call(`${options.url ?? gw.url}/v1/query`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(options.key ? { 'x-api-key': options.key } : {}), ...options.headers },
    body: JSON.stringify(options.body ?? { query: text }),
  });
}

async function metric(name: string, labels: Record<string, string>, url = gw.url): Promise<number> {
  const families = parsePrometheusText((await call(`${url}/metrics`)).text);
  const sample = families.get(name)?.samples.find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return sample?.value ?? 0;
}

beforeAll(async () => {
  const started = await standIns([...SERVICES]);
  ups = started.byName;
  upsEnv = started.env;
  modelsDir = copyOfShippedModels();
  for (const label of ['p2p', 'twin']) writeFileSync(join(modelsDir, 'models', `rm-always-${label}.json`), JSON.stringify(constantModelFile(label)));
  gw = await startGateway({ env: upsEnv, yaml: yaml(modelsDir) });
});
afterAll(cleanup);

describe('POST /v1/query picks the service with the routing model', () => {
  const cases: Record<(typeof SERVICES)[number], string[]> = {
    twin: ['remind me to water the plants tomorrow morning', 'what did I write in my notes about the vacation?', 'I prefer shorter answers, please remember that'],
    'agent-controller': ['deploy the new version of the support agent to production', 'how is the training of my research agent going', 'evaluate agent atlas on the regression suite'],
    knowledge: ['what does the employee handbook say about parental leave', 'search the documentation for webhook retries', 'explain how DNS works'],
    fog: ['what is the status of job 4412', 'how much does an hour of GPU time cost on the fog nodes', 'submit a rendering job with 8 GPUs'],
    p2p: ['how many peers am I connected to', 'hole punching fails behind my NAT', 'sync my photos folder with my laptop over the mesh'],
  };

  for (const service of SERVICES) {
    it(`${service}: questions about it reach its stand-in, with x-routed-to and x-routing-confidence`, async () => {
      for (const text of cases[service]) {
        const before = ups[service].requestCount;
        const res = await ask(text, { key: READER_KEY });
        expect(res.status, `${text}: ${res.text}`).toBe(200);
        expect(res.json().service, text).toBe(service);
        expect(res.json().path).toBe('/v1/query');
        expect(JSON.parse(res.json().body)).toEqual({ query: text });
        expect(res.headers['x-routed-to']).toBe(service);
        expect(res.headers['x-routing-reason']).toBe('model');
        expect(Number(res.headers['x-routing-confidence'])).toBeGreaterThanOrEqual(0.5);
        expect(res.headers['x-routing-model']).toMatch(/^rm-/);
        expect(ups[service].requestCount).toBe(before + 1);
      }
    });
  }

  it('reads prompt and message as well as query', async () => {
    expect((await ask('', { body: { prompt: 'cancel my compute job 881' } })).headers['x-routed-to']).toBe('fog');
    expect((await ask('', { body: { message: 'send a message to peer bob', session_id: 'x' } })).headers['x-routed-to']).toBe('p2p');
  });

  it('sends text it cannot place to the default service (routing.defaultService), saying so', async () => {
    const lowConfidence = async (body: Record<string, unknown>) => {
      const res = await ask('', { body });
      expect(res.status).toBe(200);
      if (res.headers['x-routing-reason'] !== 'low-confidence') return false;
      expect(res.json().service).toBe('knowledge');
      expect(res.headers['x-routed-to']).toBe('knowledge');
      expect(Number(res.headers['x-routing-confidence'])).toBeLessThan(0.5);
      return true;
    };
    for (const body of [{ query: '' }, {}]) expect(await lowConfidence(body)).toBe(true);
    // Made-up words are a class, not one string: the model is trained to be unsure of them, and
    // a few percent of random letter strings still cross 0.5 (5% for rm-8b93f860fbaa, 4% for the
    // model before, measured on 500), so most of these five, not each, must come out unsure.
    let unsure = 0;
    for (const query of ['zxqv blorp', 'asdf qwer', 'florbix gadunk', 'xkcd zzz', 'qwxz']) if (await lowConfidence({ query })) unsure++;
    expect(unsure).toBeGreaterThanOrEqual(4);
    expect(await metric('gateway_routing_decisions', { service: 'knowledge', auto_detected: 'false' })).toBeGreaterThanOrEqual(6);
  });

  it('counts every decision by service and whether the model chose it', async () => {
    expect(await metric('gateway_routing_decisions', { service: 'fog', auto_detected: 'true' })).toBeGreaterThanOrEqual(3);
    expect(await metric('gateway_routing_decisions', { service: 'p2p', auto_detected: 'true' })).toBeGreaterThanOrEqual(3);
  });

  // holdout-2026-12-c.jsonl is the last clean set, written after the model was fixed (docs/routing-model.md);
  // the others were read for the classes of their misses before later models were trained.
  it.each([
    ['holdout-fresh.jsonl', 0.96],
    ['holdout-2026-12.jsonl', 0.96],
    ['holdout-2026-12-b.jsonl', 0.95],
    ['holdout-2026-12-c.jsonl', 0.95],
  ] as const)('the held-out set %s (never trained on) scores at least %s accuracy and macro-F1 through /v1/query', async (file, floor) => {
    // What a client gets, threshold and default service included: the x-routed-to of each answer.
    const data = loadDataFiles([join(ROOT, 'routing-models/data', file)]);
    expect(data.examples.length).toBeGreaterThanOrEqual(150);
    const predictions = [];
    for (const e of data.examples) {
      const res = await ask('', { key: READER_KEY, body: e.request.body as Record<string, unknown> });
      expect(res.status, exampleText(e)).toBe(200);
      const routed = String(res.headers['x-routed-to']);
      predictions.push({ source: e.source, expected: e.service, predicted: routed, confidence: Number(res.headers['x-routing-confidence']), expectedProbability: routed === e.service ? 1 : 0 });
    }
    const r = summarise(SERVICES, predictions, { name: file, hash: data.hash });
    if (process.env.ROUTING_FIGURES === '1') process.stdout.write(`${file} through /v1/query: accuracy ${r.accuracy.toFixed(4)} macro-F1 ${r.macroF1.toFixed(4)} ${JSON.stringify(r.confusion.matrix)}\n`);
    expect(r.accuracy).toBeGreaterThanOrEqual(floor);
    expect(r.macroF1).toBeGreaterThanOrEqual(floor);
  });

  it('accepts POST only', async () => {
    const res = await call(`${gw.url}/v1/query`);
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe('POST');
  });
});

describe('naming the service overrides the model, with write scope only', () => {
  it('X-Target-Service from a write-scope caller wins over the model', async () => {
    const res = await ask('what is the status of job 4412', { key: WRITER_KEY, headers: { 'x-target-service': 'p2p' } });
    expect(res.status).toBe(200);
    expect(res.json().service).toBe('p2p');
    expect(res.headers['x-routed-to']).toBe('p2p');
    expect(res.headers['x-routing-reason']).toBe('override');
    expect(res.headers['x-routing-confidence']).toBe('1.0000');
    expect(await metric('gateway_routing_decisions', { service: 'p2p', auto_detected: 'false' })).toBeGreaterThanOrEqual(1);
  });

  it('so does a "service" field in the body', async () => {
    const res = await ask('', { key: WRITER_KEY, body: { query: 'what is the status of job 4412', service: 'twin' } });
    expect(res.json().service).toBe('twin');
    expect(res.headers['x-routing-reason']).toBe('override');
  });

  it('a read-only caller may ask (the model decides) but not name the service: 403, nothing forwarded', async () => {
    expect((await ask('what is the status of job 4412', { key: READER_KEY })).json().service).toBe('fog');
    const before = SERVICES.map((s) => ups[s].requestCount);
    const res = await ask('what is the status of job 4412', { key: READER_KEY, headers: { 'x-target-service': 'p2p' } });
    expect(res.status).toBe(403);
    expect(res.json().error.code).toBe('GW_AUTH_INSUFFICIENT_SCOPE');
    expect(res.json().error.message).toMatch(/write scope/);
    const viaBody = await ask('', { key: READER_KEY, body: { query: 'x', service: 'p2p' } });
    expect(viaBody.status).toBe(403);
    expect(SERVICES.map((s) => ups[s].requestCount)).toEqual(before);
  });

  it('an unknown service name is a 400', async () => {
    const res = await ask('x', { key: WRITER_KEY, headers: { 'x-target-service': 'weather' } });
    expect(res.status).toBe(400);
    expect(res.json().error.code).toBe('GW_ROUTING_UNKNOWN_SERVICE');
  });

  it('no credentials: 401 as on every /v1 route', async () => {
    const res = await call(`${gw.url}/v1/query`, { method: 'POST', anonymous: true, headers: { 'content-type': 'application/json' }, body: '{"query":"x"}' });
    expect(res.status).toBe(401);
  });
});

describe('POST /v1/upload', () => {
  function multipart(parts: Array<{ name: string; filename?: string; type?: string; body: string | Buffer }>) {
    const boundary = `----ugw${Math.random().toString(16).slice(2)}`;
    const chunks: Buffer[] = [];
    for (const p of parts) {
      chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"${p.filename ? `; filename="${p.filename}"` : ''}\r\n${p.type ? `Content-Type: ${p.type}\r\n` : ''}\r\n`));
      chunks.push(Buffer.isBuffer(p.body) ? p.body : Buffer.from(p.body));
      chunks.push(Buffer.from('\r\n'));
    }
    chunks.push(Buffer.from(`--${boundary}--\r\n`));
    return { body: Buffer.concat(chunks), contentType: `multipart/form-data; boundary=${boundary}` };
  }

  it('routes on the file name, type and form fields, and streams the whole body to the chosen service', async () => {
    const cases = [
      { expect: 'knowledge', parts: [{ name: 'message', body: 'add this to the knowledge base' }, { name: 'file', filename: 'employee_handbook_2025.pdf', type: 'application/pdf', body: Buffer.alloc(200_000, 7) }] },
      { expect: 'fog', parts: [{ name: 'message', body: 'run this on the cluster with 8 cores' }, { name: 'file', filename: 'render_job.tar.gz', type: 'application/gzip', body: Buffer.alloc(50_000, 3) }] },
      { expect: 'twin', parts: [{ name: 'file', filename: 'voice_memo.m4a', type: 'audio/mp4', body: Buffer.alloc(9_000, 1) }, { name: 'message', body: 'keep this with my personal notes' }] },
    ];
    for (const c of cases) {
      const { body, contentType } = multipart(c.parts);
      const res = await call(`${gw.url}/v1/upload`, { method: 'POST', headers: { 'content-type': contentType, 'x-api-key': WRITER_KEY }, body });
      expect(res.status, res.text).toBe(200);
      expect(res.headers['x-routed-to']).toBe(c.expect);
      expect(res.json().service).toBe(c.expect);
      expect(res.json().bodyBytes).toBe(body.length);
      expect(res.json().bodySha256).toBe(createHash('sha256').update(body).digest('hex'));
    }
  });

  it('a raw upload is routed on Content-Disposition / X-File-Name and Content-Type', async () => {
    const body = Buffer.alloc(10_000, 5);
    const res = await call(`${gw.url}/v1/upload`, {
      method: 'POST',
      headers: { 'content-type': 'application/pdf', 'content-disposition': 'attachment; filename="security_policy_2025.pdf"', 'x-api-key': WRITER_KEY },
      body,
    });
    expect(res.status).toBe(200);
    expect(res.headers['x-routed-to']).toBe('knowledge');
    expect(res.json().bodyBytes).toBe(body.length);
  });

  it('needs write scope', async () => {
    const res = await call(`${gw.url}/v1/upload`, { method: 'POST', headers: { 'content-type': 'application/pdf', 'x-api-key': READER_KEY }, body: 'x' });
    expect(res.status).toBe(403);
  });
});

describe('models change at runtime, without a restart', () => {
  const admin = (method: string, path: string, body?: unknown, key?: string) =>
    call(`${gw.url}${path}`, { method, ...(key ? { headers: { 'x-api-key': key } } : {}), ...(body !== undefined ? { headers: { 'content-type': 'application/json', ...(key ? { 'x-api-key': key } : {}) }, body: JSON.stringify(body) } : {}) });

  it('shadow mode: a candidate scores the same requests off the hot path; the admin API shows the agreement rate and the metric moves', async () => {
    const set = await admin('PUT', '/admin/routing/model/shadow', { model: 'rm-always-p2p' });
    expect(set.status, set.text).toBe(200);
    expect(set.json().shadow.id).toBe('rm-always-p2p');
    const disagreeBefore = await metric('gateway_routing_shadow_agreement_total', { result: 'disagree' });
    const agreeBefore = await metric('gateway_routing_shadow_agreement_total', { result: 'agree' });
    for (const text of ['what is the status of job 4412', 'remind me to call mom', 'how many peers am I connected to', 'deploy the support agent']) {
      const res = await ask(text);
      expect(res.status).toBe(200);
      expect(res.headers['x-routing-model']).not.toBe('rm-always-p2p'); // the active model still decides
    }
    const status = await waitFor(async () => {
      const s = (await admin('GET', '/admin/routing/model')).json();
      return s.shadowAgreement.agree + s.shadowAgreement.disagree >= 4 ? s : undefined;
    }, 5000, 'shadow scoring');
    expect(status.shadowAgreement).toMatchObject({ agree: 1, disagree: 3, dropped: 0, rate: 0.25 });
    expect(await metric('gateway_routing_shadow_agreement_total', { result: 'disagree' })).toBe(disagreeBefore + 3);
    expect(await metric('gateway_routing_shadow_agreement_total', { result: 'agree' })).toBe(agreeBefore + 1);
    const cleared = await admin('DELETE', '/admin/routing/model/shadow');
    expect(cleared.json().shadow).toBeNull();
  });

  it('`model promote` switches the running gateway within seconds; `model rollback` switches it back', async () => {
    const shipped = (await ask('what is the status of job 4412')).headers['x-routing-model'];
    const candidate = join(modelsDir, '..', `${modelsDir.split('/').pop()}-candidate.json`);
    writeFileSync(candidate, JSON.stringify(constantModelFile('p2p', 'rm-candidate-p2p')));
    onCleanup(() => rmSync(candidate, { force: true }));
    const promoted = await runCli(['model', 'promote', candidate, '--dir', modelsDir]);
    expect(promoted.code, promoted.stderr).toBe(0);
    expect(promoted.stdout).toContain('promoted rm-candidate-p2p');
    const res = await waitFor(async () => {
      const r = await ask('what is the status of job 4412');
      return r.headers['x-routing-model'] === 'rm-candidate-p2p' ? r : undefined;
    }, 10_000, 'the gateway to pick up the promoted model', 100);
    expect(res.json().service).toBe('p2p');
    expect(gw.child.exitCode).toBeNull(); // same process

    const rolled = await runCli(['model', 'rollback', '--dir', modelsDir]);
    expect(rolled.code, rolled.stderr).toBe(0);
    expect(rolled.stdout).toContain(`rolled back rm-candidate-p2p -> ${shipped}`);
    await waitFor(async () => ((await ask('what is the status of job 4412')).headers['x-routed-to'] === 'fog' ? true : undefined), 10_000, 'the rollback', 100);
  });

  it('the admin API activates a model by id (every replica follows) and goes back to active.json', async () => {
    const res = await admin('POST', '/admin/routing/model/activate', { model: 'rm-always-twin', persist: false });
    expect(res.status, res.text).toBe(200);
    expect(res.json()).toMatchObject({ active: { id: 'rm-always-twin' }, persisted: false });
    expect((await ask('what is the status of job 4412')).json().service).toBe('twin');
    const back = await admin('POST', '/admin/routing/model/activate', { model: 'pointer' });
    expect(back.status).toBe(200);
    expect((await ask('what is the status of job 4412')).json().service).toBe('fog');
  });

  it('the admin API refuses unknown models and non-admin callers', async () => {
    const unknown = await admin('POST', '/admin/routing/model/activate', { model: 'rm-nope' });
    expect(unknown.status).toBe(404);
    expect(unknown.json().error.code).toBe('GW_ADMIN_MODEL_NOT_FOUND');
    const bad = await admin('PUT', '/admin/routing/model/shadow', { model: '../../etc/passwd' });
    expect(bad.status).toBe(400);
    expect((await admin('GET', '/admin/routing/model', undefined, WRITER_KEY)).status).toBe(403);
  });
});

describe('configuration', () => {
  it('routing.ambiguous: 300 answers low-confidence requests with GW_ROUTING_AMBIGUOUS and the candidates', async () => {
    const other = await startGateway({ env: upsEnv, yaml: yaml(modelsDir, '  ambiguous: 300\n  confidenceThreshold: 0.6\n') });
    const res = await ask('', { url: other.url, body: { query: 'zxqv blorp' } });
    expect(res.status).toBe(300);
    expect(res.json().error.code).toBe('GW_ROUTING_AMBIGUOUS');
    expect(res.json().error.message).toMatch(/candidates: [a-z0-9-]+ \(0\.\d\d\), [a-z0-9-]+ \(0\.\d\d\), [a-z0-9-]+ \(0\.\d\d\)/);
    expect(res.headers['x-routing-candidates']).toMatch(/^[a-z0-9-]+;p=0\.\d+, /);
    expect(res.headers['x-routing-reason']).toBe('ambiguous');
    const sure = await ask('how many peers am I connected to', { url: other.url });
    expect(sure.status).toBe(200);
    await other.stop();
  });

  it('refuses to start with a model whose labels do not match routing.services, in one line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ugw-routing-bad-'));
    onCleanup(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, yaml(modelsDir, '  services: [twin, knowledge]\n'));
    const res = await runCli(['serve', '--config', file], upsEnv);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/^routing model problem: .*do not match the routing services \(twin, knowledge\)/);
    expect(res.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('ML-routed requests take the chosen service\'s split, breaker and fallback, as its table route does', () => {
  let other: GatewayProcess;
  let twin: StandIn;
  let canary: StandIn;
  let knowledge: StandIn;
  let p2p: StandIn;

  beforeAll(async () => {
    const started = await standIns(['twin', 'knowledge', 'p2p', 'agent-controller']);
    twin = started.byName.twin;
    knowledge = started.byName.knowledge;
    p2p = started.byName.p2p;
    canary = await standIn('twin-v2');
    other = await startGateway({
      env: { ...started.env, FOG_COORDINATOR_URL: NOTHING_LISTENING },
      yaml: yaml(
        modelsDir,
        [
          'health:',
          '  intervalMs: 60000',
          'routes:',
          `  - { id: twin, prefix: /v1/twin, service: twin, split: { canary: { urls: ["${canary.url}"] }, weights: { stable: 0, canary: 100 } } }`,
          'services:',
          '  knowledge:',
          '    breaker: { volumeThreshold: 3, errorThresholdPercentage: 50, resetTimeout: 60000 }',
          '    retries: { maxRetries: 0 }',
          '    fallback: "service:p2p"',
          '  fog:',
          '    retries: { maxRetries: 0 }',
          '    fallback: { type: static, body: { degraded: true } }',
          '',
        ].join('\n'),
      ),
    });
  });

  it('a question the model sends to twin reaches the twin canary when twin\'s split says 100% canary', async () => {
    const stableBefore = twin.requestCount;
    for (const text of ['remind me to water the plants tomorrow morning', 'what did I write in my notes about the vacation?']) {
      const res = await ask(text, { key: READER_KEY, url: other.url });
      expect(res.status, res.text).toBe(200);
      expect(res.headers['x-routed-to']).toBe('twin');
      expect(res.headers['x-routing-reason']).toBe('model');
      expect(res.headers['x-gateway-upstream']).toBe('canary');
      expect(res.json()).toMatchObject({ service: 'twin-v2', path: '/v1/query' });
    }
    expect(canary.requestCount).toBeGreaterThanOrEqual(2);
    expect(twin.requestCount).toBe(stableBefore);
    // Counted like the table route's requests: the canary service, on the canary side.
    expect(await metric('gateway_service_requests', { service: 'twin-canary', status: '200', side: 'canary' }, other.url)).toBe(2);
    // A service without a split: no x-gateway-upstream.
    const plain = await ask('how many peers am I connected to', { key: READER_KEY, url: other.url });
    expect([plain.headers['x-routed-to'], plain.headers['x-gateway-upstream']]).toEqual(['p2p', undefined]);
  });

  it('the chosen service\'s circuit breaker counts /v1/query failures, and once open its fallback answers without the upstream', async () => {
    const question = 'what does the employee handbook say about parental leave';
    knowledge.behaviour.failStatus = 500;
    let fallback: string | undefined;
    for (let i = 0; i < 20 && fallback === undefined; i++) {
      const res = await ask(question, { key: READER_KEY, url: other.url });
      expect(res.headers['x-routed-to']).toBe('knowledge');
      fallback = res.headers['x-gateway-fallback'] as string | undefined;
      if (fallback === undefined) expect(res.status).toBe(500); // 5xx answers are forwarded and counted
    }
    await other.waitForLog((l) => l.msg === 'circuit breaker opened' && l.service === 'knowledge');
    const knowledgeBefore = knowledge.requestCount;
    const p2pBefore = p2p.requestCount;
    const res = await ask(question, { key: READER_KEY, url: other.url });
    expect(res.status).toBe(200);
    expect(res.headers['x-routed-to']).toBe('knowledge');
    expect(res.headers['x-gateway-fallback']).toBe('service:p2p');
    expect(res.json()).toMatchObject({ service: 'p2p', path: '/v1/query', method: 'POST' });
    expect(JSON.parse(res.json().body)).toEqual({ query: question });
    expect(knowledge.requestCount).toBe(knowledgeBefore);
    expect(p2p.requestCount).toBe(p2pBefore + 1);
    expect(await metric('gateway_service_requests', { service: 'knowledge', status: 'circuit_open', side: 'stable' }, other.url)).toBeGreaterThanOrEqual(1);
    knowledge.behaviour.failStatus = null;
  });

  it('an unreachable chosen service gets its static fallback', async () => {
    const res = await ask('what is the status of job 4412', { key: READER_KEY, url: other.url });
    expect(res.headers['x-routed-to']).toBe('fog');
    expect(res.status).toBe(200);
    expect(res.headers['x-gateway-fallback']).toBe('static');
    expect(res.json()).toEqual({ degraded: true });
  });
});
