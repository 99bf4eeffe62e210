import { afterEach, describe, expect, it } from 'vitest';
import type { MigrationConfig, RouteConfig } from '../../src/config/index.js';
import { loadConfig } from '../../src/config/index.js';
import { MigrationController } from '../../src/migration/controller.js';
import { SideStats } from '../../src/migration/side-stats.js';
import type { MigrationTracker } from '../../src/migration/tracker.js';
import { TrafficSplits } from '../../src/routing/traffic-split.js';
import { MemoryStore } from '../../src/state/index.js';

const route = {
  id: 'twin',
  prefix: '/v1/twin',
  service: 'twin',
  split: { canaryService: 'twin-canary', weights: { stable: 100, canary: 0 }, sticky: 'cookie' },
} as unknown as RouteConfig;
const quiet = { warn() {}, info() {} };

function migrationConfig(): MigrationConfig {
  const r = loadConfig({ GATEWAY_PORT: '0' }, {});
  if (!r.ok) throw new Error(r.problems.join('\n'));
  return { ...r.config.migration, evaluationIntervalMs: 1000 };
}

/** A tracker that records its calls (the HTTP backends have their own tests). */
function recordingTracker(fail = 0) {
  const calls: string[] = [];
  const files: string[] = [];
  let failures = fail;
  const issues = new Map<string, number>();
  const tracker: MigrationTracker = {
    backend: 'octokit',
    async ensureIssue({ marker, body }) {
      if (failures-- > 0) throw new Error('GitHub is down');
      calls.push(`issue ${body.includes(marker)}`);
      if (!issues.has(marker)) issues.set(marker, issues.size + 1);
      return { number: issues.get(marker)!, url: `https://github.test/issues/${issues.get(marker)}` };
    },
    async updateIssueBody(n, body) {
      calls.push(`body ${n} ${(body.match(/- \[x\] Step/g) ?? []).length}`);
    },
    async comment(n, body) {
      calls.push(`comment ${n} ${body.split('\n')[0]}`);
    },
    async addLabels(n, labels) {
      calls.push(`label ${n} ${labels.join(',')}`);
    },
    async openPullRequest({ branch, content, body }) {
      calls.push(`pr ${branch}`);
      files.push(content, body);
      return { number: 7, url: 'https://github.test/pull/7' };
    },
  };
  return { tracker, calls, files };
}

const open: Array<{ close(): unknown }> = [];
afterEach(async () => {
  for (const c of open.splice(0)) await c.close();
});

const LEGACY = [
  { path: '/notes', to: '/v1/twin/notes', deprecated: '2026-01-01T00:00:00.000Z', sunset: '2027-06-30T00:00:00.000Z', docs: 'https://docs.example/m' },
  { path: '/query', to: '/v1/query', deprecated: '2026-01-01T00:00:00.000Z', sunset: '2027-06-30T00:00:00.000Z', docs: 'https://docs.example/m' },
];

async function setup(options: { store?: MemoryStore; tracker?: MigrationTracker; replicaId?: string; clock?: { t: number } } = {}) {
  const store = options.store ?? new MemoryStore({ sweepIntervalMs: 0 });
  const clock = options.clock ?? { t: Date.parse('2026-12-01T00:00:00Z') };
  const splits = new TrafficSplits([route], store, quiet);
  await splits.start();
  const stats = new SideStats(store, quiet, { replicaId: options.replicaId ?? 'r1' });
  const controller = new MigrationController({
    config: migrationConfig(),
    splits,
    stats,
    store,
    log: quiet,
    now: () => clock.t,
    replicaId: options.replicaId ?? 'r1',
    legacy: LEGACY,
    ...(options.tracker ? { tracker: options.tracker } : {}),
  });
  open.push(splits, controller);
  /** `n` requests per side at the current weights: canary `errorEvery`-th failed, latencies given. */
  const traffic = (n: number, canary: { errorEvery?: number; ms?: number } = {}, stableMs = 20) => {
    const version = splits.state('twin')!.version;
    for (let i = 0; i < n; i++) {
      const side = splits.side('twin', `p:${i}`);
      if (side === 'canary') stats.observe('twin', version, 'canary', canary.errorEvery !== undefined && i % canary.errorEvery === 0, canary.ms ?? 20);
      else stats.observe('twin', version, 'stable', false, stableMs);
    }
  };
  return { store, splits, stats, controller, clock, traffic };
}

