import { SignJWT } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanup, NOTHING_LISTENING, sleep, startGateway, waitFor, type GatewayProcess } from '../helpers/gateway.js';
import { call } from '../helpers/http.js';
import { standIns, testServer, type StandIn } from '../helpers/upstreams.js';

interface ServiceHealth {
  service: string;
  status: 'up' | 'down' | 'unknown';
  latencyMs: number | null;
  lastCheck: string | null;
  httpStatus?: number;
  error?: string;
}
interface Snapshot {
  status: 'ok' | 'degraded' | 'down';
  checkedAt: string | null;
  services: Record<string, ServiceHealth>;
}

async function healthz(gw: GatewayProcess, query = ''): Promise<{ status: number; body: Snapshot }> {
  const res = await call(`${gw.url}/healthz${query}`);
  return { status: res.status, body: res.json<Snapshot>() };
}

afterAll(cleanup);

describe('background probing (interval 300 ms)', () => {
  const INTERVAL = 300;
  let gw: GatewayProcess;
  let byName: Record<'twin' | 'agent-controller' | 'knowledge' | 'fog' | 'p2p', StandIn>;

  it('starts: /livez and /readyz answer 200 and every service is up', async () => {
    const started = await standIns();
    byName = started.byName;
    gw = await startGateway({ env: started.env, yaml: `health:\n  intervalMs: ${INTERVAL}\n  timeoutMs: 200\n` });
    const live = await call(`${gw.url}/livez`);
    expect(live.status).toBe(200);
    expect(live.json()).toEqual({ status: 'ok' });
    const ready = await call(`${gw.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(ready.json()).toEqual({ status: 'ready' });

    const { status, body } = await healthz(gw);
    expect(status).toBe(200);
    expect(body.status).toBe('ok');
    expect(Object.keys(body.services).sort()).toEqual(['agent-controller', 'fog', 'knowledge', 'p2p', 'twin']);
    for (const svc of Object.values(body.services)) {
      expect(svc.status).toBe('up');
      expect(svc.httpStatus).toBe(200);
      expect(typeof svc.latencyMs).toBe('number');
      expect(Number.isNaN(Date.parse(svc.lastCheck ?? ''))).toBe(false);
    }
  });

  it('reports a service that goes down within two probe intervals, and the overall status as degraded', async () => {
    const closedAt = performance.now();
    await byName.fog.close();
    const fog = await waitFor(
      async () => {
        const { body } = await healthz(gw);
        return body.services.fog?.status === 'down' ? body : undefined;
      },
      5000,
      'fog reported down',
    );
    const elapsed = performance.now() - closedAt;
    console.log(`/healthz reported fog down ${elapsed.toFixed(0)} ms after it closed (probe interval ${INTERVAL} ms)`);
    expect(elapsed).toBeLessThan(2 * INTERVAL + 300);
    expect(fog.status).toBe('degraded');
    expect(fog.services.fog?.error).toBeTruthy();
    expect(fog.services.twin?.status).toBe('up');
    // Degraded is still serving: 200.
    expect((await healthz(gw)).status).toBe(200);
  });

  it('reports a service whose health endpoint answers 503, and its recovery', async () => {
    byName.twin.behaviour.healthStatus = 503;
    const down = await waitFor(
      async () => {
        const { body } = await healthz(gw);
        return body.services.twin?.status === 'down' ? body.services.twin : undefined;
      },
      5000,
      'twin reported down',
    );
    expect(down.httpStatus).toBe(503);
    expect(down.error).toContain('503');
    byName.twin.behaviour.healthStatus = 200;
    await waitFor(async () => ((await healthz(gw)).body.services.twin?.status === 'up' ? true : undefined), 5000, 'twin back up');
  });
});

describe('/healthz answers from the snapshot; ?deep=1 probes now', () => {
  it('does not touch the upstream unless asked to probe', async () => {
    let healthHits = 0;
    const counting = await testServer((req, res) => {
      req.resume();
      if (req.url === '/health') healthHits += 1;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
    });
    // One round at start, then none for a minute: only ?deep=1 can cause another probe.
    const gw = await startGateway({ env: { TWIN_SERVICE_URL: counting.url }, yaml: 'health:\n  intervalMs: 60000\n  timeoutMs: 1000\n' });
    expect(healthHits).toBe(1);
    const first = await healthz(gw);
    expect(first.body.services.twin?.status).toBe('up');
    expect(first.body.services.fog?.status).toBe('down'); // nothing listening there
    expect(first.body.status).toBe('degraded');

    for (let i = 0; i < 5; i += 1) {
      const again = await healthz(gw);
      expect(again.body.services.twin?.lastCheck).toBe(first.body.services.twin?.lastCheck);
      expect(again.body.checkedAt).toBe(first.body.checkedAt);
    }
    expect(healthHits).toBe(1);

    await sleep(5); // lastCheck has millisecond resolution
    const deep = await healthz(gw, '?deep=1');
    expect(healthHits).toBe(2);
    expect(Date.parse(deep.body.services.twin!.lastCheck!)).toBeGreaterThan(Date.parse(first.body.services.twin!.lastCheck!));
    expect(deep.body.checkedAt).not.toBe(first.body.checkedAt);
    // The deep probe refreshed the snapshot the plain call serves.
    const after = await healthz(gw);
    expect(after.body.services.twin?.lastCheck).toBe(deep.body.services.twin?.lastCheck);
    expect(healthHits).toBe(2);
  });
});

describe('readiness', () => {
  it('/readyz is 503 until the first probe round has finished, then 200; /livez is 200 throughout', async () => {
    // A twin whose /health never answers: the first round lasts the whole probe timeout.
    const hanging = await testServer((req) => {
      req.resume();
    });
    const gw = await startGateway({
      env: { TWIN_SERVICE_URL: hanging.url },
      yaml: 'health:\n  intervalMs: 60000\n  timeoutMs: 1000\n',
      waitReady: false,
    });
    const early = await call(`${gw.url}/readyz`);
    expect(early.status).toBe(503);
    expect(early.json().status).toBe('not-ready');
    expect((await call(`${gw.url}/livez`)).status).toBe(200);

    await waitFor(async () => ((await call(`${gw.url}/readyz`)).status === 200 ? true : undefined), 5000, '/readyz 200');
    const { status, body } = await healthz(gw);
    expect(body.services.twin?.status).toBe('down');
    expect(body.services.twin?.error).toBe('timeout');
    // Every service down: the gateway says so with 503.
    expect(body.status).toBe('down');
    expect(status).toBe(503);
  });
});

describe('/healthz in production: no upstream addresses without an admin credential', () => {
  const SECRET = 'health-e2e-jwt-secret-0123456789-abcdef';
  const ADMIN = 'health-e2e-admin-key-0123456789-abcdefgh';
  const token = (scope: string, amr: string[]) =>
    new SignJWT({ scope, amr }).setProtectedHeader({ alg: 'HS256' }).setSubject('ops').setIssuedAt().setExpirationTime('5m').sign(new TextEncoder().encode(SECRET));

  it('public and read-scope callers see statuses only; an admin with MFA sees hosts and breakers with their origins', async () => {
    const up = await testServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
    });
    const gw = await startGateway({
      env: { ENVIRONMENT: 'production', SECRET_KEY: 's'.repeat(40), JWT_SECRET_KEY: SECRET, API_KEY: ADMIN, TWIN_SERVICE_URL: up.url },
      yaml: `services:\n  twin: { urls: [${up.url}, ${NOTHING_LISTENING}] }\nhealth:\n  intervalMs: 60000\n  timeoutMs: 1000\n`,
    });
    const addresses = [up.url, new URL(up.url).host, NOTHING_LISTENING, '127.0.0.1', 'localhost'];
    // Traffic to twin, so its breakers are in the report.
    for (let i = 0; i < 4; i++) await call(`${gw.url}/v1/twin/x`, { anonymous: true, headers: { 'x-api-key': ADMIN } });

    const views = {
      anonymous: await call(`${gw.url}/healthz`, { anonymous: true }),
      bogus: await call(`${gw.url}/healthz`, { anonymous: true, headers: { authorization: 'Bearer not.a.token' } }),
      read: await call(`${gw.url}/healthz`, { anonymous: true, headers: { authorization: `Bearer ${await token('read', ['otp'])}` } }),
      // Admin scope without a second factor: production asks MFA for the admin surface.
      adminNoMfa: await call(`${gw.url}/healthz`, { anonymous: true, headers: { 'x-api-key': ADMIN } }),
      deep: await call(`${gw.url}/healthz?deep=1`, { anonymous: true }),
    };
    for (const [who, res] of Object.entries(views)) {
      expect(res.status, who).toBe(200);
      for (const a of addresses) expect(res.text, `${who} sees ${a}`).not.toContain(a);
      const body = res.json();
      expect(body.status, who).toBe('degraded'); // the other services point nowhere
      expect(body.services.twin.status, who).toBe('up');
      // The hosts are still there, in order, without their origins.
      expect(body.services.twin.hosts, who).toEqual([
        expect.objectContaining({ status: 'up', httpStatus: 200 }),
        expect.objectContaining({ status: 'down', error: 'ECONNREFUSED' }),
      ]);
      expect(body.services.twin.hosts[0].origin, who).toBeUndefined();
      expect(body.breakers.twin.hosts.length, who).toBeGreaterThan(0);
      for (const h of body.breakers.twin.hosts) expect(Object.keys(h), who).not.toContain('origin');
    }

    const admin = await call(`${gw.url}/healthz`, { anonymous: true, headers: { authorization: `Bearer ${await token('admin', ['pwd', 'otp'])}` } });
    expect(admin.status).toBe(200);
    const full = admin.json();
    expect(full.services.twin.hosts.map((h: { origin: string }) => h.origin)).toEqual([up.url, NOTHING_LISTENING]);
    expect(full.breakers.twin.hosts.map((h: { origin: string }) => h.origin)).toContain(up.url);
  });
});
