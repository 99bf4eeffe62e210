import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RoutingAnalyst } from '../../../../mcp/integrations/sequential-thinking/analyst.js';
import { DecisionLog } from '../../../../src/routing/decision-log.js';
import { cleanup, ROOT } from '../../../helpers/gateway.js';
import { connectMcp, type McpTestClient } from '../../../helpers/mcp.js';
import { ADMIN_KEY, closeInProcess, READER_KEY, startInProcess, type InProcessGateway } from '../../../helpers/mcp-inprocess.js';
import { combined, startStdioUpstream, type StdioUpstream } from '../../../helpers/mcp-upstream.js';
import { standIns } from '../../../helpers/upstreams.js';

/*
 * analyze_routing and review_routing on a whole gateway (in process) with the real
 * sequential-thinking and memory servers behind the integrations' caller interface.
 */

type Structured = Record<string, any>;

async function callTool(c: McpTestClient, name: string, args: Record<string, unknown>): Promise<{ isError?: boolean; structured: Structured; text: string }> {
  const res = (await c.client.callTool({ name, arguments: args })) as { isError?: boolean; structuredContent?: Structured; content: Array<{ type: string; text?: string }> };
  return { isError: res.isError, structured: res.structuredContent ?? {}, text: res.content.map((x) => x.text ?? '').join('') };
}

/** Texts of the labelled data (all five services), cycled. */
function mixedQueries(n: number): string[] {
  const lines = readFileSync(join(ROOT, 'routing-models/data/validation.jsonl'), 'utf8').split('\n');
  const texts: string[] = [];
  for (const l of lines) {
    if (!l.startsWith('{')) continue;
    const body = (JSON.parse(l) as { request: { path: string; body?: Record<string, unknown> } }).request;
    if (body.path !== '/v1/query') continue;
    const t = body.body?.query ?? body.body?.message ?? body.body?.prompt;
    if (typeof t === 'string') texts.push(t);
  }
  return Array.from({ length: n }, (_v, i) => texts[i % texts.length]!);
}

