import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Counter, Registry } from 'prom-client';
import { entityNames, memoryFileBound, rememberedHealth, graphSchema } from '../../../../mcp/integrations/memory/graph.js';
import { MemoryRecorder, type RecorderSettings } from '../../../../mcp/integrations/memory/recorder.js';
import { startStdioUpstream, type StdioUpstream } from '../../../helpers/mcp-upstream.js';

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

  it('flushes on its own once flushEvents are queued, after the turn of the caller', async () => {
    const c = counter();
    const recorder = new MemoryRecorder({ caller: upstream, settings: { ...SETTINGS, flushEvents: 3 }, counter: c });
    recorder.breakerChanged('p2p', 'open');
    recorder.breakerChanged('p2p', 'closed');
    recorder.breakerChanged('p2p', 'open');
    // Not in this turn: the caller (a request that tripped a breaker) never waits for it.
    expect(recorder.queued).toBe(3);
    const deadline = Date.now() + 5000;
    while ((await count(c, 'written')) < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(await count(c, 'written')).toBe(3);
    expect(recorder.queued).toBe(0);
    await recorder.close();
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

describe('the memory graph stays bounded', () => {
  let upstream: StdioUpstream;
  const file = join(dir, 'week.jsonl');
  beforeAll(async () => {
    upstream = await startStdioUpstream('memory', { MEMORY_FILE_PATH: file });
  });
  afterAll(async () => upstream.close());

  it('a simulated week of events (injected clock, hourly flushes) keeps the file under the stated bound', async () => {
    const { createMetrics } = await import('../../../../src/metrics/registry.js');
    const metrics = createMetrics({ durationBuckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1], defaultMetrics: false });
    const services = ['twin', 'knowledge', 'fog'];
    const start = Date.parse('2026-11-30T00:00:00Z'); // a Monday
    let now = start;
    const cap = 20;
    const c = counter();
    const recorder = new MemoryRecorder({
      caller: upstream,
      settings: { ...SETTINGS, flushSeconds: 3600, maxObservationsPerEntity: cap, queueSize: 5000 },
      counter: c,
      clock: () => now,
      timers: false,
      registry: metrics.registry,
      topology: { routes: services.map((s) => ({ id: s, services: [s] })), modelRoutes: ['auto-query', 'auto-upload'] },
      modelStatus: () => ({ active: { id: now < start + 3 * 86_400_000 ? 'm-1' : 'm-2', evaluation: null }, shadow: null }),
    });
    recorder.recordTopology();
    await recorder.start(); // the first metrics sample
    for (let hour = 0; hour < 7 * 24; hour++) {
      for (let minute = 0; minute < 60; minute += 10) {
        now = start + hour * 3_600_000 + minute * 60_000;
        for (const s of services) {
          // Load varies by hour of day; knowledge flaps twice an hour.
          const n = 5 + (hour % 24);
          metrics.serviceRequests.inc({ service: s, status: '200', side: 'stable' }, n);
          if (s === 'fog') metrics.serviceRequests.inc({ service: s, status: '502', side: 'stable' }, 1);
          for (let i = 0; i < n; i++) metrics.upstreamDuration.observe({ service: s }, s === 'knowledge' ? 0.04 : 0.008);
        }
        if (minute === 0 || minute === 30) {
          recorder.healthChanged('knowledge', 'down', 'timeout');
          recorder.breakerChanged('knowledge', 'open');
          recorder.healthChanged('knowledge', 'up');
          recorder.breakerChanged('knowledge', 'closed');
        }
        recorder.decided({ service: services[minute % 3]!, reason: minute % 20 === 0 ? 'model' : 'low-confidence', confidence: 0.5 });
      }
      if (hour % 24 === 12) recorder.trafficShifted('twin', hour, hour % 100);
      now = start + (hour + 1) * 3_600_000;
      await recorder.flush();
    }
    expect(await count(c, 'dropped')).toBe(0);
    const graph = fileGraph(file);
    for (const e of graph.entities) {
      expect(e.observations.length, e.name).toBeLessThanOrEqual(e.name.startsWith('baseline:') ? 168 : cap);
    }
    // Folding kept the history as summaries: a week of transitions is still counted.
    const knowledge = graph.entities.find((e) => e.name === 'service:knowledge')!;
    const summaries = knowledge.observations.filter((o) => o.includes(' summary '));
    expect(summaries).toHaveLength(1);
    expect(summaries[0]).toMatch(/^2026-11-30T00:\d\d:00\.000Z summary until=\S+ n=\d+ .*health:down->up=\d+/);
    const summarised = Number(/health:up->down=(\d+)/.exec(summaries[0]!)![1]);
    expect(summarised).toBeGreaterThan(300);
    // Baselines: one line per hour of week and service.
    expect(graph.entities.find((e) => e.name === 'baseline:knowledge')!.observations).toHaveLength(168);
    const shape = { entities: graph.entities.filter((e) => !e.name.startsWith('baseline:')).length, baselines: services.length, cap, relations: graph.relations.length };
    expect(shape.entities).toBeLessThanOrEqual(3 * 2 + 3 + 1 + 2 + 2 + 1); // service+intervals per service, routes, models, auto routes, traffic, decisions
    const bound = memoryFileBound(shape);
    const size = statSync(file).size;
    console.log(`memory file after a simulated week: ${size} bytes, stated bound ${bound} bytes (${graph.entities.length} entities, cap ${cap})`);
    expect(size).toBeLessThan(bound);

    // A restart reads the baselines back: the same figures per hour of week.
    const restarted = new MemoryRecorder({ caller: upstream, settings: SETTINGS, timers: false });
    const loaded = await restarted.load();
    expect(loaded?.baselines).toBe(3 * 168);
    for (const how of [0, 13, 167]) {
      const b = restarted.baseline('knowledge', how)!;
      const live = recorder.baseline('knowledge', how)!;
      expect(b.n).toBe(live.n);
      expect(b.p50).toBeCloseTo(live.p50!, 5);
      expect(b.p99).toBeCloseTo(live.p99!, 5);
      expect(b.errorRate).toBe(0);
      expect(b.p50).toBeGreaterThan(0.025);
      expect(b.p50).toBeLessThanOrEqual(0.05);
    }
    expect(restarted.baseline('fog', 13)!.errorRate).toBeGreaterThan(0);
  }, 120_000);
});

describe('an entity deleted behind the recorder', () => {
  let upstream: StdioUpstream;
  const file = join(dir, 'deleted.jsonl');
  beforeAll(async () => {
    upstream = await startStdioUpstream('memory', { MEMORY_FILE_PATH: file });
  });
  afterAll(async () => upstream.close());

  it('is created again after the failed write, and the queued events land', async () => {
    let now = Date.parse('2026-12-07T12:00:00Z');
    const recorder = new MemoryRecorder({ caller: upstream, settings: SETTINGS, clock: () => now, timers: false });
    recorder.breakerChanged('fog', 'open');
    await recorder.flush();
    await upstream.callTool('memory', 'delete_entities', { entityNames: ['service:fog'] });
    now += 1000;
    recorder.breakerChanged('fog', 'closed');
    await recorder.flush(); // add_observations fails: the entity is gone
    expect(recorder.queued).toBe(1);
    await recorder.flush();
    expect(recorder.queued).toBe(0);
    expect(fileGraph(file).entities.find((e) => e.name === 'service:fog')!.observations).toEqual(['2026-12-07T12:00:01.000Z breaker closed']);
  });
});
