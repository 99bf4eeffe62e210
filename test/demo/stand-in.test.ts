import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { startStandIn, type StandIn } from '../../src/demo/stand-in.js';

let standIn: StandIn | undefined;
afterEach(async () => {
  await standIn?.close();
  standIn = undefined;
});

describe('stand-in service (demo, tests, bench)', () => {
  it('echoes what it received: method, path, query, chosen headers, body size and hash', async () => {
    standIn = await startStandIn({ name: 'twin', description: 'digital twin' });
    const res = await request(`${standIn.url}/v1/twin/notes?limit=5`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain', 'x-request-id': 'r-1', authorization: 'Bearer secret' },
      body: 'hello',
    });
    const echo = (await res.body.json()) as Record<string, any>;
    expect(res.statusCode).toBe(200);
    expect(echo).toMatchObject({ service: 'twin', description: 'digital twin', method: 'POST', path: '/v1/twin/notes', query: { limit: '5' }, bodyBytes: 5, body: 'hello' });
    expect(echo.bodySha256).toBe('2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824');
    expect(echo.headers).toEqual({ 'x-request-id': 'r-1', 'content-type': 'text/plain', connection: 'keep-alive' });
    expect(standIn.requestCount).toBe(1);
  });

  it('answers /health apart (not counted) and follows its behaviour switches', async () => {
    standIn = await startStandIn({ name: 'fog' });
    standIn.behaviour.failStatus = 503;
    standIn.behaviour.healthStatus = 500;
    const health = await request(`${standIn.url}/health`);
    expect([health.statusCode, await health.body.json()]).toEqual([500, { status: 'unhealthy', service: 'fog' }]);
    const failed = await request(`${standIn.url}/x`);
    await failed.body.dump();
    expect(failed.statusCode).toBe(503);
    expect(standIn.requestCount).toBe(1);
  });
});
