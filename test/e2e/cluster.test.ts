import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanup, E2E_API_KEY, startGateway, waitFor, type GatewayProcess, type LogLine } from '../helpers/gateway.js';
import { standIn } from '../helpers/upstreams.js';

/*
 * WORKER_THREADS=2 (src/server/cluster.ts): two gateway processes behind one port, /metrics
 * summed over both, and a rolling restart (SIGHUP to the primary) under steady load that
 * loses no request. The cluster runs on the memory state store: each worker counts its own
 * requests, so an exact total in /metrics can only come from the aggregation.
 */

afterAll(cleanup);

const AUTH = { 'x-api-key': E2E_API_KEY };
const listeningPids = (gw: GatewayProcess): number[] =>
  gw.logs.filter((l: LogLine) => l.msg === 'gateway listening' && typeof l.pid === 'number').map((l) => l.pid as number);

/** The value of one sample line of a Prometheus text exposition (0 when absent). */
function sample(text: string, name: string, labels: Record<string, string>): number {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const labelText = line.slice(name.length + 1, line.indexOf('}'));
    if (want.every((w) => labelText.split(',').includes(w))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}

describe('WORKER_THREADS=2: two workers on one port', () => {
  let gateway: GatewayProcess;

  beforeAll(async () => {
    const twin = await standIn('twin');
    gateway = await startGateway({
      env: { WORKER_THREADS: '2', TWIN_SERVICE_URL: twin.url, GATEWAY_DRAIN_DELAY_MS: '1000', RATE_LIMIT_REQUESTS: '10000000' },
      startTimeoutMs: 30_000,
    });
    await waitFor(() => (listeningPids(gateway).length >= 2 ? true : undefined), 30_000, 'both workers listening');
  }, 60_000);

  it('serves from both workers on the one port, and /metrics counts the requests of both', async () => {
    const pids = listeningPids(gateway);
    expect(new Set(pids).size).toBe(2);
    expect(pids).not.toContain(gateway.pid); // the primary serves no request
    const n = 40;
    for (let i = 0; i < n; i++) {
      // A new connection each time: the primary hands connections to the workers in turn.
      const res = await request(`${gateway.url}/v1/twin/cluster-count`, { headers: { ...AUTH, connection: 'close' } });
      await res.body.text();
      expect(res.statusCode).toBe(200);
    }
    const served = await waitFor(
      () => {
        const by = new Set(gateway.logs.filter((l) => l.msg === 'request completed' && l.url === '/v1/twin/cluster-count').map((l) => l.pid));
        return by.size === 2 ? by : undefined;
      },
      5000,
      'access-log lines of both workers',
    );
    expect([...served].sort()).toEqual([...pids].sort());

    const res = await request(`${gateway.url}/metrics`, { headers: { ...AUTH, connection: 'close' } });
    const text = await res.body.text();
    expect(res.statusCode).toBe(200);
    // Every worker's count, summed: exactly n whichever worker answered the scrape.
    expect(sample(text, 'gateway_requests_total', { endpoint: '/v1/twin/*', status: '200' })).toBe(n);
    expect(sample(text, 'gateway_service_requests', { service: 'twin', status: '200' })).toBe(n);
  }, 30_000);

  it('restarts the workers one at a time on SIGHUP without losing a request', async () => {
    const before = new Set(listeningPids(gateway));
    const agent = new Agent({ connections: 4, keepAliveTimeout: 30_000 });
    let ok = 0;
    const failures = new Map<string, number>();
    let running = true;
    const client = async () => {
      while (running) {
        let outcome: string;
        try {
          const res = await request(`${gateway.url}/v1/twin/rolling`, { dispatcher: agent, headers: AUTH });
          await res.body.text();
          outcome = res.statusCode === 200 ? 'ok' : `status ${res.statusCode}`;
        } catch (err) {
          outcome = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
        }
        if (outcome === 'ok') ok++;
        else failures.set(outcome, (failures.get(outcome) ?? 0) + 1);
        await new Promise((r) => setTimeout(r, 5));
      }
    };
    const clients = Array.from({ length: 4 }, client);
    await waitFor(() => (ok > 50 ? true : undefined), 10_000, 'load to flow');

    process.kill(gateway.pid, 'SIGHUP');
    await gateway.waitForLog((l) => l.msg === 'rolling restart done', 60_000);
    const during = ok;
    await waitFor(() => (ok > during + 50 ? true : undefined), 10_000, 'load to flow after the restart');
    running = false;
    await Promise.all(clients);
    await agent.close();

    const now = listeningPids(gateway).filter((p) => !before.has(p));
    expect(now).toHaveLength(2); // two new workers
    expect(gateway.logs.filter((l) => l.msg === 'shutdown complete' && before.has(l.pid as number))).toHaveLength(2); // the old ones drained and exited
    expect(Object.fromEntries(failures)).toEqual({});
  }, 90_000);

  it('stops every worker and exits 0 on SIGTERM', async () => {
    const exit = await gateway.stop('SIGTERM', 30_000);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(gateway.logs.some((l) => l.msg === 'all workers stopped')).toBe(true);
    for (const pid of listeningPids(gateway)) expect(() => process.kill(pid, 0)).toThrow();
  }, 40_000);
});
