import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { buildGateway, type Gateway } from '../../src/server/app.js';

/** Rows of the table in docs/metrics.md: | `name` | type | labels | meaning | */
const documented = new Map(
  [...readFileSync(new URL('../../docs/metrics.md', import.meta.url), 'utf8').matchAll(/^\|\s*`(gateway_[a-z_]+)`\s*\|\s*(counter|gauge|histogram)\s*\|/gm)].map((m) => [m[1]!, m[2]!]),
);

let gateway: Gateway | undefined;
afterAll(async () => gateway?.close());

describe('docs/metrics.md', () => {
  it('lists every metric the gateway registers, with its type, and nothing else', async () => {
    const result = loadConfig({ GATEWAY_HOST: '127.0.0.1', GATEWAY_PORT: '0' });
    if (!result.ok) throw new Error(result.problems.join('\n'));
    gateway = await buildGateway(result.config, { logger: pino({ level: 'silent' }), processMetrics: false });
    const registered = new Map((await gateway.metrics.registry.getMetricsAsJSON()).map((m) => [m.name, String(m.type)]));
    expect(registered.size).toBeGreaterThan(20);
    for (const [name, type] of registered) expect(documented.get(name), `${name} in docs/metrics.md`).toBe(type);
    expect([...documented.keys()].sort()).toEqual([...registered.keys()].sort());
  });
});
