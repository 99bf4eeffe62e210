import Fastify from 'fastify';
import { pino } from 'pino';
import type { Dispatcher } from 'undici';
import { describe, expect, it } from 'vitest';
import type { ServiceConfig } from '../../src/config/index.js';
import { HealthProber, localProbeError } from '../../src/health/prober.js';
import { healthRoutes } from '../../src/health/routes.js';
import { createMetrics } from '../../src/metrics/registry.js';

/** What the fake pool does for each origin in the current round: an HTTP status, or an error code thrown. */
type Behaviour = Record<string, number | string>;

function fakePool(behaviour: () => Behaviour): Pick<Dispatcher, 'request' | 'close'> {
  return {
    request: (async (opts: Dispatcher.RequestOptions) => {
      const b = behaviour()[String(opts.origin)];
      if (b === undefined) throw new Error(`unexpected origin ${String(opts.origin)}`);
      if (typeof b === 'string') {
        // What undici throws when socket() fails: a plain Error with the errno code.
        throw Object.assign(new Error(`connect ${b} ${String(opts.origin)}`), { code: b, syscall: 'connect' });
      }
      return { statusCode: b, body: { dump: async () => undefined } };
    }) as unknown as Dispatcher['request'],
    close: (async () => undefined) as unknown as Dispatcher['close'],
  };
}

const service = (name: string, urls: string[]): ServiceConfig => ({ name, urls, healthPath: '/health', timeoutMs: 1000, enabled: true });

function prober(services: ServiceConfig[], behaviour: () => Behaviour) {
  const hostEvents: Array<[string, string, boolean]> = [];
  const changes: Array<[string, string]> = [];
  const metrics = createMetrics({ durationBuckets: [0.1], defaultMetrics: false });
  const p = new HealthProber({
    services,
    intervalMs: 60_000,
    timeoutMs: 1000,
    metrics,
    logger: pino({ level: 'silent' }),
    dispatcher: fakePool(behaviour),
    onHostHealth: (s, origin, up) => hostEvents.push([s, origin, up]),
    onServiceStatusChange: (s, status) => changes.push([s, status]),
  });
  return { p, hostEvents, changes, metrics };
}

describe('HealthProber announcements', () => {
  it('a change is in the snapshot when it is announced, while the round\'s slower probes are still out', async () => {
    let release: () => void = () => {};
    const slow = new Promise<void>((resolve) => (release = resolve));
    let round = 0;
    const seen: Array<[string, string | undefined, string]> = [];
    const metrics = createMetrics({ durationBuckets: [0.1], defaultMetrics: false });
    const p: HealthProber = new HealthProber({
      services: [service('fast', ['http://fast:1']), service('slow', ['http://slow:2'])],
      intervalMs: 60_000,
      timeoutMs: 1000,
      metrics,
      logger: pino({ level: 'silent' }),
      dispatcher: {
        request: (async (opts: Dispatcher.RequestOptions) => {
          if (String(opts.origin) === 'http://slow:2' && round === 2) await slow;
          if (String(opts.origin) === 'http://fast:1' && round === 2) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
          return { statusCode: 200, body: { dump: async () => undefined } };
        }) as unknown as Dispatcher['request'],
        close: (async () => undefined) as unknown as Dispatcher['close'],
      },
      // What a subscriber reads back on the notification.
      onServiceStatusChange: (s, status) => seen.push([s, p.snapshot().services[s]?.status, status]),
    });
    round = 1;
    await p.probeAll();
    round = 2;
    const second = p.probeAll();
    await new Promise((r) => setImmediate(r));
    // The fast service went down while the slow probe is still out: announced and already shown.
    expect(seen.at(-1)).toEqual(['fast', 'down', 'down']);
    expect(JSON.parse(p.snapshotJson()).services.fast.status).toBe('down');
    release();
    await second;
    await p.stop();
  });
});

