import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { cleanup, onCleanup, ROOT, startGateway, waitFor, type GatewayProcess } from '../helpers/gateway.js';
import { call } from '../helpers/http.js';
import { describeWithRedis, startRedis } from '../helpers/redis.js';
import { standIns } from '../helpers/upstreams.js';
import { constantModelFile } from '../routing/model/helpers.js';

/*
 * Two gateway replicas sharing Redis: a model swap on one (admin API) reaches the other
 * within a second through the state store, even though the other replica does not have the
 * model file on its disk; a replica started afterwards adopts the fleet's current model.
 */

function modelsFolder(withCandidate: boolean): string {
  const dir = mkdtempSync(join(tmpdir(), 'ugw-routing-replica-'));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(join(ROOT, 'routing-models/active.json'), join(dir, 'active.json'));
  cpSync(join(ROOT, 'routing-models/models'), join(dir, 'models'), { recursive: true });
  if (withCandidate) writeFileSync(join(dir, 'models/rm-always-p2p.json'), JSON.stringify(constantModelFile('p2p')));
  return dir;
}

const ask = (gw: GatewayProcess, text: string) =>
  call(`${gw.url}/v1/query`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: text }) });

describeWithRedis('routing model swaps across replicas (Redis)', () => {
  let a: GatewayProcess;
  let b: GatewayProcess;
  let env: Record<string, string>;

  beforeAll(async () => {
    const redis = await startRedis();
    const ups = await standIns();
    env = { ...ups.env, REDIS_URL: redis.url };
    [a, b] = await Promise.all([
      startGateway({ env, yaml: `routing:\n  modelsDir: ${modelsFolder(true)}\n` }),
      startGateway({ env, yaml: `routing:\n  modelsDir: ${modelsFolder(false)}\n` }),
    ]);
  });
  afterAll(cleanup);

  it('activate on replica A: replica B follows without the file on disk; a later replica adopts it', async () => {
    expect((await ask(b, 'what is the status of job 4412')).json().service).toBe('fog');
    const res = await call(`${a.url}/admin/routing/model/activate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'rm-always-p2p', persist: false }) });
    expect(res.status, res.text).toBe(200);
    const followed = await waitFor(async () => {
      const r = await ask(b, 'what is the status of job 4412');
      return r.headers['x-routing-model'] === 'rm-always-p2p' ? r : undefined;
    }, 5000, 'replica B to follow', 50);
    expect(followed.json().service).toBe('p2p');
    const status = (await call(`${b.url}/admin/routing/model`)).json();
    expect(status.active).toMatchObject({ id: 'rm-always-p2p', source: 'store:rm-always-p2p' });

    const c = await startGateway({ env, yaml: `routing:\n  modelsDir: ${modelsFolder(false)}\n` });
    expect((await ask(c, 'what is the status of job 4412')).headers['x-routing-model']).toBe('rm-always-p2p');
  });

  it('the shadow model follows too, and each replica counts its own agreement', async () => {
    const set = await call(`${a.url}/admin/routing/model/shadow`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'rm-always-p2p' }) });
    expect(set.status, set.text).toBe(200);
    await waitFor(async () => ((await call(`${b.url}/admin/routing/model`)).json().shadow?.id === 'rm-always-p2p' ? true : undefined), 5000, 'the shadow on B', 50);
    await ask(b, 'remind me to call mom');
    const s = await waitFor(async () => {
      const st = (await call(`${b.url}/admin/routing/model`)).json();
      return st.shadowAgreement.agree + st.shadowAgreement.disagree > 0 ? st : undefined;
    }, 5000, 'shadow scoring on B', 50);
    expect(s.shadowAgreement.agree).toBe(1); // the active model is rm-always-p2p too
  });
});
