import { describe, expect, it } from 'vitest';
import {
  BREAKER_CLOSED,
  BREAKER_HALF_OPEN,
  BREAKER_OPEN,
  BreakerSet,
  DEFAULT_BREAKER_CONFIG,
  FailedResponse,
  isBreakerOpen,
  Resilience,
  Uncounted,
  type BreakerState,
} from '../../src/resilience/index.js';

const cfg = { ...DEFAULT_BREAKER_CONFIG, volumeThreshold: 4, errorThresholdPercentage: 50, resetTimeout: 60_000 };
const ok = (v: string) => Promise.resolve(v);
const fail500 = (v: string) => Promise.reject(new FailedResponse({ statusCode: 500, v }));
const clientGone = () => Promise.reject(new Uncounted(new Error('aborted')));
const send = (fn: (v: string) => Promise<unknown>, v: string) => fn(v);

/** Timers and handles the process holds (what a leak would show up in). */
const resources = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout' || r === 'Immediate').length;

describe('UpstreamBreaker', () => {
  it('opens on failures past the threshold, rejects at once, half-opens early, closes on success', async () => {
    const changes: Array<[string, BreakerState, BreakerState]> = [];
    const set = new BreakerSet(() => cfg, { onStateChange: (b, from, to) => changes.push([b.service, from, to]) });
    const key = {};
    const b = set.get(key, 'twin', 'http://twin:1')!;
    expect(set.get(key, 'twin', 'http://twin:1')).toBe(b);
    await b.fire(send, ok, 'a');
    for (let i = 0; i < 3; i++) await expect(b.fire(send, fail500, 'x')).rejects.toBeInstanceOf(FailedResponse);
    expect(b.state).toBe(BREAKER_OPEN); // 3 of 4 failed
    const rejected = await b.fire(send, ok, 'never').catch((e: unknown) => e);
    expect(isBreakerOpen(rejected)).toBe(true);
    const err = b.unavailable();
    expect(err.statusCode).toBe(503);
    expect(err.code).toBe('GW_SERVICE_UNAVAILABLE');
    expect(err.headers['x-gateway-fallback']).toBe('fail');
    expect(Number(err.headers['retry-after'])).toBeGreaterThanOrEqual(59);
    expect(set.serviceState('twin')).toBe(BREAKER_OPEN);

    expect(b.halfOpenEarly()).toBe(true);
    expect(b.state).toBe(BREAKER_HALF_OPEN);
    expect(b.halfOpenEarly()).toBe(false);
    await expect(b.fire(send, ok, 'trial')).resolves.toBe('trial');
    expect(b.state).toBe(BREAKER_CLOSED);
    expect(changes).toEqual([
      ['twin', 0, 2],
      ['twin', 2, 1],
      ['twin', 1, 0],
    ]);
    set.close();
  });

  it('a failed trial re-opens; uncounted errors (client gone) do not count', async () => {
    const set = new BreakerSet(() => cfg, { onStateChange: () => {} });
    const b = set.get({}, 'fog', 'http://fog:1')!;
    for (let i = 0; i < 10; i++) await expect(b.fire(send, clientGone, 'x')).rejects.toBeInstanceOf(Uncounted);
    expect(b.state).toBe(BREAKER_CLOSED);
    // Uncounted calls are not failures (opossum counts them as successful fires).
    for (let i = 0; i < 4; i++) await b.fire(send, fail500, 'x').catch(() => undefined);
    expect(b.state).toBe(BREAKER_CLOSED); // 4 failures of 14
    for (let i = 0; i < 7; i++) await b.fire(send, fail500, 'x').catch(() => undefined);
    expect(b.state).toBe(BREAKER_OPEN); // 11 of 21
    b.halfOpenEarly();
    await b.fire(send, fail500, 'x').catch(() => undefined);
    expect(b.state).toBe(BREAKER_OPEN);
    set.close();
  });

  it('a disabled breaker is none', () => {
    const set = new BreakerSet(() => null, { onStateChange: () => {} });
    expect(set.get({}, 'p2p', 'http://p2p:1')).toBeUndefined();
  });
});

describe('hundreds of breakers', () => {
  it('share one rotation timer, hold a fixed number of listeners and leave no timer behind', async () => {
    const before = resources();
    const set = new BreakerSet(() => ({ ...cfg, resetTimeout: 600_000 }), { onStateChange: () => {} });
    const breakers = [];
    for (let i = 0; i < 500; i++) breakers.push(set.get({}, `svc-${i}`, `http://svc-${i}:1`)!);
    for (const b of breakers) await b.fire(send, ok, 'x');
    // Half of them open (each then holds opossum's unref'd reset timer until shut down).
    for (const b of breakers.slice(0, 250)) for (let i = 0; i < 4; i++) await b.fire(send, fail500, 'x').catch(() => undefined);
    expect(breakers.filter((b) => b.state === BREAKER_OPEN)).toHaveLength(250);
    expect(set.rotationClocks).toBe(1);
    expect(resources() - before).toBeLessThanOrEqual(251);
    // Early half-open replaces the opossum breaker: listeners stay the same in number.
    const listeners = breakers[0]!.listenerCount;
    for (let round = 0; round < 5; round++) {
      breakers[0]!.halfOpenEarly();
      for (let i = 0; i < 1; i++) await breakers[0]!.fire(send, fail500, 'x').catch(() => undefined);
    }
    expect(breakers[0]!.state).toBe(BREAKER_OPEN);
    expect(breakers[0]!.listenerCount).toBe(listeners);
    set.close();
    expect(resources()).toBe(before);
  });

  it('Resilience reports breakers per service for /healthz', async () => {
    const services = { twin: { name: 'twin', urls: ['http://twin:1'], healthPath: '/health', timeoutMs: 1000, enabled: true } };
    const r = new Resilience({ proxy: { connectionPoolSize: 1, requestQueueSize: 10, requestTimeoutMs: 1000 }, services });
    const upstream = { service: 'twin', origin: 'http://twin:1' };
    const b = r.breakerFor(upstream)!;
    expect(r.breakerFor(upstream)).toBe(b);
    expect(r.breakerReport()).toEqual({ twin: { state: 'closed', hosts: [{ origin: 'http://twin:1', state: 'closed' }] } });
    for (let i = 0; i < 20; i++) await b.fire(send, fail500, 'x').catch(() => undefined);
    expect(r.breakerReport().twin).toMatchObject({ state: 'open', hosts: [{ state: 'open', retryAfterSeconds: 30 }] });
    r.serviceHealthy('twin');
    expect(r.breakerReport().twin?.state).toBe('half-open');
    r.close();
  });
});
