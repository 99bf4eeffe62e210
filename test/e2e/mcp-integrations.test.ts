import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { RoutingModel } from '../../src/routing/model/model.js';
import { cleanup, E2E_API_KEY, onCleanup, ROOT, startGateway, waitFor, type GatewayProcess } from '../helpers/gateway.js';
import { connectMcp, type McpTestClient } from '../helpers/mcp.js';
import { standIns, testServer } from '../helpers/upstreams.js';

/*
 * Issue 15 acceptance, with the built gateway and the real memory and sequential-thinking
 * servers started by its pool (mcp.servers presets): after traffic and an outage the memory
 * file holds the service's health transitions and an interval summary; a restart warm-starts
 * from it; analyze_routing returns at least four steps the sequential-thinking server
 * recorded; review_routing after 1,000 mixed queries names the most confused pair.
 */

const dataDir = mkdtempSync(join(tmpdir(), 'ugw-integrations-'));
const memoryFile = join(dataDir, 'memory.jsonl');
afterEach(() => cleanup());
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

const yaml = (health: { intervalMs: number; timeoutMs: number }) => `
rateLimit:
  enabled: false
health:
  intervalMs: ${health.intervalMs}
  timeoutMs: ${health.timeoutMs}
mcp:
  dataDir: ${JSON.stringify(dataDir)}
  servers:
    memory: { preset: memory }
    sequential-thinking: { preset: sequential-thinking }
  memory:
    flushSeconds: 1
    warmStartWaitMs: 10000
`;

type Structured = Record<string, any>;
const AUTH = { 'x-api-key': E2E_API_KEY };

async function tool(c: McpTestClient, name: string, args: Record<string, unknown>): Promise<{ isError?: boolean; structured: Structured }> {
  const res = (await c.client.callTool({ name, arguments: args })) as { isError?: boolean; structuredContent?: Structured };
  return { isError: res.isError, structured: res.structuredContent ?? {} };
}

function memoryEntities(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of readFileSync(memoryFile, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    const item = JSON.parse(line) as { type: string; name?: string; observations?: string[] };
    if (item.type === 'entity') out.set(item.name!, item.observations ?? []);
  }
  return out;
}

function mixedQueries(n: number): string[] {
  const texts: string[] = [];
  for (const l of readFileSync(join(ROOT, 'routing-models/data/validation.jsonl'), 'utf8').split('\n')) {
    if (!l.startsWith('{')) continue;
    const r = (JSON.parse(l) as { request: { path: string; body?: Record<string, unknown> } }).request;
    const t = r.body?.query ?? r.body?.message ?? r.body?.prompt;
    if (r.path === '/v1/query' && typeof t === 'string') texts.push(t);
  }
  return Array.from({ length: n }, (_v, i) => texts[i % texts.length]!);
}

