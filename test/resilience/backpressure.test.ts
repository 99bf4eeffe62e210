import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { GatewayError } from '../../src/errors.js';
import { InFlightLimiter } from '../../src/resilience/backpressure.js';

/** Just enough of a ServerResponse: 'close' once, and `closed`. */
class FakeResponse extends EventEmitter {
  closed = false;
  close(): void {
    this.closed = true;
    this.emit('close');
  }
}
const res = () => new FakeResponse() as FakeResponse & ServerResponse;

function overloaded(fn: () => void): GatewayError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(GatewayError);
    return err as GatewayError;
  }
  throw new Error('expected GW_GATEWAY_OVERLOADED');
}

describe('InFlightLimiter', () => {
  it('bounds one service and frees the slot when the response closes', () => {
    const limiter = new InFlightLimiter({ overall: 10, perService: { twin: 2 } });
    const a = res();
    const b = res();
    limiter.acquire('twin', a);
    limiter.acquire('twin', b);
    expect(limiter.inFlight('twin')).toBe(2);
    const err = overloaded(() => limiter.acquire('twin', res()));
    expect(err.code).toBe('GW_GATEWAY_OVERLOADED');
    expect(err.statusCode).toBe(503);
    expect(err.headers['retry-after']).toBe('1');
    expect(err.message).toContain('twin');
    // Other services are not affected by twin's bound.
    limiter.acquire('fog', res());
    a.close();
    expect(limiter.inFlight('twin')).toBe(1);
    expect(limiter.inFlight()).toBe(2);
    limiter.acquire('twin', res());
    expect(limiter.inFlight('twin')).toBe(2);
  });

  it('bounds the gateway as a whole across services', () => {
    const limiter = new InFlightLimiter({ overall: 3, perService: { twin: 100, fog: 100 } });
    expect(limiter.limit('twin')).toBe(3); // never above the overall bound
    const held = [res(), res(), res()];
    limiter.acquire('twin', held[0]!);
    limiter.acquire('fog', held[1]!);
    limiter.acquire('unknown', held[2]!);
    expect(overloaded(() => limiter.acquire('fog', res())).code).toBe('GW_GATEWAY_OVERLOADED');
    held[1]!.close();
    limiter.acquire('twin', res());
    expect(limiter.inFlight()).toBe(3);
  });

  it('releases exactly once per response, with one listener', () => {
    const limiter = new InFlightLimiter({ overall: 5, perService: {} });
    const r = res();
    limiter.acquire('twin', r);
    limiter.acquire('twin', r); // the same response twice holds one slot
    expect(limiter.inFlight('twin')).toBe(1);
    expect(r.listenerCount('close')).toBe(1);
    r.close();
    r.emit('close');
    expect(limiter.inFlight('twin')).toBe(0);
    expect(limiter.inFlight()).toBe(0);
    // A response already closed when the slot is taken gives it straight back.
    const gone = res();
    gone.closed = true;
    limiter.acquire('twin', gone);
    expect(limiter.inFlight()).toBe(0);
  });

  it('a shed request holds nothing', () => {
    const limiter = new InFlightLimiter({ overall: 1, perService: {} });
    limiter.acquire('twin', res());
    const shed = res();
    overloaded(() => limiter.acquire('twin', shed));
    expect(shed.listenerCount('close')).toBe(0);
    shed.close();
    expect(limiter.inFlight()).toBe(1);
  });
});

describe('Resilience with hundreds of services', () => {
  it('creates no timers or handles and keeps one listener per request in flight', async () => {
    const { Resilience } = await import('../../src/resilience/index.js');
    const resources = () => process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap' && r !== 'PipeWrap').length;
    const before = resources();
    const services: Record<string, { name: string; urls: string[]; healthPath: string; timeoutMs: number; enabled: boolean; maxInFlight: number }> = {};
    for (let i = 0; i < 500; i++) services[`svc-${i}`] = { name: `svc-${i}`, urls: ['http://127.0.0.1:1'], healthPath: '/health', timeoutMs: 1000, enabled: true, maxInFlight: 2 };
    const resilience = new Resilience({ proxy: { connectionPoolSize: 1, requestQueueSize: 10_000, requestTimeoutMs: 1000 }, services });
    const responses = [];
    for (let i = 0; i < 500; i++) {
      const r = res();
      resilience.limiter.acquire(`svc-${i}`, r);
      resilience.retryPolicy(`svc-${i}`)!.budget.recordRequest();
      responses.push(r);
    }
    expect(resources()).toBe(before);
    expect(resilience.limiter.inFlight()).toBe(500);
    for (const r of responses) r.close();
    expect(resilience.limiter.inFlight()).toBe(0);
    expect(responses.every((r) => r.listenerCount('close') === 1)).toBe(true);
  });
});
