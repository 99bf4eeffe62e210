import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig, type PressureConfig } from '../../src/config/index.js';
import type { HealthProber } from '../../src/health/prober.js';
import { PressureMonitor } from '../../src/health/pressure.js';
import { healthRoutes } from '../../src/health/routes.js';
import { createMetrics } from '../../src/metrics/registry.js';

/* Event-loop / heap pressure (src/health/pressure.ts): only /readyz reflects it. */

const base: PressureConfig = { enabled: true, maxEventLoopDelayMs: 100, maxHeapUsedBytes: 0, sampleIntervalMs: 1000, sustainedSamples: 3 };
const monitors: PressureMonitor[] = [];
afterEach(() => {
  for (const m of monitors.splice(0)) m.stop();
});
function monitor(config: Partial<PressureConfig> = {}): PressureMonitor {
  const m = new PressureMonitor({ ...base, ...config });
  monitors.push(m);
  return m;
}

describe('PressureMonitor', () => {
  it('turns under pressure only after sustainedSamples consecutive samples over a threshold, and clears on one good sample', () => {
    const m = monitor();
    m.record(500, 0);
    m.record(500, 0);
    m.record(10, 0); // the run is broken
    m.record(500, 0);
    m.record(500, 0);
    expect(m.underPressure).toBe(false);
    m.record(500, 0);
    expect(m.underPressure).toBe(true);
    expect(m.last).toEqual({ eventLoopDelayMs: 500, heapUsedBytes: 0 });
    m.record(5, 0);
    expect(m.underPressure).toBe(false);
  });

  it('watches the heap only when maxHeapUsedBytes is set', () => {
    const off = monitor({ sustainedSamples: 1 });
    off.record(0, 10e9);
    expect(off.underPressure).toBe(false);
    const on = monitor({ sustainedSamples: 1, maxHeapUsedBytes: 1000 });
    on.record(0, 2000);
    expect(on.underPressure).toBe(true);
  });

  it('sees a really blocked event loop (loose thresholds)', async () => {
    const m = monitor({ maxEventLoopDelayMs: 20, sampleIntervalMs: 50, sustainedSamples: 2 });
    m.start();
    const deadline = Date.now() + 10_000;
    while (!m.underPressure && Date.now() < deadline) {
      const until = Date.now() + 200;
      while (Date.now() < until) {
        // block the loop
      }
      await new Promise((r) => setTimeout(r, 30)); // the histogram records between blocks
    }
    expect(m.underPressure).toBe(true);
    expect(m.last.eventLoopDelayMs).toBeGreaterThan(20);
  });

  it('the YAML sets server.pressure (defaults: on, 1000 ms, heap off, 1 s samples, 5 in a row)', () => {
    const result = loadConfig({});
    if (!result.ok) throw new Error(result.problems.join('\n'));
    expect(result.config.server.pressure).toEqual({
      enabled: true,
      maxEventLoopDelayMs: 1000,
      maxHeapUsedBytes: 0,
      sampleIntervalMs: 1000,
      sustainedSamples: 5,
    });
  });
});

describe('/readyz under pressure', () => {
  it('answers 503 with the reason while other routes keep answering', async () => {
    const m = monitor({ sustainedSamples: 1 });
    const prober = { firstRoundDone: true, snapshot: () => ({ status: 'ok' }), snapshotJson: () => '{"status":"ok"}' } as unknown as HealthProber;
    const app = Fastify();
    await app.register(healthRoutes, { prober, metrics: createMetrics({ durationBuckets: [0.1] }), isShuttingDown: () => false, pressure: m });
    app.get('/work', async () => ({ ok: true }));
    expect((await app.inject('/readyz')).statusCode).toBe(200);
    m.record(1000, 0);
    const res = await app.inject('/readyz');
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ status: 'not-ready', reason: 'under pressure', eventLoopDelayMs: 1000 });
    expect((await app.inject('/work')).statusCode).toBe(200);
    expect((await app.inject('/livez')).statusCode).toBe(200);
    m.record(0, 0);
    expect((await app.inject('/readyz')).statusCode).toBe(200);
    await app.close();
  });
});
