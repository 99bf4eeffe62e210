import { connect } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanup, startGateway, waitFor } from '../helpers/gateway.js';
import { call } from '../helpers/http.js';
import { standIn } from '../helpers/upstreams.js';

afterAll(cleanup);

/** 'refused' when nothing accepts on the port any more, 'accepted' while the listener is open. */
function tryConnect(port: number): Promise<'accepted' | 'refused' | string> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve('accepted');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED' ? 'refused' : (err.code ?? err.message)));
  });
}

describe('graceful shutdown', () => {
  it('on SIGTERM: the in-flight request completes, new connections are refused, exit code 0', async () => {
    const twin = await standIn('twin');
    twin.behaviour.delayMs = 1000;
    const gw = await startGateway({ env: { TWIN_SERVICE_URL: twin.url } });

    let completedAt = 0;
    const inFlight = call(`${gw.url}/v1/twin/slow?n=1`).then((res) => {
      completedAt = performance.now();
      return res;
    });
    await waitFor(() => (twin.requestCount === 1 ? true : undefined), 5000, 'the request to reach the upstream');

    gw.child.kill('SIGTERM');
    const refusedAt = await waitFor(async () => ((await tryConnect(gw.port)) === 'refused' ? performance.now() : undefined), 5000, 'new connections refused');

    const res = await inFlight;
    expect(res.status).toBe(200);
    expect(res.json()).toMatchObject({ service: 'twin', path: '/v1/twin/slow', query: { n: '1' } });
    // The listener was closed while the request was still being served.
    expect(refusedAt).toBeLessThan(completedAt);

    const exit = await gw.exited;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(gw.logs.some((l) => l.msg === 'shutdown complete')).toBe(true);
  });

  it('past server.shutdownTimeoutMs it cuts what is left and still exits 0', async () => {
    const twin = await standIn('twin');
    twin.behaviour.delayMs = 10_000;
    const gw = await startGateway({ env: { TWIN_SERVICE_URL: twin.url }, yaml: 'server:\n  shutdownTimeoutMs: 300\n' });
    const inFlight = call(`${gw.url}/v1/twin/very-slow`).then(
      (res) => `answered ${res.status}`,
      (err: NodeJS.ErrnoException) => `failed ${err.code ?? err.message}`,
    );
    await waitFor(() => (twin.requestCount === 1 ? true : undefined), 5000, 'the request to reach the upstream');
    const signalledAt = performance.now();
    gw.child.kill('SIGTERM');
    const exit = await gw.exited;
    const took = performance.now() - signalledAt;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(took).toBeLessThan(5000);
    expect(await inFlight).toMatch(/^failed /);
    expect(gw.logs.some((l) => l.msg === 'shutdown deadline reached; closing remaining connections')).toBe(true);
  });
});