describe('analyze_routing and review_routing', () => {
  let thinking: StdioUpstream;
  let memory: StdioUpstream;
  let gw: InProcessGateway;
  let agent: McpTestClient;

  beforeAll(async () => {
    const { env } = await standIns(['twin', 'knowledge', 'fog', 'p2p', 'agent-controller']);
    thinking = await startStdioUpstream('sequential-thinking');
    memory = await startStdioUpstream('memory', { MEMORY_FILE_PATH: join(ROOT, 'node_modules/.cache/never-written.jsonl') });
    gw = await startInProcess({
      env: { ...env, ENABLE_AGENT_FORGE: 'true', ENABLE_P2P_FOG: 'true' },
      yaml: 'rateLimit:\n  enabled: false\nmcp:\n  memory:\n    warmStart: false\n    flushSeconds: 3600\n',
      build: { mcpCaller: combined({ memory, 'sequential-thinking': thinking }) },
    });
    agent = await connectMcp(gw.url, { 'x-api-key': READER_KEY });
  }, 60_000);
  afterAll(async () => {
    await agent?.client.close();
    await closeInProcess();
    await thinking?.close();
    await memory?.close();
    await cleanup();
  });

  it('analyze_routing (text): at least four steps, each recorded by the sequential-thinking server', async () => {
    const before = thinking.calls.length;
    const res = await callTool(agent, 'analyze_routing', { text: 'find the section about retention policies in the compliance handbook' });
    expect(res.isError).toBeFalsy();
    const { steps, recordedBy, decision } = res.structured;
    expect(recordedBy).toBe('sequential-thinking');
    expect(steps.length).toBeGreaterThanOrEqual(4);
    expect(steps.every((s: Structured) => s.recorded === true)).toBe(true);
    expect(steps.map((s: Structured) => s.thoughtNumber)).toEqual(steps.map((_s: unknown, i: number) => i + 1));
    // The server saw exactly these thoughts, in order.
    const sent = thinking.calls.slice(before);
    expect(sent.map((c) => c.tool)).toEqual(steps.map(() => 'sequentialthinking'));
    expect(sent.map((c) => c.args.thought)).toEqual(steps.map((s: Structured) => s.thought));
    expect(decision).toMatchObject({ source: 'text', service: 'knowledge', reason: 'model' });
    expect(steps[0].thought).toMatch(/^Model \S+: knowledge [01]\.\d{4}, /);
    expect(steps[0].thought).toContain('Top features:');
    expect(steps.some((s: Structured) => /Candidates' state: knowledge: health up, breaker/.test(s.thought))).toBe(true);
    expect(steps.at(-1).thought.startsWith('Final upstream: knowledge') || steps.at(-1).branchFromThought !== undefined).toBe(true);
    // The audit line of the call.
    expect(gw.audits().some((a) => a.tool === 'analyze_routing' && a.phase === 'arrived')).toBe(true);
  });

  it('analyze_routing (requestId): the logged decision, without its text; unknown ids are a tool error', async () => {
    const res = await fetch(`${gw.url}/v1/query`, { method: 'POST', headers: { 'x-api-key': READER_KEY, 'content-type': 'application/json' }, body: JSON.stringify({ query: 'submit a compute job to the fog nodes with 4 GPUs' }) });
    await res.arrayBuffer();
    const id = res.headers.get('x-request-id')!;
    const out = await callTool(agent, 'analyze_routing', { requestId: id });
    expect(out.isError).toBeFalsy();
    expect(out.structured.decision).toMatchObject({ source: 'requestId', service: res.headers.get('x-routed-to') });
    expect(out.structured.steps[0].thought).toContain('never stored');
    expect(JSON.stringify(out.structured)).not.toContain('GPUs');
    const unknown = await callTool(agent, 'analyze_routing', { requestId: 'no-such-request' });
    expect(unknown.isError).toBe(true);
    expect(unknown.text).toMatch(/no recent routing decision/);
    // Another principal's request is not shown to a reader (answered as unknown); an admin sees it.
    const other = await fetch(`${gw.url}/v1/query`, { method: 'POST', headers: { 'x-api-key': ADMIN_KEY, 'content-type': 'application/json' }, body: JSON.stringify({ query: 'how many peers are connected to the mesh' }) });
    await other.arrayBuffer();
    const hidden = await callTool(agent, 'analyze_routing', { requestId: other.headers.get('x-request-id')! });
    expect(hidden.isError).toBe(true);
    expect(hidden.text).toMatch(/no recent routing decision/);
    const admin = await connectMcp(gw.url, { 'x-api-key': ADMIN_KEY });
    try {
      const shown = await callTool(admin, 'analyze_routing', { requestId: other.headers.get('x-request-id')! });
      expect(shown.isError).toBeFalsy();
      expect(shown.structured.decision.service).toBe(other.headers.get('x-routed-to'));
    } finally {
      await admin.client.close();
    }
  });

  it('with the sequential-thinking server down the chain is still built, marked local', async () => {
    thinking.down = true;
    try {
      const res = await callTool(agent, 'analyze_routing', { text: 'list my peers in the mesh' });
      expect(res.isError).toBeFalsy();
      expect(res.structured.recordedBy).toBe('local');
      expect(res.structured.steps.length).toBeGreaterThanOrEqual(4);
      expect(res.structured.steps.every((s: Structured) => s.recorded === false)).toBe(true);
    } finally {
      thinking.down = false;
    }
  });

  it('review_routing after 1,000 mixed queries names the most confused pair', async () => {
    const texts = mixedQueries(1000);
    for (let i = 0; i < texts.length; i += 50) {
      await Promise.all(
        texts.slice(i, i + 50).map(async (query) => {
          const r = await fetch(`${gw.url}/v1/query`, { method: 'POST', headers: { 'x-api-key': ADMIN_KEY, 'content-type': 'application/json' }, body: JSON.stringify({ query }) });
          await r.arrayBuffer();
        }),
      );
    }
    // Independently: the pair the model itself hesitates between most (top two within 2 × margin).
    const model = gw.gateway.routing!.manager.active;
    const margin = 2 * gw.gateway.config.mcp.sequentialThinking.branchMargin;
    const pairs = new Map<string, number>();
    for (const query of texts) {
      const p = Object.entries(model.predict({ method: 'POST', path: '/v1/query', contentType: 'application/json', body: { query } }).probabilities).sort((a, b) => b[1] - a[1]);
      if (p[0]![1] - p[1]![1] <= margin) {
        const key = [p[0]![0], p[1]![0]].sort().join('/');
        pairs.set(key, (pairs.get(key) ?? 0) + 1);
      }
    }
    const expected = [...pairs].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0];
    expect(expected, 'the data has close decisions').toBeDefined();

    const before = thinking.calls.length;
    const res = await callTool(agent, 'review_routing', { minutes: 30 });
    expect(res.isError).toBeFalsy();
    const r = res.structured;
    expect(r.decisions).toBeGreaterThanOrEqual(1000);
    expect(r.mostConfusedPair.join('/')).toBe(expected![0]);
    // (the two decisions of the requestId test may add one each)
    expect(r.confusedPairs[0].count).toBeGreaterThanOrEqual(expected![1]);
    expect(r.confusedPairs[0].count).toBeLessThanOrEqual(expected![1] + 3);
    expect(r.recordedBy).toBe('sequential-thinking');
    expect(thinking.calls.length - before).toBe(r.steps.length);
    expect(r.steps.some((s: Structured) => s.thought.includes(`${r.mostConfusedPair[0]}/${r.mostConfusedPair[1]}`))).toBe(true);
    expect(r.recommendations.join(' ')).toContain(`${r.mostConfusedPair[0]} vs ${r.mostConfusedPair[1]}`);
    expect(Object.keys(r.lowConfidenceShare).length).toBeGreaterThanOrEqual(4);
    expect(r.drift).not.toBeNull();
    // The validation phrasing is the training set's style: words per request barely drift.
    expect(r.featureDrift.feature).toBe('words per request');
    expect(r.featureDrift.distance).toBeLessThan(0.25);
    expect(Object.values(r.featureDrift.recent as Record<string, number>).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 2);
    expect(r.steps.some((s: Structured) => s.thought.startsWith('Feature drift, words per request'))).toBe(true);
    console.log(`review_routing after ${r.decisions} queries: most confused ${r.mostConfusedPair.join('/')} (${r.confusedPairs[0].count}); pairs ${JSON.stringify(r.confusedPairs)}; drift ${r.drift.distance}`);
  }, 120_000);
});

describe('RoutingAnalyst branching', () => {
  it('a runner-up within the margin opens a branch from the candidates step', async () => {
    const log = new DecisionLog(100);
    log.add({ requestId: 'r1', at: 1, service: 'knowledge', reason: 'model', confidence: 0.52, model: 'm', predicted: 'knowledge', probabilities: { knowledge: 0.52, twin: 0.44, fog: 0.04 }, path: '/v1/query' });
    log.add({ requestId: 'r2', at: 2, service: 'knowledge', reason: 'model', confidence: 0.9, model: 'm', predicted: 'knowledge', probabilities: { knowledge: 0.9, twin: 0.06, fog: 0.04 }, path: '/v1/query' });
    const analyst = new RoutingAnalyst({
      settings: { server: 'sequential-thinking', branchMargin: 0.15, lowConfidence: 0.6 },
      routing: { confidenceThreshold: 0.5, defaultService: 'knowledge', ambiguous: 'default' },
      decisions: log,
      health: (s) => (s === 'twin' ? 'down' : 'up'),
      breaker: (s) => (s === 'twin' ? 'open' : 'closed'),
      split: () => undefined,
      fallback: (s) => (s === 'knowledge' ? 'on failure the twin service answers' : undefined),
    });
    const close = await analyst.analyze({ requestId: 'r1' });
    expect(close.recordedBy).toBe('local');
    const branch = close.steps.at(-1)!;
    expect(branch).toMatchObject({ branchFromThought: 3, branchId: 'runner-up-twin' });
    expect(branch.thought).toContain('twin: health down, breaker open');
    const clear = await analyst.analyze({ requestId: 'r2' });
    expect(clear.steps.some((s) => s.branchFromThought !== undefined)).toBe(false);
    expect(clear.steps.map((s) => s.thought.split(':')[0])).toEqual(['Model m', 'Confidence 0.9000 ≥ threshold 0.5', "Candidates' state", 'Split side', 'Fallbacks of knowledge', 'Final upstream']);
  });

  it('review_routing measures feature drift (words per request) against the training set', async () => {
    const log = new DecisionLog(100);
    const now = 1_000_000;
    for (let i = 0; i < 40; i++) {
      log.add({ requestId: `q${i}`, at: now - 1000, service: 'twin', reason: 'model', confidence: 0.9, model: 'm', predicted: 'twin', probabilities: { twin: 0.9, knowledge: 0.1 }, path: '/v1/query', words: 2 });
    }
    const analyst = new RoutingAnalyst({
      settings: { server: 'sequential-thinking', branchMargin: 0.15, lowConfidence: 0.6 },
      routing: { confidenceThreshold: 0.5, defaultService: 'knowledge', ambiguous: 'default' },
      decisions: log,
      health: () => 'up',
      breaker: () => 'closed',
      split: () => undefined,
      fallback: () => undefined,
      trainingWords: () => Array.from({ length: 100 }, (_v, i) => (i < 10 ? 2 : 12)),
      clock: () => now,
    });
    const r = await analyst.review({ minutes: 1 });
    // All recent texts are 1-3 words; a tenth of the training set is: distance 0.9.
    expect(r.featureDrift).toEqual({ feature: 'words per request', distance: 0.9, recent: { '1-3': 1, '4-7': 0, '8-15': 0, '16-31': 0, '32+': 0 }, training: { '1-3': 0.1, '4-7': 0, '8-15': 0.9, '16-31': 0, '32+': 0 } });
    expect(r.recommendations.join(' ')).toMatch(/request phrasing drifted from the training set/);
  });
});