describe('HealthProber when the gateway runs out of file descriptors', () => {
  it('keeps a service up when its probe fails with EMFILE, and says the problem is local', async () => {
    let round: Behaviour = { 'http://twin:8001': 200 };
    const { p, hostEvents, changes, metrics } = prober([service('twin', ['http://twin:8001'])], () => round);
    await p.probeAll();
    expect(p.snapshot().services.twin).toMatchObject({ status: 'up' });
    expect(p.localProblem).toBeNull();

    round = { 'http://twin:8001': 'EMFILE' };
    await p.probeAll();
    const twin = p.snapshot().services.twin!;
    expect(twin.status).toBe('up');
    expect(twin.probeError).toMatch(/^EMFILE: the gateway could not make the probe/);
    expect(p.snapshot().status).toBe('ok');
    expect(p.localProblem).toBe('EMFILE');
    expect(hostEvents.filter(([, , up]) => !up)).toEqual([]);
    expect(changes).toEqual([['twin', 'up']]);
    expect((await metrics.registry.getSingleMetric('gateway_service_up')!.get()).values[0]!.value).toBe(1);

    round = { 'http://twin:8001': 200 };
    await p.probeAll();
    expect(p.localProblem).toBeNull();
    expect(p.snapshot().services.twin!.probeError).toBeUndefined();
    await p.stop();
  });

  it('does not call a never-probed service down on ENFILE (it stays unknown, the overall status is not down)', async () => {
    const { p } = prober([service('knowledge', ['http://kn:8003'])], () => ({ 'http://kn:8003': 'ENFILE' }));
    await p.probeAll();
    expect(p.snapshot().services.knowledge).toMatchObject({ status: 'unknown', probeError: expect.stringMatching(/^ENFILE/) });
    expect(p.snapshot().status).not.toBe('down');
    expect(p.localProblem).toBe('ENFILE');
    await p.stop();
  });

  it('decides a multi-host service on the hosts it could really probe', async () => {
    let round: Behaviour = { 'http://a:1': 200, 'http://b:1': 200 };
    const { p, hostEvents } = prober([service('fog', ['http://a:1', 'http://b:1'])], () => round);
    await p.probeAll();
    round = { 'http://a:1': 'EMFILE', 'http://b:1': 503 };
    await p.probeAll();
    const fog = p.snapshot().services.fog!;
    // Host a keeps its last real result (up), host b really answered 503.
    expect(fog.status).toBe('up');
    expect(fog.hosts?.map((h) => [h.origin, h.status])).toEqual([
      ['http://a:1', 'up'],
      ['http://b:1', 'down'],
    ]);
    expect(hostEvents.filter(([, origin, up]) => origin === 'http://a:1' && !up)).toEqual([]);
    await p.stop();
  });

  it('still marks a service down for errors that are about the service', async () => {
    let round: Behaviour = { 'http://twin:8001': 200 };
    const { p } = prober([service('twin', ['http://twin:8001'])], () => round);
    await p.probeAll();
    round = { 'http://twin:8001': 'ECONNREFUSED' };
    await p.probeAll();
    expect(p.snapshot().services.twin).toMatchObject({ status: 'down', error: 'ECONNREFUSED' });
    expect(p.localProblem).toBeNull();
    await p.stop();
  });

  it('recognises a local error in the cause chain (fetch wraps it)', () => {
    expect(localProbeError(Object.assign(new TypeError('fetch failed'), { cause: Object.assign(new Error('x'), { code: 'EMFILE' }) }))).toBe('EMFILE');
    expect(localProbeError(Object.assign(new Error('x'), { code: 'ECONNRESET' }))).toBeUndefined();
    expect(localProbeError(undefined)).toBeUndefined();
  });
});

describe('/readyz and /livez when the probes hit EMFILE', () => {
  it('/readyz turns 503 with the reason, /livez and /healthz keep answering 200', async () => {
    let round: Behaviour = { 'http://twin:8001': 200 };
    const { p, metrics } = prober([service('twin', ['http://twin:8001'])], () => round);
    const app = Fastify();
    await app.register(healthRoutes, { prober: p, metrics, isShuttingDown: () => false });
    await p.probeAll();
    expect((await app.inject('/readyz')).statusCode).toBe(200);
    round = { 'http://twin:8001': 'EMFILE' };
    await p.probeAll();
    const ready = await app.inject('/readyz');
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toEqual({ status: 'not-ready', reason: 'gateway resources exhausted (EMFILE)' });
    expect((await app.inject('/livez')).statusCode).toBe(200);
    const health = await app.inject('/healthz');
    expect(health.statusCode).toBe(200);
    expect(health.json().services.twin.status).toBe('up');
    await app.close();
    await p.stop();
  });
});

describe('HealthProber warm start from the operational memory', () => {
  it('shows remembered states with source "memory" until the first probe decides, without announcing a change', async () => {
    const round: Behaviour = { 'http://twin:8001': 503, 'http://kn:8003': 200 };
    const { p, changes } = prober([service('twin', ['http://twin:8001']), service('knowledge', ['http://kn:8003'])], () => round);
    const seeded = p.seedFromMemory([
      { service: 'twin', status: 'down', at: '2026-12-01T10:00:00.000Z' },
      { service: 'knowledge', status: 'up', at: '2026-12-01T09:00:00.000Z' },
      { service: 'not-configured', status: 'up', at: '2026-12-01T09:00:00.000Z' },
    ]);
    expect(seeded).toBe(2);
    expect(p.snapshot().services.twin).toEqual({ service: 'twin', status: 'down', latencyMs: null, lastCheck: null, source: 'memory', since: '2026-12-01T10:00:00.000Z' });
    expect(JSON.parse(p.snapshotJson()).services.knowledge).toMatchObject({ status: 'up', source: 'memory' });
    expect(p.snapshot().checkedAt).toBeNull();
    expect(changes).toEqual([]);

    await p.probeAll();
    // twin was down and still is: no transition; knowledge was up and still is.
    expect(changes).toEqual([]);
    expect(p.snapshot().services.twin).toMatchObject({ status: 'down', error: 'health endpoint answered 503' });
    expect(p.snapshot().services.twin!.source).toBeUndefined();
    expect(p.snapshot().services.knowledge!.source).toBeUndefined();
    // A probed service is never overwritten by a late warm start.
    expect(p.seedFromMemory([{ service: 'twin', status: 'up', at: '2026-12-01T11:00:00.000Z' }])).toBe(0);
    expect(p.snapshot().services.twin!.status).toBe('down');
    await p.stop();
  });

  it('announces a change with its cause in the public form (no addresses)', async () => {
    let round: Behaviour = { 'http://twin:8001': 200 };
    const causes: Array<string | undefined> = [];
    const metrics = createMetrics({ durationBuckets: [0.1], defaultMetrics: false });
    const p = new HealthProber({
      services: [service('twin', ['http://twin:8001'])],
      intervalMs: 60_000,
      timeoutMs: 1000,
      metrics,
      logger: pino({ level: 'silent' }),
      dispatcher: fakePool(() => round),
      onServiceStatusChange: (_s, _status, cause) => causes.push(cause),
    });
    await p.probeAll();
    round = { 'http://twin:8001': 'ECONNREFUSED' };
    await p.probeAll();
    round = { 'http://twin:8001': 200 };
    await p.probeAll();
    expect(causes).toEqual([undefined, 'ECONNREFUSED', undefined]);
    await p.stop();
  });
});
