import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ResourceUpdatedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanup, E2E_API_KEY, onCleanup, startGateway, waitFor, type GatewayProcess } from '../helpers/gateway.js';
import { githubApi, type GithubApi } from '../helpers/github-api.js';
import { call } from '../helpers/http.js';
import { describeWithRedis, startRedis } from '../helpers/redis.js';
import { standIn, standIns, testServer } from '../helpers/upstreams.js';

/*
 * Acceptance of issue 16 with real processes and short steps: a healthy canary moved
 * 10 -> 100% with its GitHub issue ticked and the pull request opened; a canary failing 5%
 * rolled back by itself with the why and the figures on the issue; a restart in the middle
 * resuming the same step with two replicas on Redis and one controller acting; the legacy
 * endpoints' headers and their 410 after the sunset.
 */

afterAll(cleanup);

/** A public split route (cookie-sticky: clients without a cookie land anywhere) and fast migration settings. */
function yaml(canaryUrl: string, githubUrl: string, extra = '', intervalMs = 250): string {
  return (
    'routes:\n' +
    `  - { id: web, prefix: /v1/web, service: twin, rewritePrefix: /v1/twin, auth: { required: false }, split: { canary: { urls: ["${canaryUrl}"] } } }\n` +
    'migration:\n' +
    `  evaluationIntervalMs: ${intervalMs}\n` +
    // The latency gates have their unit tests (test/migration/controller.test.ts); on 2 shared cores
    // a fresh process's first requests take seconds on both sides, so here they are wide.
    '  gates: { maxP99Ms: 20000, p99RatioToStable: 50 }\n' +
    `  tracking: { backend: octokit, repo: village/gateway, configRepo: village/config, baseUrl: "${githubUrl}", maxAttempts: 20 }\n` +
    extra
  );
}

/** Anonymous requests without a cookie, `concurrency` at a time, until `stop()` says so. */
async function drive(urls: readonly string[], until: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let sent = 0;
  while (Date.now() < deadline) {
    await Promise.all(Array.from({ length: 20 }, (_, i) => call(`${urls[(sent + i) % urls.length]}/v1/web/notes`, { anonymous: true }).catch(() => undefined)));
    sent += 20;
    if (await until()) return sent;
  }
  throw new Error(`condition not reached after ${sent} requests`);
}

async function migration(gw: GatewayProcess, id: string): Promise<any> {
  const res = await call(`${gw.url}/admin/migrations/${id}`);
  expect(res.status, `${res.text}\n${gw.logs.filter((l) => (l.level ?? 0) >= 40).slice(-8).map((l) => JSON.stringify(l)).join('\n')}`).toBe(200);
  return (res.json() as { migration: unknown }).migration;
}

