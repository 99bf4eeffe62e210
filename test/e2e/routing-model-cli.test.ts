import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanup, onCleanup, ROOT, runCli } from '../helpers/gateway.js';
import { startHfMcpServer, type HfMcpServer } from '../helpers/hf-mcp-server.js';
import { startHfServer, type HfServer } from '../helpers/hf-server.js';
import { constantModelFile } from '../routing/model/helpers.js';

/*
 * `unified-gateway model ...` as an operator runs it (the built CLI, in a child process):
 * train, eval, compare, explain, list, promote/rollback, validate and benchmark, with their exit codes.
 */

const DATA = join(ROOT, 'routing-models/data');
const VALIDATION = join(DATA, 'validation.jsonl');
const shippedPointer = JSON.parse(readFileSync(join(ROOT, 'routing-models/active.json'), 'utf8')) as { id: string; file: string };
const SHIPPED = join(ROOT, 'routing-models', shippedPointer.file);
let dir: string;
let hf: HfServer;
const noStack = (s: string) => expect(s).not.toMatch(/\n\s+at .+:\d+:\d+/);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ugw-model-cli-'));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  hf = await startHfServer();
  onCleanup(() => hf.close());
  writeFileSync(join(dir, 'always-p2p.json'), JSON.stringify(constantModelFile('p2p', 'rm-always-p2p')));
});
afterAll(cleanup);

describe('model train', () => {
  it('prints progress and the validation figures, and reproduces the shipped model bit for bit with its seed', async () => {
    const out = join(dir, 'retrained.json');
    const res = await runCli(['model', 'train', '--data', DATA, '--out', out, '--seed', '42'], {}, 30_000);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^training data +train\.jsonl: 5604 examples \(/m);
    expect(res.stdout).toMatch(/^validation data validation\.jsonl: 460 examples/m);
    expect(res.stdout).toMatch(/^epoch +1\/24 +loss [\d.]+ +train accuracy [\d.]+/m);
    expect(res.stdout).toMatch(/^epoch +24\/24 .* validation accuracy 0\.9\d+ macro-F1 0\.9\d+$/m);
    expect(res.stdout).toContain('validation figures (validation.jsonl)');
    expect(res.stdout).toContain('confusion matrix (rows: true label, columns: predicted)');
    const trained = JSON.parse(readFileSync(out, 'utf8'));
    const shipped = JSON.parse(readFileSync(SHIPPED, 'utf8'));
    expect(trained.id).toBe(shipped.id);
    expect(trained.weights).toEqual(shipped.weights);
    expect(trained.bias).toEqual(shipped.bias);
    expect(readFileSync(join(dir, 'retrained.md'), 'utf8')).toContain(`# Routing model ${shipped.id}`);
  });

  it('says what is wrong with its options and data, without a stack trace', async () => {
    const bad = await runCli(['model', 'train', '--data', DATA, '--out', join(dir, 'x.json'), '--seed', 'abc']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^unified-gateway model train: --seed must be a whole number/);
    writeFileSync(join(dir, 'broken.jsonl'), '{"request": {"path": "/v1/query"}, "service": "twin"}\n{oops\n');
    const broken = await runCli(['model', 'train', '--data', join(dir, 'broken.jsonl'), '--out', join(dir, 'x.json')]);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toMatch(/broken\.jsonl:2: not JSON/);
    noStack(broken.stderr);
  });
});

