import { afterAll, describe, expect, it } from 'vitest';
import { cleanup, E2E_API_KEY, processMemory, startGateway, waitFor, type GatewayProcess } from '../helpers/gateway.js';
import { describeWithRedis, startRedis } from '../helpers/redis.js';
import { standIns } from '../helpers/upstreams.js';
import { closed, connect, isRefused, nextMessage, wsUpstream } from '../ws/helpers.js';
import type { WebSocket } from 'ws';

/*
 * WebSockets through a real gateway process: the demo stand-in's echo, and a client that
 * stops reading while its upstream floods it (the gateway's memory stays bounded by
 * websockets.bufferBytes: the upstream's data waits on the upstream's side).
 */

afterAll(cleanup);
const auth = { 'x-api-key': E2E_API_KEY };

function opened(v: Awaited<ReturnType<typeof connect>>): WebSocket {
  if (isRefused(v)) throw new Error(`refused: ${v.status} ${JSON.stringify(v.body)}`);
  return v;
}

describe('WebSockets through the gateway process', () => {
  it('the stand-in echoes text frames on any path through the gateway; no credentials is 401 before the upgrade', async () => {
    const ups = await standIns(['twin', 'p2p']);
    const gw = await startGateway({ env: ups.env });
    const ws = gw.url.replace('http', 'ws');
    const anonymous = await connect(`${ws}/v1/p2p/any/path`);
    expect(isRefused(anonymous) && anonymous.status).toBe(401);
    const client = opened(await connect(`${ws}/v1/p2p/any/path`, { headers: auth }));
    client.send('ping through the gateway');
    expect((await nextMessage(client)).data.toString()).toBe('ping through the gateway');
    const done = closed(client);
    client.close(1000, 'done');
    expect((await done).code).toBe(1000);
  });

  it('a client that stops reading: the gateway stops reading its upstream, and its memory stays within the configured buffer', async () => {
    const MIB = 1024 * 1024;
    const up = await wsUpstream();
    const chunk = Buffer.alloc(64 * 1024, 7);
    const TOTAL = 128 * MIB;
    let queued = 0;
    up.onConnection = (socket) => {
      // Flood: everything at once; what the gateway does not read waits in this process.
      while (queued < TOTAL) {
        socket.send(chunk);
        queued += chunk.length;
      }
    };
    const gw: GatewayProcess = await startGateway({
      env: { TWIN_SERVICE_URL: up.url },
      yaml: 'websockets:\n  bufferBytes: 1048576\n  idleTimeoutMs: 0\n  pingIntervalMs: 0\n',
    });
    const before = processMemory(gw.pid).rss;
    const client = opened(await connect(`${gw.url.replace('http', 'ws')}/v1/twin/flood`, { headers: auth }));
    client.pause(); // stop reading: the socket is no longer read, TCP pushes back on the gateway
    let received = 0;
    client.on('message', (data: Buffer) => (received += data.length));

    // Wait until the gateway's memory settles (1 s without growing by more than 1 MiB).
    let peak = processMemory(gw.pid).rss;
    let stableSince = performance.now();
    const deadline = performance.now() + 30_000;
    for (;;) {
      await new Promise((r) => setTimeout(r, 100));
      const rss = processMemory(gw.pid).rss;
      if (rss > peak + MIB) {
        peak = rss;
        stableSince = performance.now();
      } else if (performance.now() - stableSince > 1500) break;
      if (performance.now() > deadline) throw new Error('the gateway memory kept growing');
    }
    const held = processMemory(gw.pid).rss - before;
    console.log(`slow reader: ${TOTAL / MIB} MiB sent by the upstream, client not reading; gateway RSS grew ${(held / MIB).toFixed(1)} MiB (websockets.bufferBytes 1 MiB)`);
    // Without backpressure the gateway reads and holds the whole flood (measured: +121 MiB).
    expect(held).toBeLessThan(32 * MIB);
    expect(received).toBe(0);

    // Reading again: everything arrives, nothing was dropped.
    client.resume();
    const start = performance.now();
    while (received < TOTAL && performance.now() - start < 60_000) await new Promise((r) => setTimeout(r, 50));
    expect(received).toBe(TOTAL);
  }, 120_000);
});

describeWithRedis('/v1/events across two gateway processes sharing Redis', () => {
  it('a WebSocket listener on replica B shows a traffic shift made on replica A within 1 s', async () => {
    const redis = await startRedis();
    const ups = await standIns(['twin']);
    const yaml = `routes:\n  - { id: twin, prefix: /v1/twin, service: twin, split: { canary: { urls: ["${ups.env.TWIN_SERVICE_URL}"] } } }\n`;
    const env = { ...ups.env, REDIS_URL: redis.url, JWT_SECRET_KEY: 'e2e-events-jwt-secret-0123456789abcdef' };
    const [a, b] = await Promise.all([startGateway({ env, yaml }), startGateway({ env, yaml })]);
    // Both replicas on Redis now (a replica that took it for away during a busy start-up says so
    // and keeps a shift to itself, answering shared: false; that is not what this test measures).
    const storeUp = (g: typeof a) => {
      const lines = g.logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('state store '));
      return lines.at(-1)?.msg?.startsWith('state store reachable') === true ? true : undefined;
    };
    await waitFor(() => (storeUp(a) && storeUp(b) ? true : undefined), 10_000, 'both replicas on Redis');
    const listener = opened(await connect(`${b.url.replace('http', 'ws')}/v1/events?types=traffic.shifted`, { headers: auth }));
    const arrived = new Promise<{ event: { canary: number } }>((resolve) => listener.on('message', (d: Buffer) => resolve(JSON.parse(d.toString()) as { event: { canary: number } })));
    const started = performance.now();
    const res = await fetch(`${a.url}/admin/traffic/twin`, {
      method: 'PUT',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ stable: 80, canary: 20, reason: 'e2e events across replicas' }),
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { shared?: unknown }).shared).toBe(true);
    const message = await arrived;
    const elapsedMs = performance.now() - started;
    console.log(`/v1/events across gateway processes: the shift made on A reached B's listener ${elapsedMs.toFixed(1)} ms after the PUT was sent`);
    expect(message.event).toMatchObject({ type: 'traffic.shifted', route: 'twin', canary: 20 });
    expect(elapsedMs).toBeLessThan(1000);
  });
});