async function startMigration(gw: GatewayProcess, body: Record<string, unknown>): Promise<string> {
  const res = await call(`${gw.url}/admin/migrations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  expect(res.status, res.text).toBe(201);
  return (res.json() as { migration: { id: string } }).migration.id;
}

async function trackedIssue(api: GithubApi, predicate: (issue: { body: string; labels: string[]; comments: string[] }) => boolean) {
  return waitFor(() => [...api.issues.values()].find(predicate), 15_000, 'the tracking issue');
}

describe('progressive migration (one gateway)', () => {
  it('moves a healthy canary 10 -> 25 -> 50 -> 100%, ticking the issue step by step and opening the pull request', async () => {
    const api = await githubApi();
    const ups = await standIns(['twin']);
    const canary = await standIn('twin-v2');
    const gw = await startGateway({ env: { ...ups.env, GITHUB_TOKEN: 'ghp_e2e' }, yaml: yaml(canary.url, api.url) });
    const dry = await call(`${gw.url}/admin/migrations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ route: 'web', dry_run: true }) });
    expect(dry.json()).toMatchObject({ applied: false, migration: { steps: [{ percent: 10 }, { percent: 25 }, { percent: 50 }, { percent: 100 }] } });
    const id = await startMigration(gw, { route: 'web', stepSeconds: 1, minRequests: 20 });
    const sent = await drive([gw.url], async () => (await migration(gw, id)).state !== 'running', 60_000);
    const m = await migration(gw, id);
    expect(m.state, JSON.stringify(m.outcome)).toBe('completed');
    expect(m.steps.map((s: any) => [s.percent, s.status])).toEqual([[10, 'passed'], [25, 'passed'], [50, 'passed'], [100, 'passed']]);
    for (const s of m.steps) expect(s.canary.requests).toBeGreaterThanOrEqual(20);
    expect(m.liveWeights).toEqual({ stable: 0, canary: 100 });
    console.log(`healthy canary: ${sent} requests; per step canary/stable requests ${m.steps.map((s: any) => `${s.percent}%: ${s.canary.requests}/${s.stable.requests} (p99 ${s.canary.p99Ms}/${s.stable.p99Ms} ms)`).join(', ')}`);
    const issue = await trackedIssue(api, (i) => (i.body.match(/- \[x\] Step/g) ?? []).length === 4);
    expect(issue.body).toContain(`<!-- unified-gateway-migration:${id} -->`);
    const tracked = await waitFor(async () => ((await migration(gw, id)).tracking.pullRequest ? migration(gw, id) : undefined), 15_000, 'tracking state');
    expect(tracked.tracking.ops.every((o: any) => o.status === 'done')).toBe(true);
    expect(api.pulls.size).toBe(1);
    // Sent in order: once the pull request's call is done, every step's comment is on the issue.
    expect(issue.comments.filter((c) => /^Step \d \(\d+%\) passed/.test(c))).toHaveLength(4);
    expect(issue.comments.at(-1)).toMatch(/^Completed: every step passed\. Pull request: https:\/\/github\.com\/village\/config\/pull\/\d+$/);
    const [pr] = [...api.pulls.values()];
    expect(pr!.body).toContain('| 100% |');
    expect(api.files.get(`gateway-migration/${id}:migrations/web.yaml`)).toContain('service: twin-canary');
    expect(api.violations.join('\n')).toBe('');
  }, 90_000); // steps of whole seconds each: most of the time is the steps themselves

  it('rolls a canary failing 5% of requests back to 0% by itself; the issue says why, with the figures', async () => {
    const api = await githubApi();
    const ups = await standIns(['twin']);
    let n = 0;
    const canary = await testServer((_req, res) => {
      n += 1;
      res.writeHead(n % 20 === 0 ? 500 : 200, { 'content-type': 'application/json' });
      res.end('{"side":"canary"}');
    });
    const gw = await startGateway({ env: { ...ups.env, GITHUB_TOKEN: 'ghp_e2e' }, yaml: yaml(canary.url, api.url) });
    const id = await startMigration(gw, { route: 'web', stepSeconds: 30, minRequests: 40 });
    await drive([gw.url], async () => (await migration(gw, id)).state !== 'running', 60_000);
    const m = await migration(gw, id);
    expect(m.state).toBe('rolled_back');
    expect(m.liveWeights).toEqual({ stable: 100, canary: 0 });
    expect(m.outcome.failures.map((f: any) => f.gate)).toContain('error_rate');
    expect(m.outcome.canary.errors).toBeGreaterThan(0);
    console.log(`failing canary: ${m.outcome.reason}; canary ${JSON.stringify(m.outcome.canary)}`);
    const issue = await trackedIssue(api, (i) => i.labels.includes('migration-rolled-back') && i.comments.some((c) => c.includes('Rolled back')));
    const why = issue.comments.find((c) => c.includes('Rolled back'))!;
    expect(why).toMatch(/canary error rate \d+\.\d+% is not under 0\.50%/);
    expect(why).toContain(`canary: ${m.outcome.canary.requests} requests, ${m.outcome.canary.errors} errors`);
    // Afterwards every request is stable's.
    const after = await Promise.all(Array.from({ length: 20 }, () => call(`${gw.url}/v1/web/x`, { anonymous: true })));
    expect(after.every((r) => r.headers['x-gateway-upstream'] === 'stable')).toBe(true);
  });
});

describe('migrations over MCP', () => {
  it('start, pause, resume and roll back with the MCP tools: audited, and gateway://migrations subscribers hear each change', async () => {
    const ups = await standIns(['twin']);
    const canary = await standIn('twin-v2');
    const gw = await startGateway({ env: ups.env, yaml: 'routes:\n' + `  - { id: web, prefix: /v1/web, service: twin, split: { canary: { urls: ["${canary.url}"] } } }\n` });
    const transport = new StreamableHTTPClientTransport(new URL(`${gw.url}/mcp`), { requestInit: { headers: { 'x-api-key': E2E_API_KEY } } });
    const client = new Client({ name: 'e2e-migrations', version: '1.0.0' });
    await client.connect(transport);
    onCleanup(() => client.close());
    const updates: string[] = [];
    client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void updates.push(n.params.uri));
    await client.subscribeResource({ uri: 'gateway://migrations' });
    const tool = async (name: string, args: Record<string, unknown>) => {
      const res = await client.callTool({ name, arguments: args });
      expect(res.isError, JSON.stringify(res.content)).toBeFalsy();
      return res.structuredContent as any;
    };
    const started = await tool('start_migration', { route: 'web', stepSeconds: 600, minRequests: 10 });
    expect(started.migration).toMatchObject({ state: 'running', current: 0, liveWeights: { stable: 90, canary: 10 } });
    const id = started.migration.id as string;
    await waitFor(() => (updates.length > 0 ? true : undefined), 5000, 'a gateway://migrations update');
    expect((await tool('pause_migration', { id })).migration.state).toBe('paused');
    expect((await tool('resume_migration', { route: 'web' })).migration.state).toBe('running');
    const rolled = await tool('rollback_migration', { id, reason: 'release manager said so' });
    expect(rolled.migration).toMatchObject({ state: 'rolled_back', liveWeights: { stable: 100, canary: 0 }, outcome: { reason: expect.stringContaining('release manager said so') } });
    expect((await tool('get_migration', { id })).migration.state).toBe('rolled_back');
    await waitFor(() => (updates.length >= 4 ? true : undefined), 5000, 'an update per change');
    expect(new Set(updates)).toEqual(new Set(['gateway://migrations']));
    for (const name of ['start_migration', 'pause_migration', 'resume_migration', 'rollback_migration']) {
      await gw.waitForLog((l) => l.msg === 'mcp tool call ended' && (l.audit as { tool?: string } | undefined)?.tool === name, 5000);
    }
  });
});

