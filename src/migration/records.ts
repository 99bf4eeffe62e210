import { parseStored } from '../state/parse.js';
import { z } from 'zod';
import type { StateStore } from '../state/index.js';
import { isoTime } from '../state/order.js';

/*
 * A migration as the state store holds it: one JSON entry per migration in the expiring set
 * `migrations` (kept 90 days after its last change), parsed with these schemas whenever it is
 * read, so a malformed or foreign entry is skipped, never trusted. Every change bumps
 * `version` and is an atomic compare-and-set on the text read (StateStore.replaceEntry, a Lua
 * script in Redis): a change made from a stale read is refused and redone on the fresh record
 * (MigrationController.update). The controller's writes carry its lease's fencing token: a
 * record written by a newer controller is never overwritten by an older one.
 */

export const MIGRATION_STATES = ['running', 'paused', 'completed', 'rolled_back', 'aborted'] as const;
export type MigrationState = (typeof MIGRATION_STATES)[number];

export const sideFiguresSchema = z.object({
  requests: z.number().int().nonnegative(),
  errors: z.number().int().nonnegative(),
  errorRate: z.number().min(0).max(1),
  p99Ms: z.number().nonnegative(),
});

export const gateFailureSchema = z.object({
  gate: z.enum(['error_rate', 'error_ratio', 'p99', 'p99_ratio']),
  value: z.number(),
  limit: z.number(),
  message: z.string(),
});

export const stepRecordSchema = z.object({
  percent: z.number().int().min(1).max(100),
  status: z.enum(['pending', 'running', 'awaiting_approval', 'passed', 'failed', 'skipped']),
  startedAt: isoTime.optional(),
  endedAt: isoTime.optional(),
  /** The split version of this step's weights: its window of figures. */
  splitVersion: z.number().int().nonnegative().optional(),
  canary: sideFiguresSchema.optional(),
  stable: sideFiguresSchema.optional(),
  /** Which reference the relative gates used (baseline, stable, previous-stable). */
  reference: z.string().optional(),
  failures: z.array(gateFailureSchema).default([]),
});
export type StepRecord = z.infer<typeof stepRecordSchema>;

export const trackingOpSchema = z.object({
  id: z.number().int().nonnegative(),
  kind: z.enum(['open_issue', 'sync_issue', 'comment', 'label', 'pull_request']),
  /** comment: the text; label: the label; pull_request: unused. */
  text: z.string().max(65_536).optional(),
  status: z.enum(['pending', 'done', 'failed']),
  attempts: z.number().int().nonnegative(),
  nextAt: isoTime.optional(),
  lastError: z.string().max(500).optional(),
});
export type TrackingOp = z.infer<typeof trackingOpSchema>;

export const migrationRecordSchema = z.object({
  id: z.string().regex(/^mig-[a-z0-9-]{1,80}$/),
  route: z.string().min(1).max(128),
  state: z.enum(MIGRATION_STATES),
  steps: z.array(stepRecordSchema).min(1).max(20),
  /** Index of the current step. */
  current: z.number().int().nonnegative(),
  stepSeconds: z.number().int().positive(),
  minRequests: z.number().int().nonnegative(),
  autoAdvance: z.boolean(),
  stableService: z.string().max(64).optional(),
  canaryService: z.string().max(64).optional(),
  /**
   * The legacy endpoints whose new path this route serves (`removed`: the completion pull
   * request drops them from `legacy:`) and the others (`kept`).
   */
  legacy: z
    .object({
      removed: z.array(z.string().max(256)).max(64),
      kept: z.array(z.object({ path: z.string(), to: z.string(), deprecated: z.string(), sunset: z.string(), docs: z.string() })).max(64),
    })
    .optional(),
  /** The canary weight before the migration started (a rollback goes to 0). */
  startedFrom: z.number().int().min(0).max(100),
  createdBy: z.string().max(256),
  createdAt: isoTime,
  updatedBy: z.string().max(256),
  updatedAt: isoTime,
  version: z.number().int().nonnegative(),
  /** Fencing token of the controller that last wrote it (0: an admin call). */
  fence: z.number().int().nonnegative(),
  /** Why it ended rolled back or aborted, with the failing figures. */
  outcome: z
    .object({
      reason: z.string().max(2000),
      at: isoTime,
      failures: z.array(gateFailureSchema).default([]),
      canary: sideFiguresSchema.optional(),
      stable: sideFiguresSchema.optional(),
    })
    .optional(),
  /** GitHub tracking (src/migration/tracking.ts): the issue, the pull request and the queued calls. */
  tracking: z
    .object({
      backend: z.string().max(32),
      issue: z.object({ number: z.number().int().positive(), url: z.string().max(500) }).optional(),
      pullRequest: z.object({ number: z.number().int().positive(), url: z.string().max(500) }).optional(),
      nextOpId: z.number().int().nonnegative().default(0),
      ops: z.array(trackingOpSchema).max(200).default([]),
    })
    .optional(),
});
export type MigrationRecord = z.infer<typeof migrationRecordSchema>;

const SET = 'migrations';
const TTL_MS = 90 * 86_400_000;

type Store = Pick<StateStore, 'replaceEntry' | 'listEntries'> & Partial<Pick<StateStore, 'backend' | 'up'>>;

/** Redis did not answer: a replica's own copy is not the shared truth, so nothing is decided on it. */
export class RecordsUnavailableError extends Error {
  constructor() {
    super('the shared state store (Redis) does not answer; migrations cannot be read or changed until it does');
  }
}

export class MigrationRecords {
  constructor(
    private readonly store: Store,
    private readonly log: { warn(obj: object, msg: string): void },
  ) {}

  async list(): Promise<MigrationRecord[]> {
    return (await this.#entries()).map((e) => e.record);
  }

  /** Each record with the exact stored text (what a compare-and-set compares). */
  async #entries(): Promise<Array<{ record: MigrationRecord; raw: string }>> {
    const out: Array<{ record: MigrationRecord; raw: string }> = [];
    const entries = await this.store.listEntries(SET, 1000);
    if (this.store.backend === 'redis' && this.store.up === false) throw new RecordsUnavailableError();
    for (const entry of entries) {
      const record = parseStored(migrationRecordSchema, entry.value);
      if (record !== undefined && record.id === entry.id) out.push({ record, raw: entry.value });
      else this.log.warn({ id: entry.id }, 'migrations: ignored a malformed record in the state store');
    }
    return out.sort((a, b) => (a.record.createdAt < b.record.createdAt ? 1 : a.record.createdAt > b.record.createdAt ? -1 : 0));
  }

  async get(id: string): Promise<MigrationRecord | undefined> {
    return (await this.list()).find((m) => m.id === id);
  }

  /**
   * Write `next` when the stored record is still at `expectedVersion` (null: when there is
   * none) and was not written by a newer controller than `next.fence`: one atomic
   * compare-and-set on the stored text (StateStore.replaceEntry). False when someone else
   * changed it first.
   */
  async put(next: MigrationRecord, expectedVersion: number | null): Promise<boolean> {
    const stored = (await this.#entries()).find((e) => e.record.id === next.id);
    if (expectedVersion === null ? stored !== undefined : stored?.record.version !== expectedVersion) return false;
    if (stored !== undefined && next.fence !== 0 && stored.record.fence > next.fence) return false;
    const replaced = await this.store.replaceEntry(SET, next.id, stored?.raw ?? null, JSON.stringify(migrationRecordSchema.parse(next)), TTL_MS);
    if (this.store.backend === 'redis' && this.store.up === false) throw new RecordsUnavailableError();
    return replaced;
  }
}
