import { afterEach, describe, expect, it } from 'vitest';
import type { ServiceConfig } from '../../src/config/index.js';
import { UpstreamRegistry, type Upstream } from '../../src/proxy/upstreams.js';

/* Load balancing over a service's hosts (src/proxy/upstreams.ts): fewest outstanding, skipping down hosts. */

const svc = (name: string, urls: string[]): ServiceConfig => ({ name, urls, healthPath: '/health', timeoutMs: 1000, enabled: true });
let registry: UpstreamRegistry | undefined;
afterEach(async () => {
  await registry?.close();
  registry = undefined;
});

function make(urls: string[]): UpstreamRegistry {
  registry = new UpstreamRegistry([svc('twin', urls), svc('solo', ['http://127.0.0.1:9/base/'])], { connections: 1, connectTimeoutMs: 100 });
  return registry;
}

const origins = (picks: (Upstream | undefined)[]) => picks.map((u) => u?.origin);

describe('UpstreamRegistry.pick', () => {
  it('spreads idle hosts round robin, and a single host is always that host', () => {
    const r = make(['http://a.test:1', 'http://b.test:1', 'http://c.test:1']);
    expect(origins([r.pick('twin'), r.pick('twin'), r.pick('twin'), r.pick('twin')])).toEqual([
      'http://a.test:1',
      'http://b.test:1',
      'http://c.test:1',
      'http://a.test:1',
    ]);
    expect(r.pick('solo')).toMatchObject({ origin: 'http://127.0.0.1:9', basePath: '/base' });
    expect(r.pick('ghost')).toBeUndefined();
  });

  it('prefers the host with the fewest outstanding requests', () => {
    const r = make(['http://a.test:1', 'http://b.test:1', 'http://c.test:1']);
    const [a, b, c] = r.all('twin') as Upstream[];
    a!.outstanding = 5;
    b!.outstanding = 1;
    c!.outstanding = 3;
    for (let i = 0; i < 5; i++) expect(r.pick('twin')).toBe(b);
    b!.outstanding = 4;
    expect(r.pick('twin')).toBe(c);
  });

  it('skips hosts the prober marked down, and still picks one when all are down', () => {
    const r = make(['http://a.test:1', 'http://b.test:1']);
    r.setHostDown('twin', 'http://a.test:1', true);
    expect(origins([r.pick('twin'), r.pick('twin'), r.pick('twin')])).toEqual(['http://b.test:1', 'http://b.test:1', 'http://b.test:1']);
    r.setHostDown('twin', 'http://b.test:1', true);
    const both = new Set(origins([r.pick('twin'), r.pick('twin')]));
    expect(both).toEqual(new Set(['http://a.test:1', 'http://b.test:1']));
    r.setHostDown('twin', 'http://a.test:1', false);
    expect(r.pick('twin')?.origin).toBe('http://a.test:1');
  });

  it('skips a host whose circuit breaker is open until it leaves open', () => {
    const r = make(['http://a.test:1', 'http://b.test:1']);
    r.setBreakerOpen('twin', 'http://b.test:1', true);
    expect(origins([r.pick('twin'), r.pick('twin'), r.pick('twin')])).toEqual(['http://a.test:1', 'http://a.test:1', 'http://a.test:1']);
    r.setBreakerOpen('twin', 'http://b.test:1', false);
    expect(new Set(origins([r.pick('twin'), r.pick('twin')]))).toEqual(new Set(['http://a.test:1', 'http://b.test:1']));
  });
});
