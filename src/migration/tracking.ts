import type { MigrationConfig } from '../config/index.js';
import type { MigrationRecord, TrackingOp } from './records.js';
import { PermanentTrackerError, type MigrationTracker } from './tracker.js';
import type { MigrationRecords } from './records.js';
import { issueBody, issueMarker, promotionFile, pullRequestBody } from './tracking-text.js';

/*
 * The GitHub calls of migrations, queued in each migration's record (so they survive a
 * restart and any replica that takes the lease sends them) and sent in order by the lease
 * holder, in the background: the controller only enqueues. A failed call is retried with
 * exponential backoff (1 s doubling, at most 60 s, tracking.maxAttempts attempts), a
 * permanent error (bad credentials, no such repository) is given up at once; either way the
 * call's state shows in get_migration. Calls after a failed `open_issue` wait for it.
 */

const MAX_BACKOFF_MS = 60_000;
const CALL_TIMEOUT_MS = 30_000;

/** Add a call to a record's queue (nothing when the migration is not tracked). */
export function enqueue(r: MigrationRecord, kind: TrackingOp['kind'], text?: string): void {
  const t = r.tracking;
  if (t === undefined) return;
  // One pending issue sync is enough: it writes the record as it is when sent.
  if (kind === 'sync_issue' && t.ops.some((o) => o.kind === 'sync_issue' && o.status === 'pending')) return;
  t.ops.push({ id: t.nextOpId, kind, ...(text !== undefined ? { text } : {}), status: 'pending', attempts: 0 });
  t.nextOpId += 1;
  // Bounded: the oldest finished calls go first.
  while (t.ops.length > 200) {
    const done = t.ops.findIndex((o) => o.status !== 'pending');
    t.ops.splice(done === -1 ? 0 : done, 1);
  }
}

/** How the queue reads and changes records (the controller's update: one writer path). */
export interface RecordUpdater {
  readonly records: Pick<MigrationRecords, 'list' | 'get'>;
  update(id: string, by: string, mutate: (r: MigrationRecord) => MigrationRecord | undefined): Promise<MigrationRecord>;
}

export class TrackingQueue {
  #running: Promise<void> | undefined;
  #closed = false;

  constructor(
    private readonly tracker: MigrationTracker,
    private readonly migration: Pick<MigrationConfig, 'tracking' | 'gates'>,
    private readonly controller: RecordUpdater,
    private readonly log: { warn(obj: object, msg: string): void },
    private readonly now: () => number,
    /** Whether this replica still holds the controller lease: calls go out only while it does. */
    private readonly holds: () => boolean = () => true,
  ) {}

  private get config(): MigrationConfig['tracking'] {
    return this.migration.tracking;
  }

  close(): void {
    this.#closed = true;
  }

  /** Send what is due (one run at a time). */
  process(): Promise<void> {
    this.#running ??= this.#process().finally(() => (this.#running = undefined));
    return this.#running;
  }

  async #process(): Promise<void> {
    for (const record of await this.controller.records.list()) {
      if (this.#closed) return;
      // In order: each migration's first pending call, then the next.
      for (;;) {
        // A replica that lost the lease stops at once: two senders could open two issues.
        if (this.#closed || !this.holds()) return;
        const fresh = await this.controller.records.get(record.id);
        const op = fresh?.tracking?.ops.find((o) => o.status === 'pending');
        if (fresh === undefined || op === undefined) break;
        if (op.nextAt !== undefined && Date.parse(op.nextAt) > this.now()) break;
        const sent = await this.#send(fresh, op);
        if (!sent) break;
      }
    }
  }

  /** One call; true when it is done (or given up) and the next may go. */
  async #send(r: MigrationRecord, op: TrackingOp): Promise<boolean> {
    let result: { issue?: { number: number; url: string }; pullRequest?: { number: number; url: string } } = {};
    let error: unknown;
    try {
      result = await withTimeout(this.#call(r, op), CALL_TIMEOUT_MS);
    } catch (err) {
      error = err;
    }
    const permanent = error instanceof PermanentTrackerError;
    const attempts = op.attempts + 1;
    const givenUp = error !== undefined && (permanent || attempts >= this.config.maxAttempts);
    if (error !== undefined) this.log.warn({ migration: r.id, op: op.kind, attempts, err: (error as Error).message }, givenUp ? 'migration tracking: call given up' : 'migration tracking: call failed; retried');
    await this.controller.update(r.id, 'tracker', (m) => {
      const t = m.tracking;
      const o = t?.ops.find((x) => x.id === op.id);
      if (t === undefined || o === undefined) return undefined;
      o.attempts = attempts;
      if (error === undefined) {
        o.status = 'done';
        delete o.nextAt;
        delete o.lastError;
        if (result.issue !== undefined) t.issue = result.issue;
        if (result.pullRequest !== undefined) t.pullRequest = result.pullRequest;
      } else {
        o.lastError = String((error as Error).message ?? error).slice(0, 500);
        if (givenUp) o.status = 'failed';
        else o.nextAt = new Date(this.now() + Math.min(MAX_BACKOFF_MS, 1000 * 2 ** (attempts - 1))).toISOString();
      }
      return m;
    });
    // A failed issue leaves the calls that need it waiting; others go on.
    return error === undefined || (givenUp && op.kind !== 'open_issue');
  }

  async #call(r: MigrationRecord, op: TrackingOp): Promise<{ issue?: { number: number; url: string }; pullRequest?: { number: number; url: string } }> {
    const gates = this.migration.gates;
    if (op.kind === 'open_issue') {
      const issue = await this.tracker.ensureIssue({ marker: issueMarker(r.id), title: `Migration of ${r.route}: ${r.steps.map((s) => `${s.percent}%`).join(' → ')}`, body: issueBody(r, gates), labels: ['gateway-migration'] });
      return { issue };
    }
    const issue = r.tracking?.issue;
    if (issue === undefined) throw new Error('the tracking issue is not open yet');
    switch (op.kind) {
      case 'sync_issue':
        await this.tracker.updateIssueBody(issue.number, issueBody(r, gates));
        return {};
      case 'comment':
        await this.tracker.comment(issue.number, op.text ?? '');
        return {};
      case 'label':
        await this.tracker.addLabels(issue.number, [op.text ?? this.config.rollbackLabel]);
        return {};
      case 'pull_request': {
        const pullRequest = await this.tracker.openPullRequest({
          branch: `gateway-migration/${r.id}`,
          title: `Make the canary of ${r.route} stable (migration ${r.id})`,
          body: `${pullRequestBody(r)}\n\nCloses #${issue.number}`,
          path: `${this.config.configPath.replace(/[^/]*$/, '')}migrations/${r.route}.yaml`,
          content: promotionFile(r),
          message: `migration ${r.id}: the canary of ${r.route} becomes stable`,
        });
        await this.tracker.comment(issue.number, `Completed: every step passed. Pull request: ${pullRequest.url}`);
        return { pullRequest };
      }
    }
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    timer.unref();
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
