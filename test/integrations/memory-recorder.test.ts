import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Counter, Registry } from 'prom-client';
import { entityNames, memoryFileBound, rememberedHealth, graphSchema } from '../../mcp/integrations/memory/graph.js';
import { MemoryRecorder, type RecorderSettings } from '../../mcp/integrations/memory/recorder.js';
import { startStdioUpstream, type StdioUpstream } from '../helpers/mcp-upstream.js';

const dir = mkdtempSync(join(tmpdir(), 'memory-recorder-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SETTINGS: RecorderSettings = {
  server: 'memory',
  flushSeconds: 60,
  flushEvents: 1000,
  queueSize: 50,
  maxObservationsPerEntity: 20,
  principalUsage: false,
  lowConfidence: 0.6,
};

function fileGraph(file: string) {
  const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '');
  const graph = { entities: [] as unknown[], relations: [] as unknown[] };
  for (const l of lines) {
    const item = JSON.parse(l) as { type: string };
    if (item.type === 'entity') graph.entities.push(item);
    else graph.relations.push(item);
  }
  return graphSchema.parse(graph);
}

function counter() {
  const registry = new Registry();
  return new Counter({ name: 'test_memory_events_total', help: 'x', labelNames: ['outcome'], registers: [registry] });
}

async function count(c: Counter<'outcome'>, outcome: string): Promise<number> {
  return (await c.get()).values.find((v) => v.labels.outcome === outcome)?.value ?? 0;
}

describe('MemoryRecorder with the real memory server', () => {
  let upstream: StdioUpstream;
  const file = join(dir, 'basic.jsonl');
  beforeAll(async () => {
    upstream = await startStdioUpstream('memory', { MEMORY_FILE_PATH: file });
  });
  afterAll(async () => upstream.close());

  it('writes health transitions with their cause, breaker openings, shifts and relations; reads them back', async () => {
    let now = Date.parse('2026-12-07T10:00:00Z');
    const c = counter();
    const recorder = new MemoryRecorder({
      caller: upstream,
      settings: SETTINGS,
      counter: c,
      clock: () => now,
      timers: false,
      topology: { routes: [{ id: 'knowledge', services: ['knowledge'] }], modelRoutes: ['auto-query'] },
      modelStatus: () => ({ active: { id: 'm-1', evaluation: { accuracy: 0.95, macroF1: 0.94, examples: 300 } }, shadow: null }),
    });
    recorder.recordTopology();
    recorder.healthChanged('knowledge', 'up');
    now += 60_000;
    recorder.healthChanged('knowledge', 'down', 'ECONNREFUSED');
    recorder.breakerChanged('knowledge', 'open');
    recorder.breakerChanged('knowledge', 'half-open'); // not kept
    recorder.trafficShifted('knowledge', 3, 25);
    recorder.decided({ service: 'knowledge', reason: 'model', confidence: 0.9 });
    recorder.decided({ service: 'twin', reason: 'low-confidence', confidence: 0.4 });
    recorder.decided({ service: 'fog', reason: 'override', confidence: 1 });
    await recorder.flush();
    expect(await count(c, 'written')).toBeGreaterThan(0);

    const graph = fileGraph(file);
    const svc = graph.entities.find((e) => e.name === entityNames.service('knowledge'))!;
    expect(svc.observations).toEqual([
      '2026-12-07T10:00:00.000Z health unknown->up',
      '2026-12-07T10:01:00.000Z health up->down cause=ECONNREFUSED',
      '2026-12-07T10:01:00.000Z breaker opened',
    ]);
    expect(graph.entities.find((e) => e.name === 'traffic:knowledge')!.observations[0]).toBe('2026-12-07T10:01:00.000Z shift version=3 canary=25');
    expect(graph.entities.find((e) => e.name === 'routing-model:m-1')!.observations[0]).toContain('promoted active accuracy=0.95 macroF1=0.94');
    const decisions = graph.entities.find((e) => e.name === 'routing-decisions')!.observations[0]!;
    expect(decisions).toContain('total=3 auto=1 explicit=1 lowConfidenceShare=0.3333');
    expect(decisions).toContain('perService=knowledge:1,twin:1,fog:1');
    expect(graph.relations).toEqual(
      expect.arrayContaining([
        { from: 'route:knowledge', to: 'service:knowledge', relationType: 'routes_to' },
        { from: 'routing-model:m-1', to: 'route:auto-query', relationType: 'decides' },
        { from: 'traffic:knowledge', to: 'route:knowledge', relationType: 'moves' },
      ]),
    );
    expect(rememberedHealth(graph)).toEqual([{ service: 'knowledge', status: 'down', at: '2026-12-07T10:01:00.000Z' }]);

    // A second recorder (a restart) reads the state back.
    const again = new MemoryRecorder({ caller: upstream, settings: SETTINGS, timers: false });
    const loaded = await again.load();
    expect(loaded?.health).toEqual([{ service: 'knowledge', status: 'down', at: '2026-12-07T10:01:00.000Z' }]);
    // It knows the state it read: the same status again is no transition.
    again.healthChanged('knowledge', 'down');
    expect(again.queued).toBe(0);
  });

  it('drops events past the queue size and counts them; keeps the batch while the server is down', async () => {
    const c = counter();
    const recorder = new MemoryRecorder({ caller: upstream, settings: SETTINGS, counter: c, timers: false });
    upstream.down = true;
    try {
      for (let i = 0; i < 60; i++) recorder.breakerChanged(`svc${i}`, 'open');
      expect(recorder.queued).toBe(50);
      expect(await count(c, 'dropped')).toBe(10);
      await recorder.flush();
      expect(await count(c, 'failed')).toBe(50);
      expect(recorder.queued).toBe(50);
    } finally {
      upstream.down = false;
    }
    await recorder.flush();
    expect(recorder.queued).toBe(0);
    expect(await count(c, 'written')).toBe(50);
  });
});