describe('migration controller', () => {
  it('moves a healthy canary 10 -> 25 -> 50 -> 100 and completes, ticking the issue and opening the pull request', async () => {
    const { tracker, calls, files } = recordingTracker();
    const { controller, splits, clock, traffic } = await setup({ tracker });
    const started = await controller.startMigration({ route: 'twin', stepSeconds: 30, minRequests: 20 }, 'key:ops');
    expect(splits.state('twin')!.weights.canary).toBe(10);
    for (const percent of [10, 25, 50, 100]) {
      expect(splits.state('twin')!.weights.canary).toBe(percent);
      traffic(1000);
      await controller.tick(); // not yet: the step has not lasted stepSeconds
      expect((await controller.find({ id: started.id })).steps.find((s) => s.percent === percent)!.status).toBe('running');
      clock.t += 31_000;
      await controller.tick();
    }
    const done = await controller.find({ id: started.id });
    expect(done.state).toBe('completed');
    expect(done.steps.map((s) => s.status)).toEqual(['passed', 'passed', 'passed', 'passed']);
    expect(done.steps[0]!.canary!.requests).toBeGreaterThan(50);
    expect(done.steps[0]!.stable!.p99Ms).toBeGreaterThan(0);
    expect(splits.state('twin')!.weights.canary).toBe(100);
    // The tracking calls go in the background: let them finish.
    for (let i = 0; i < 20 && !calls.some((c) => c.startsWith('pr ')); i++) await controller.tick();
    await controller.trackingSettled();
    expect(calls[0]).toBe('issue true');
    expect(calls).toContain('body 1 4');
    expect(calls.filter((c) => c.startsWith('comment 1 Step')).length).toBe(4);
    expect(calls).toContain(`pr gateway-migration/${started.id}`);
    // The pull request makes the canary the route's service and retires the legacy endpoint served through it.
    expect(files[0]).toContain('service: twin-canary');
    expect(files[0]).toContain('legacy:\n  - { path: /query, to: /v1/query,');
    expect(files[0]).not.toContain('path: /notes');
    expect(files[1]).toContain('removed from `legacy:`: /notes');
    const tracked = await controller.find({ id: started.id });
    expect(tracked.tracking!.pullRequest!.url).toBe('https://github.test/pull/7');
    expect(tracked.tracking!.ops.every((o) => o.status === 'done')).toBe(true);
  });

  it('rolls a canary failing 5% back to 0% at the next evaluation, with the failing figures', async () => {
    const { tracker, calls } = recordingTracker();
    const { controller, splits, traffic } = await setup({ tracker });
    const started = await controller.startMigration({ route: 'twin', stepSeconds: 30, minRequests: 20 }, 'key:ops');
    traffic(2000, { errorEvery: 20 });
    await controller.tick();
    expect(splits.state('twin')!.weights.canary).toBe(0);
    const m = await controller.find({ id: started.id });
    expect(m.state).toBe('rolled_back');
    expect(m.outcome!.failures.map((f) => f.gate)).toContain('error_rate');
    expect(m.outcome!.canary!.errorRate).toBeGreaterThan(0.03);
    expect(m.outcome!.canary!.errorRate).toBeLessThan(0.08);
    expect(m.steps[0]!.status).toBe('failed');
    for (let i = 0; i < 10 && !calls.some((c) => c.startsWith('label')); i++) await controller.tick();
    expect(calls.some((c) => c.startsWith('comment 1 **Rolled back**'))).toBe(true);
    expect(calls).toContain('label 1 migration-rolled-back');
  });

  it('rolls back on latency: p99 over 200 ms', async () => {
    const { controller, splits, traffic } = await setup();
    const started = await controller.startMigration({ route: 'twin', stepSeconds: 30, minRequests: 20 }, 'key:ops');
    traffic(2000, { ms: 350 });
    await controller.tick();
    const m = await controller.find({ id: started.id });
    expect(m.state).toBe('rolled_back');
    expect(m.outcome!.failures.map((f) => f.gate).sort()).toEqual(['p99', 'p99_ratio']);
    expect(splits.state('twin')!.weights.canary).toBe(0);
  });

  it('waits for approval when autoAdvance is off; pause and resume', async () => {
    const { controller, splits, clock, traffic } = await setup();
    const { id } = await controller.startMigration({ route: 'twin', steps: [20, 100], stepSeconds: 10, minRequests: 5, autoAdvance: false }, 'key:ops');
    traffic(500);
    clock.t += 11_000;
    await controller.tick();
    let m = await controller.find({ id });
    expect(m.steps.map((s) => s.status)).toEqual(['passed', 'awaiting_approval']);
    expect(splits.state('twin')!.weights.canary).toBe(20);
    await controller.pause(id, 'key:ops');
    await expect(controller.approve(id, 'key:ops')).rejects.toThrow(/no step waiting/);
    await controller.resume(id, 'key:ops');
    m = await controller.approve(id, 'key:ops');
    expect(m.steps[1]!.status).toBe('running');
    expect(splits.state('twin')!.weights.canary).toBe(100);
    await expect(controller.startMigration({ route: 'twin' }, 'key:ops')).rejects.toThrow(/already has migration/);
  });

  it('survives a restart: a new controller on the same store resumes the same step; one lease holder at a time', async () => {
    const store = new MemoryStore({ sweepIntervalMs: 0 });
    const clock = { t: Date.parse('2026-12-01T00:00:00Z') };
    const a = await setup({ store, clock, replicaId: 'a' });
    // (Memory-store caches are per instance: the second replica follows the shifts by broadcast from the start.)
    const b = await setup({ store, clock, replicaId: 'b' });
    const { id } = await a.controller.startMigration({ route: 'twin', stepSeconds: 30, minRequests: 20 }, 'key:ops');
    a.traffic(1000);
    clock.t += 31_000;
    await a.controller.tick();
    expect((await a.controller.find({ id })).current).toBe(1);
    expect(a.controller.lease.held).toBe(true);
    // A second replica on the same store does not act while the first holds the lease.
    await b.controller.tick();
    expect(b.controller.lease.held).toBe(false);
    // "Restart": the first goes away and lets its lease go; the other takes over at the same step.
    const oldFence = a.controller.lease.fence;
    await a.controller.close();
    await b.controller.tick();
    expect(b.controller.lease.held).toBe(true);
    expect(b.controller.lease.fence).toBeGreaterThan(oldFence);
    const m = await b.controller.find({ id });
    expect(m.current).toBe(1);
    expect(m.steps[1]!.status).toBe('running');
    expect(b.splits.state('twin')!.weights.canary).toBe(25);
  });

  it('retries tracking calls with backoff and never opens a second issue', async () => {
    const { tracker, calls } = recordingTracker(2);
    const { controller, clock } = await setup({ tracker });
    const { id } = await controller.startMigration({ route: 'twin', stepSeconds: 30, minRequests: 20 }, 'key:ops');
    await controller.tick();
    await controller.trackingSettled();
    let m = await controller.find({ id });
    const op = m.tracking!.ops.find((o) => o.kind === 'open_issue')!;
    expect(op.status).toBe('pending');
    expect(op.lastError).toContain('GitHub is down');
    expect(m.steps[0]!.status).toBe('running'); // the migration went on
    for (let i = 0; i < 5; i++) {
      clock.t += 5000;
      await controller.tick();
      await controller.trackingSettled();
    }
    m = await controller.find({ id });
    expect(m.tracking!.issue!.number).toBe(1);
    expect(calls.filter((c) => c.startsWith('issue')).length).toBe(1);
  });
});
