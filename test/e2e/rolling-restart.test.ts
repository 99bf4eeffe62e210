import { Agent, request } from 'undici';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { cleanup, E2E_API_KEY, startGateway, waitFor, type GatewayProcess } from '../helpers/gateway.js';
import { describeWithHaproxy, freePort, startHaproxy } from '../helpers/haproxy.js';
import { describeWithRedis, startRedis } from '../helpers/redis.js';
import { standIn } from '../helpers/upstreams.js';

/*
 * A rolling restart of two replicas on Redis behind Debian's haproxy, under steady load:
 * haproxy checks GET /readyz every second (down after 3 failures, up after 2) and never
 * retries a request on another server. Each replica in turn gets SIGTERM, exits, and comes
 * back on its port; not one request may fail. The gateways use the default
 * server.drainDelayMs, which is the claim under test.
 */

afterAll(cleanup);

const describeRolling = (name: string, fn: () => void) => describeWithRedis(name, () => describeWithHaproxy(name, fn));

describeRolling('rolling restart behind haproxy (no retries)', () => {
  let env: Record<string, string | undefined>;
  const ports: number[] = [];
  const replicas: GatewayProcess[] = [];
  let lb: { url: string };

  const startReplica = (port: number) =>
    startGateway({ env: { ...env, GATEWAY_PORT: String(port) }, startTimeoutMs: 20_000 });

  beforeAll(async () => {
    const [redis, twin] = await Promise.all([startRedis(), standIn('twin')]);
    env = {
      REDIS_URL: redis.url,
      TWIN_SERVICE_URL: twin.url,
      GATEWAY_DRAIN_DELAY_MS: undefined, // the default drain delay
      RATE_LIMIT_REQUESTS: '10000000',
    };
    ports.push(await freePort(), await freePort());
    replicas.push(...(await Promise.all(ports.map(startReplica))));
    lb = await startHaproxy(ports, { checkPath: '/readyz', interval: '1s', fall: 3, rise: 2 });
  });

  it('loses no request while each replica is stopped and started again', async () => {
    const agent = new Agent({ connections: 8, keepAliveTimeout: 30_000 });
    let ok = 0;
    const failures = new Map<string, number>();
    let running = true;
    // Eight clients, each sending one request after another with a short pause: steady load.
    const client = async () => {
      while (running) {
        let outcome: string;
        try {
          const res = await request(`${lb.url}/v1/twin/rolling`, { dispatcher: agent, headers: { 'x-api-key': E2E_API_KEY } });
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
    const clients = Array.from({ length: 8 }, client);
    const served = () => ok;
    await waitFor(() => (served() > 200 ? true : undefined), 10_000, 'load to flow');

    for (let i = 0; i < replicas.length; i++) {
      const before = served();
      const exit = await replicas[i]!.stop('SIGTERM', 30_000);
      expect(exit).toEqual({ code: 0, signal: null });
      replicas[i] = await startReplica(ports[i]!);
      // haproxy needs `rise` good checks before it sends traffic to the new process again
      await new Promise((r) => setTimeout(r, 3000));
      expect(served(), 'requests went on while the replica restarted').toBeGreaterThan(before);
    }

    running = false;
    await Promise.all(clients);
    await agent.close();
    const failed = [...failures.values()].reduce((a, b) => a + b, 0);
    console.log(`rolling restart: ${ok + failed} requests, ${ok} answered 200, ${failed} failed ${JSON.stringify(Object.fromEntries(failures))}`);
    expect(Object.fromEntries(failures)).toEqual({});
    expect(ok).toBeGreaterThanOrEqual(2000);
  }, 120_000);
});