describe('model eval, compare, explain', () => {
  it('eval --json: one object with accuracy and macro_f1 (0..1), per class and the confusion matrix', async () => {
    const res = await runCli(['model', 'eval', '--model', SHIPPED, '--data', VALIDATION, '--json']);
    expect(res.code, res.stderr).toBe(0);
    const r = JSON.parse(res.stdout);
    expect(r.model).toBe(shippedPointer.id);
    expect(r.accuracy).toBeGreaterThanOrEqual(0.95);
    expect(r.accuracy).toBeLessThanOrEqual(1);
    expect(r.macro_f1).toBeGreaterThanOrEqual(0.95);
    expect(Object.keys(r.per_class)).toEqual(['twin', 'agent-controller', 'knowledge', 'fog', 'p2p']);
    expect(r.confusion.matrix.flat().reduce((a: number, b: number) => a + b, 0)).toBe(r.examples);
    expect(r.errors.length).toBe(Math.round((1 - r.accuracy) * r.examples));
  });

  it('eval without --model uses the active model and prints the report', async () => {
    const res = await runCli(['model', 'eval', '--data', VALIDATION]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain(`model ${shippedPointer.id}`);
    expect(res.stdout).toMatch(/accuracy 0\.9\d+ +macro-F1 0\.9\d+/);
    expect(res.stdout).toContain('misrouted (');
  });

  it('compare shows both side by side and the requests they route differently', async () => {
    const res = await runCli(['model', 'compare', '--model', SHIPPED, '--model', join(dir, 'always-p2p.json'), '--data', VALIDATION, '--limit', '5']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^accuracy +0\.9\d+ +0\.2000 +-0\.7\d+$/m);
    expect(res.stdout).toMatch(/^agreement 0\.\d+: they disagree on \d+ of 460$/m);
    expect(res.stdout).toMatch(/validation\.jsonl:\d+ +twin +twin +\d\.\d\d +p2p/);
    const json = JSON.parse((await runCli(['model', 'compare', '--model', SHIPPED, '--model', join(dir, 'always-p2p.json'), '--data', VALIDATION, '--json'])).stdout);
    expect(json.b).toMatchObject({ model: 'rm-always-p2p', accuracy: 0.2 });
    expect(json.disagreements.length).toBeGreaterThan(300);
  });

  it('explain gives probabilities and the features that weigh most', async () => {
    const res = await runCli(['model', 'explain', '--model', SHIPPED, 'how many peers are online in the mesh?']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(new RegExp(`^model ${shippedPointer.id}: p2p \\(p=0\\.9\\d+\\)`));
    expect(res.stdout).toMatch(/^ +p2p +0\.9\d+ +#+$/m);
    expect(res.stdout).toMatch(/^word "peers" +\+\d\.\d+ /m);
    const raw = await runCli(['model', 'explain', '--model', SHIPPED, 'how many peers are online in the mesh?', '--features']);
    expect(raw.stdout).toMatch(/^chars:<pee \(peers\) +\+\d\.\d+ /m);
    expect(raw.stdout).toMatch(/^lexicon:peer +\+\d\.\d+ /m);
    const upload = JSON.parse((await runCli(['model', 'explain', '--model', SHIPPED, '', '--file-name', 'employee_handbook.pdf', '--file-type', 'application/pdf', '--json'])).stdout);
    expect(upload.label).toBe('knowledge');
    expect(upload.contributions.length).toBeGreaterThan(3);
  });
});

describe('model promote, rollback, list', () => {
  it('promote copies and points active.json; rollback goes back; list shows the history', async () => {
    const folder = join(dir, 'routing-models');
    expect((await runCli(['model', 'promote', SHIPPED, '--dir', folder])).code).toBe(0);
    const p = await runCli(['model', 'promote', join(dir, 'always-p2p.json'), '--dir', folder]);
    expect(p.code, p.stderr).toBe(0);
    expect(p.stdout).toContain(`previous: ${shippedPointer.id}`);
    const list = await runCli(['model', 'list', '--dir', folder]);
    expect(list.stdout).toMatch(/^active rm-always-p2p/m);
    expect(list.stdout).toMatch(new RegExp(`^history ${shippedPointer.id}$`, 'm'));
    const r = await runCli(['model', 'rollback', '--dir', folder]);
    expect(r.stdout).toContain(`rolled back rm-always-p2p -> ${shippedPointer.id}`);
    const again = await runCli(['model', 'rollback', '--dir', folder]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/history is empty/);
    noStack(again.stderr);
  });
});

describe('model validate (HuggingFace zero-shot)', () => {
  const hfEnv = () => ({ HF_TOKEN: 'hf_test_token', HF_ENDPOINT_URL: hf.url });

  it('reports the local and zero-shot accuracy and their agreement', async () => {
    hf.mode = 'ok';
    const res = await runCli(['model', 'validate', '--data', VALIDATION, '--limit', '20'], hfEnv());
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain(`asking ${hf.url} (zero-shot facebook/bart-large-mnli) about 20 examples of validation.jsonl`);
    expect(res.stdout).toMatch(new RegExp(`^local ${shippedPointer.id} +\\d\\.\\d{4} +\\d\\.\\d{4}$`, 'm'));
    expect(res.stdout).toMatch(/^zero-shot facebook\/bart-large-mnli +\d\.\d{4} +\d\.\d{4}$/m);
    expect(res.stdout).toMatch(/^agreement between the two: \d\.\d{4} \(\d+ of 20\)$/m);
    const json = JSON.parse((await runCli(['model', 'validate', '--data', VALIDATION, '--limit', '10', '--json'], hfEnv())).stdout);
    expect(json).toMatchObject({ zero_shot_model: 'facebook/bart-large-mnli', examples: 10, local: { accuracy: expect.any(Number) }, zero_shot: { accuracy: expect.any(Number) } });
    expect(hf.invalid).toEqual([]);
  });

  const failing: Array<[string, HfServer['mode'], number, RegExp]> = [
    ['401', 'unauthorized', 4, /refused the token \(HTTP 401\): check HF_TOKEN/],
    ['429', 'rate-limited', 5, /rate limiting this token \(HTTP 429\)/],
    ['a loading model', 'loading', 6, /the model is still loading on .* run again in a minute, or raise --max-wait/],
  ];
  for (const [what, mode, code, message] of failing) {
    it(`${what}: exit ${code} with one clear line`, async () => {
      hf.mode = mode;
      const res = await runCli(['model', 'validate', '--data', VALIDATION, '--limit', '3', '--max-wait', '0.2'], hfEnv());
      expect(res.code).toBe(code);
      expect(res.stderr).toMatch(/^unified-gateway model validate: /);
      expect(res.stderr).toMatch(message);
      noStack(res.stderr);
    });
  }

  it('no network: exit 3; no token: exit 2', async () => {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    await new Promise<void>((r) => server.close(() => r()));
    const offline = await runCli(['model', 'validate', '--data', VALIDATION, '--limit', '2'], { HF_TOKEN: 'hf_x', HF_ENDPOINT_URL: `http://127.0.0.1:${port}` });
    expect(offline.code).toBe(3);
    expect(offline.stderr).toMatch(/cannot reach http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
    noStack(offline.stderr);
    const noToken = await runCli(['model', 'validate', '--data', VALIDATION]);
    expect(noToken.code).toBe(2);
    expect(noToken.stderr).toMatch(/HF_TOKEN is not set/);
  });
});

/** A port on loopback where nothing listens. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** GATEWAY_CONFIG with mcp.servers.huggingface at `url` (the preset, its URL replaced by the local server's). */
function hfMcpConfig(url: string): string {
  const file = join(dir, `gw-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, `mcp:\n  servers:\n    huggingface: { preset: huggingface, enabled: true, url: "${url}", timeoutMs: 3000 }\n`);
  return file;
}

describe('the HuggingFace MCP server in model validate and model benchmark', () => {
  let mcp: HfMcpServer;
  beforeAll(async () => {
    mcp = await startHfMcpServer();
    onCleanup(() => mcp.close());
  });
  const env = () => ({ HF_TOKEN: 'hf_test_token', HF_ENDPOINT_URL: hf.url, GATEWAY_CONFIG: hfMcpConfig(mcp.url) });

  it('model validate records the reference model (id, revision, license, downloads) beside the zero-shot comparison', async () => {
    hf.mode = 'ok';
    const res = await runCli(['model', 'validate', '--data', VALIDATION, '--limit', '10'], env());
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain('reference model (HuggingFace MCP server huggingface, hub_repo_search + hub_repo_details): facebook/bart-large-mnli');
    expect(res.stdout).toMatch(/revision main@21 Dec, 2023 +license mit +downloads 3,400,000 +task zero-shot-classification +found by the zero-shot-classification search/);
    expect(res.stdout).toMatch(/^zero-shot facebook\/bart-large-mnli +\d\.\d{4} +\d\.\d{4}$/m);
    const json = JSON.parse((await runCli(['model', 'validate', '--data', VALIDATION, '--limit', '5', '--json', '--hf-model', 'typeform/distilbert-base-uncased-mnli'], env())).stdout);
    expect(json.reference_model).toMatchObject({ id: 'typeform/distilbert-base-uncased-mnli', license: 'apache-2.0', downloads: 41_200, revision: 'main@30 Mar, 2023', foundBySearch: true });
    expect(json.zero_shot_model).toBe('typeform/distilbert-base-uncased-mnli');
  });

  it('model validate with the HuggingFace MCP server offline: exit 3, one clear line', async () => {
    const res = await runCli(['model', 'validate', '--data', VALIDATION, '--limit', '2', '--timeout', '3'], { ...env(), GATEWAY_CONFIG: hfMcpConfig(`http://127.0.0.1:${await closedPort()}/mcp`) });
    expect(res.code).toBe(3);
    expect(res.stderr).toMatch(/^unified-gateway model validate: cannot reach the HuggingFace MCP server \(mcp\.servers\.huggingface\)/);
    noStack(res.stderr);
  });

  it('model benchmark: active, candidate and reference on the same requests, as a table and as JSON', async () => {
    hf.mode = 'ok';
    const previous = join(ROOT, 'routing-models/models/rm-41333f62ac35.json');
    const res = await runCli(['model', 'benchmark', '--data', VALIDATION, '--candidate', previous, '--limit', '25', '--repeat', '3'], env(), 30_000);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain('data validation.jsonl: 25 examples, the same for every row');
    expect(res.stdout).toMatch(/^ +accuracy +macro-F1 +p50 latency +p99 latency +latency of$/m);
    expect(res.stdout).toMatch(new RegExp(`^active ${shippedPointer.id} +\\d\\.\\d{4} +\\d\\.\\d{4} +[\\d.]+ (µs|ms) +[\\d.]+ (µs|ms) +in-process, one call$`, 'm'));
    // (a busy machine can put a scheduling pause of milliseconds into a p99 of few calls)
    expect(res.stdout).toMatch(/^candidate rm-41333f62ac35 +\d\.\d{4} +\d\.\d{4} +[\d.]+ (µs|ms) +[\d.]+ (µs|ms)/m);
    expect(res.stdout).toMatch(/^reference facebook\/bart-large-mnli +\d\.\d{4} +\d\.\d{4} +[\d.]+ (ms|µs) +[\d.]+ (ms|µs) +http:\/\/127\.0\.0\.1:\d+, one request$/m);
    expect(res.stdout).toContain('reference model (HuggingFace MCP server huggingface');

    const json = JSON.parse((await runCli(['model', 'benchmark', '--data', VALIDATION, '--limit', '10', '--repeat', '2', '--json'], env(), 30_000)).stdout);
    expect(json.examples).toBe(10);
    expect(json.rows.map((r: { role: string }) => r.role)).toEqual(['active', 'reference']);
    for (const r of json.rows) {
      expect(r.accuracy).toBeGreaterThanOrEqual(0);
      expect(r.accuracy).toBeLessThanOrEqual(1);
      expect(r.p99_latency_us).toBeGreaterThanOrEqual(r.p50_latency_us);
    }
    expect(json.rows[0].calls).toBe(20);
    expect(json.rows[1].calls).toBe(10);
    expect(json.reference_model).toMatchObject({ id: 'facebook/bart-large-mnli', license: 'mit' });
    expect(json.reference_error).toBeNull();
  });

  it('model benchmark offline: the local rows still print, the reference row says unavailable, exit 3', async () => {
    const res = await runCli(['model', 'benchmark', '--data', VALIDATION, '--limit', '10', '--repeat', '2'], { HF_TOKEN: 'hf_x', HF_ENDPOINT_URL: `http://127.0.0.1:${await closedPort()}` }, 30_000);
    expect(res.code).toBe(3);
    expect(res.stdout).toMatch(new RegExp(`^active ${shippedPointer.id} +\\d\\.\\d{4}`, 'm'));
    expect(res.stdout).toMatch(/^reference facebook\/bart-large-mnli +- +- +- +- +unavailable \(exit 3\)$/m);
    expect(res.stderr).toMatch(/^unified-gateway model benchmark: reference part: cannot reach http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
    noStack(res.stderr);
    const mcpOffline = await runCli(['model', 'benchmark', '--data', VALIDATION, '--limit', '4', '--repeat', '1', '--json', '--timeout', '3'], { ...env(), GATEWAY_CONFIG: hfMcpConfig(`http://127.0.0.1:${await closedPort()}/mcp`) }, 30_000);
    expect(mcpOffline.code).toBe(3);
    const json = JSON.parse(mcpOffline.stdout);
    expect(json.rows.map((r: { role: string }) => r.role)).toEqual(['active']);
    expect(json.reference_error).toMatchObject({ kind: 'network', exit_code: 3 });
    expect(json.reference_error.message).toMatch(/HuggingFace MCP server/);
  });
});