describe('Memory and Sequential Thinking through the pool (e2e)', () => {
  it('records an outage and interval summary, analyses and reviews routing, and warm-starts from the memory file', async () => {
    const { byName, env } = await standIns();
    const gw: GatewayProcess = await startGateway({ env: { ...env, ENABLE_AGENT_FORGE: 'true', ENABLE_P2P_FOG: 'true' }, yaml: yaml({ intervalMs: 300, timeoutMs: 2000 }) });
    onCleanup(() => void gw.stop());
    const agent = await connectMcp(gw.url, AUTH);
    onCleanup(() => agent.client.close());

    // Traffic, then an outage of knowledge.
    for (let i = 0; i < 30; i++) await (await fetch(`${gw.url}/v1/knowledge/search?q=${i}`, { headers: AUTH })).arrayBuffer();
    byName.knowledge.behaviour.healthStatus = 503;
    const entities = await waitFor(
      () => {
        try {
          const e = memoryEntities();
          const transitions = e.get('service:knowledge') ?? [];
          return transitions.some((o) => / health up->down cause=health_endpoint_answered_503$/.test(o)) && (e.get('service:knowledge:intervals') ?? []).some((o) => / requests=\d+ /.test(o)) ? e : undefined;
        } catch {
          return undefined; // not written yet
        }
      },
      20_000,
      'the outage and an interval summary in the memory file',
      200,
    );
    expect(entities.get('service:knowledge')!.some((o) => / health (unknown|down)->up$/.test(o))).toBe(true); // the first probe may time out on a busy machine
    expect(entities.get('service:knowledge:intervals')!.join('\n')).toMatch(/interval seconds=\d+ requests=\d+ errorRate=[\d.]+ p50=[\d.]+ms p99=[\d.]+ms/);

    // analyze_routing: the chain recorded by the sequential-thinking server.
    await waitFor(async () => ((await tool(agent, 'analyze_routing', { text: 'ping' })).structured.recordedBy === 'sequential-thinking' ? true : undefined), 15_000, 'the sequential-thinking server', 200);
    const analysis = await tool(agent, 'analyze_routing', { text: 'which of my peers are online and syncing messages over the mesh' });
    expect(analysis.isError).toBeFalsy();
    expect(analysis.structured.recordedBy).toBe('sequential-thinking');
    expect(analysis.structured.steps.length).toBeGreaterThanOrEqual(4);
    expect(analysis.structured.steps.filter((s: Structured) => s.recorded === true).length).toBe(analysis.structured.steps.length);
    expect(analysis.structured.decision.service).toBe('p2p');

    // review_routing after 1,000 mixed queries.
    const texts = mixedQueries(1000);
    for (let i = 0; i < texts.length; i += 50) {
      await Promise.all(
        texts.slice(i, i + 50).map(async (query) => {
          const r = await fetch(`${gw.url}/v1/query`, { method: 'POST', headers: { ...AUTH, 'content-type': 'application/json' }, body: JSON.stringify({ query }) });
          await r.arrayBuffer();
        }),
      );
    }
    // The pair the active model hesitates between most, computed here from its file.
    const pointer = JSON.parse(readFileSync(join(ROOT, 'routing-models/active.json'), 'utf8')) as { file: string };
    const model = RoutingModel.fromJson(JSON.parse(readFileSync(join(ROOT, 'routing-models', pointer.file), 'utf8')));
    const pairs = new Map<string, number>();
    for (const query of texts) {
      const p = Object.entries(model.predict({ method: 'POST', path: '/v1/query', contentType: 'application/json', body: { query } }).probabilities).sort((a, b) => b[1] - a[1]);
      if (p[0]![1] - p[1]![1] <= 0.3) {
        const key = [p[0]![0], p[1]![0]].sort().join('/');
        pairs.set(key, (pairs.get(key) ?? 0) + 1);
      }
    }
    const expected = [...pairs].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]!;
    const review = await tool(agent, 'review_routing', { minutes: 30 });
    expect(review.isError).toBeFalsy();
    expect(review.structured.decisions).toBeGreaterThanOrEqual(1000);
    expect(review.structured.recordedBy).toBe('sequential-thinking');
    expect(review.structured.mostConfusedPair.join('/')).toBe(expected[0]);
    console.log(`e2e review_routing: ${review.structured.decisions} decisions, most confused ${expected[0]} (${expected[1]}), recommendations: ${review.structured.recommendations.join(' | ')}`);
    // The review's summary reaches Memory at the next flush.
    await waitFor(() => (memoryEntities().get('routing-reviews') ?? []).find((o) => o.includes(`mostConfused=${expected[0]}`)), 10_000, 'the review in Memory', 200);
    await agent.client.close();
    const stopped = await gw.stop('SIGTERM');
    expect(stopped.code).toBe(0);

    // The restart: knowledge's health endpoint hangs, so the remembered state shows until its probe decides.
    const hanging = await testServer(() => {});
    const again = await startGateway({
      env: { ...env, KNOWLEDGE_SYSTEM_URL: hanging.url, ENABLE_AGENT_FORGE: 'true', ENABLE_P2P_FOG: 'true' },
      yaml: yaml({ intervalMs: 60_000, timeoutMs: 5000 }),
      waitReady: false,
    });
    onCleanup(() => void again.stop());
    const warm = await again.waitForLog((l) => String(l.msg).startsWith('memory: warm start'), 20_000);
    expect(warm.services).toBeGreaterThanOrEqual(1);
    const health = await waitFor(async () => {
      try {
        return (await (await fetch(`${again.url}/healthz`)).json()) as { services: Record<string, Structured> };
      } catch {
        return undefined;
      }
    }, 5000, '/healthz');
    expect(health.services.knowledge).toMatchObject({ status: 'down', source: 'memory' });
    await waitFor(async () => {
      const h = (await (await fetch(`${again.url}/healthz`)).json()) as { services: Record<string, Structured> };
      return h.services.knowledge!.source === undefined && h.services.knowledge!.lastCheck !== null ? true : undefined;
    }, 15_000, 'the first probe to decide', 200);
  }, 180_000);
});
