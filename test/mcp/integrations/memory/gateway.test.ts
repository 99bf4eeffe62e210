import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { cleanup, waitFor } from '../../../helpers/gateway.js';
import { closeInProcess, READER_KEY, startInProcess } from '../../../helpers/mcp-inprocess.js';
import { standIns, testServer } from '../../../helpers/upstreams.js';
import { startStdioUpstream, type StdioUpstream } from '../../../helpers/mcp-upstream.js';

/*
 * The operational memory inside a whole gateway (in process), with the real memory server:
 * traffic and an outage end up in the memory file; a second gateway on the same file
 * warm-starts from it and /healthz says so until its first probe decides.
 */

const dir = mkdtempSync(join(tmpdir(), 'memory-gateway-'));
const file = join(dir, 'memory.jsonl');
const upstreams: StdioUpstream[] = [];
afterEach(async () => {
  await closeInProcess();
  await Promise.all(upstreams.splice(0).map((u) => u.close()));
  await cleanup();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const YAML = (healthIntervalMs: number, timeoutMs = 2000) => `health:\n  intervalMs: ${healthIntervalMs}\n  timeoutMs: ${timeoutMs}\nmcp:\n  memory:\n    flushSeconds: 1\n    warmStartWaitMs: 5000\n`;

function graphLines(): Array<{ type: string; name?: string; observations?: string[] }> {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as { type: string; name?: string; observations?: string[] });
}

describe('operational memory in the gateway', () => {
  it('records the health transitions of an outage and an interval summary; a restart warm-starts from the file', async () => {
    const { byName, env } = await standIns(['twin', 'knowledge']);
    const memory = await startStdioUpstream('memory', { MEMORY_FILE_PATH: file });
    upstreams.push(memory);
    const gw = await startInProcess({ env, yaml: YAML(200), build: { mcpCaller: memory } });
    await waitFor(() => gw.gateway.prober.snapshot().services.knowledge?.status === 'up' || undefined, 5000, 'knowledge up');
    for (let i = 0; i < 20; i++) {
      const res = await fetch(`${gw.url}/v1/knowledge/search?q=${i}`, { headers: { 'x-api-key': READER_KEY } });
      await res.arrayBuffer();
      expect(res.status).toBe(200);
    }
    byName.knowledge.behaviour.healthStatus = 503;
    await waitFor(() => gw.gateway.prober.snapshot().services.knowledge?.status === 'down' || undefined, 5000, 'knowledge down');
    const recorded = await waitFor(
      () => {
        try {
          const lines = graphLines();
          const service = lines.find((l) => l.name === 'service:knowledge');
          const intervals = lines.find((l) => l.name === 'service:knowledge:intervals');
          return service?.observations?.some((o) => / health up->down cause=health_endpoint_answered_503$/.test(o)) && intervals?.observations?.length ? { service, intervals } : undefined;
        } catch {
          return undefined;
        }
      },
      8000,
      'the outage and an interval summary in the memory file',
    );
    expect(recorded.service.observations!.some((o) => / health (unknown|down)->up$/.test(o))).toBe(true); // the first probe may time out on a busy machine
    // The 20 requests, in one interval or split over several (a flush every second), none failed.
    const intervals = await waitFor(() => {
      const lines = graphLines().find((l) => l.name === 'service:knowledge:intervals')?.observations ?? [];
      const total = lines.reduce((n, o) => n + Number(/ requests=(\d+) /.exec(o)?.[1] ?? 0), 0);
      return total >= 20 ? lines : undefined;
    }, 8000, 'the 20 requests in interval summaries');
    for (const o of intervals) expect(o).toMatch(/^\S+ interval seconds=\d+ requests=\d+ errorRate=0 p50=[\d.]+ms p99=[\d.]+ms$/);
    expect(intervals.reduce((n, o) => n + Number(/ requests=(\d+) /.exec(o)![1]), 0)).toBe(20);
    // The counter goes up once the whole batch is written (the file may show it a moment earlier).
    await waitFor(
      async () => (/gateway_memory_events_total\{outcome="written"\} [1-9]/.test(await (await fetch(`${gw.url}/metrics`, { headers: { 'x-api-key': READER_KEY } })).text()) ? true : undefined),
      5000,
      'gateway_memory_events_total{outcome="written"}',
    );
    await gw.close();

    // The restart: knowledge's health endpoint now hangs (a probe takes the whole timeout), so
    // the remembered state is what /healthz shows until that probe decides.
    const hanging = await testServer(() => {});
    const again = await startInProcess({ env: { ...env, KNOWLEDGE_SYSTEM_URL: hanging.url }, yaml: YAML(60_000, 4000), build: { mcpCaller: memory } });
    const health = (await (await fetch(`${again.url}/healthz`)).json()) as { services: Record<string, { status: string; source?: string; since?: string }> };
    expect(health.services.knowledge).toMatchObject({ status: 'down', source: 'memory' });
    expect(Date.parse(health.services.knowledge!.since!)).toBeGreaterThan(0);
    expect(again.logs.some((l) => String(l.msg).startsWith('memory: warm start') && l.services >= 1)).toBe(true);
    // The first probe decides (a timeout): the source goes away.
    const decided = await waitFor(() => {
      const k = again.gateway.prober.snapshot().services.knowledge;
      return k?.lastCheck !== null ? k : undefined;
    }, 10_000, 'the first probe of knowledge');
    expect(decided).toMatchObject({ status: 'down', error: 'timeout' });
    expect(decided?.source).toBeUndefined();
  }, 60_000);
});