describeWithRedis('progressive migration across replicas (Redis)', () => {
  it('two replicas: one controller acts (each step shifted once); a restart in the middle resumes the same step', async () => {
    const redis = await startRedis();
    const api = await githubApi();
    const ups = await standIns(['twin']);
    const canary = await standIn('twin-v2');
    const env = { ...ups.env, REDIS_URL: redis.url, GITHUB_TOKEN: 'ghp_e2e' };
    // On 2 shared cores Redis can take longer than the default 50 ms to answer; a replica that
    // stops trusting it refuses migration calls (503) rather than answer from its own copy.
    // (And a lease of 3 x 600 ms, so a tick slowed by the load does not let it lapse every time.)
    const config = yaml(canary.url, api.url, 'state: { commandTimeoutMs: 2000 }\n', 600);
    const a = await startGateway({ env, yaml: config });
    let b = await startGateway({ env, yaml: config });
    const id = await startMigration(a, { route: 'web', stepSeconds: 2, minRequests: 30 });
    // Traffic through both replicas until step 2 (25%) runs.
    await drive([a.url, b.url], async () => (await migration(a, id)).current >= 1, 60_000);
    const middle = await migration(a, id);
    expect(middle.steps[0].status).toBe('passed');
    // Both replicas' requests are in the step's figures (each replica's histogram, summed).
    const served = (await Promise.all([a, b].map((g) => call(`${g.url}/metrics`)))).map((r) => r.text.includes('side="canary"'));
    expect(served).toEqual([true, true]);
    // Restart b (whichever holds the lease, the migration goes on where it was).
    await b.stop('SIGTERM');
    b = await startGateway({ env, yaml: config });
    const resumed = await migration(b, id);
    expect(resumed.current).toBe(middle.current);
    expect(resumed.state).toBe('running');
    expect(resumed.steps[0].status).toBe('passed');
    // The same step goes on (its weights live in the store: the restarted replica applies them at once).
    const percent = middle.steps[middle.current].percent;
    expect(['pending', 'running']).toContain(resumed.steps[middle.current].status);
    await waitFor(async () => ((await migration(b, id)).liveWeights.canary === percent ? true : undefined), 10_000, `the restarted replica at ${percent}%`);
    await drive([a.url, b.url], async () => (await migration(b, id)).state !== 'running', 90_000);
    const done = await migration(a, id);
    expect(done.state).toBe('completed');
    // One controller: every step's weight was set exactly once (the split's history, shared).
    const split = (await call(`${a.url}/admin/traffic/web`)).json();
    const moves = split.splits[0].history.filter((h: any) => h.by === `migration:${id}`).map((h: any) => h.weights.canary);
    expect(moves).toEqual([100, 50, 25, 10]);
    const leaseLog = [a, b].flatMap((g, i) => g.logs.filter((l) => String(l.msg).includes('lease')).map((l) => `${i ? 'b' : 'a'} ${l.time} ${l.msg}`));
    expect(api.issues.size, `${leaseLog.join('\n')}\n${api.requests.join('\n')}`).toBe(1);
  }, 90_000); // steps of whole seconds each: most of the time is the steps themselves
});

describe('legacy endpoints (spawned gateway)', () => {
  it('answer with Deprecation, Sunset and Link, and 410 naming the new path after the sunset', async () => {
    const ups = await standIns(['twin']);
    const gw = await startGateway({
      env: ups.env,
      yaml:
        'legacy:\n' +
        '  - { path: /status, to: /healthz, sunset: "2099-01-01T00:00:00Z", docs: "https://docs.example/legacy" }\n' +
        '  - { path: /twin-notes, to: /v1/twin/notes, sunset: "2020-01-01T00:00:00Z" }\n',
    });
    const status = await call(`${gw.url}/status`, { anonymous: true });
    expect(status.status).toBe(200);
    expect(status.headers.deprecation).toMatch(/^@\d+$/);
    expect(status.headers.sunset).toBe('Thu, 01 Jan 2099 00:00:00 GMT');
    expect(status.headers.link).toContain('<https://docs.example/legacy>; rel="deprecation"');
    const gone = await call(`${gw.url}/twin-notes`);
    expect(gone.status).toBe(410);
    expect(gone.json().error).toMatchObject({ code: 'GW_LEGACY_GONE', message: expect.stringContaining('/v1/twin/notes') });
    const usage = (await call(`${gw.url}/admin/legacy-usage`)).json();
    expect(usage.endpoints.map((e: any) => [e.path, e.gone])).toEqual([['/status', false], ['/twin-notes', true]]);
    expect(usage.callers.map((c: any) => c.endpoint).sort()).toEqual(['/status', '/twin-notes']);
  });
});
