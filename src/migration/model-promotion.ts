import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import type { MigrationConfig } from '../config/index.js';
import { cardPathFor, modelPathForId } from '../routing/model/files.js';
import type { StateStore } from '../state/index.js';
import { isoTime } from '../state/order.js';
import { PermanentTrackerError, type MigrationTracker } from './tracker.js';

/*
 * A routing-model promotion tracked in GitHub (docs/routing-model.md): when a model becomes
 * the active one through the admin API or MCP, a pull request against the configuration
 * repository adds its model card (routing-models/models/<id>.md), the card in the
 * description. Like the migrations' calls it never blocks the promotion: the job is kept in the
 * state store (set `model-promotions`, zod-parsed), sent in the background and retried with
 * exponential backoff; the pull request of a branch is found again on a retry, never doubled.
 */

const SET = 'model-promotions';
const TTL_MS = 30 * 86_400_000;

export const promotionJobSchema = z.strictObject({
  model: z.string().min(1).max(64),
  by: z.string().max(256),
  at: isoTime,
  status: z.enum(['pending', 'done', 'failed']),
  attempts: z.number().int().nonnegative(),
  nextAt: isoTime.optional(),
  lastError: z.string().max(500).optional(),
  pullRequest: z.object({ number: z.number().int().positive(), url: z.string().max(500) }).optional(),
});
export type PromotionJob = z.infer<typeof promotionJobSchema>;

export class ModelPromotionTracking {
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;

  constructor(
    private readonly tracker: MigrationTracker,
    private readonly tracking: MigrationConfig['tracking'],
    private readonly store: Pick<StateStore, 'putEntry' | 'listEntries'>,
    private readonly modelsDir: string,
    private readonly log: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void },
    private readonly now: () => number = Date.now,
  ) {}

  start(intervalMs = 5000): void {
    this.#timer = setInterval(() => void this.process(), intervalMs);
    this.#timer.unref();
  }

  close(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
  }

  /** Queue the pull request of a promotion (called once the model is active). */
  async promoted(model: string, by: string): Promise<void> {
    const job: PromotionJob = { model, by, at: new Date(this.now()).toISOString(), status: 'pending', attempts: 0 };
    await this.store.putEntry(SET, model, JSON.stringify(job), TTL_MS);
    void this.process();
  }

  async jobs(): Promise<PromotionJob[]> {
    const out: PromotionJob[] = [];
    for (const e of await this.store.listEntries(SET)) {
      let raw: unknown;
      try {
        raw = JSON.parse(e.value);
      } catch {
        continue;
      }
      const parsed = promotionJobSchema.safeParse(raw);
      if (parsed.success) out.push(parsed.data);
    }
    return out;
  }

  process(): Promise<void> {
    this.#running ??= this.#process().finally(() => (this.#running = undefined));
    return this.#running;
  }

  async #process(): Promise<void> {
    for (const job of await this.jobs()) {
      if (job.status !== 'pending' || (job.nextAt !== undefined && Date.parse(job.nextAt) > this.now())) continue;
      const attempts = job.attempts + 1;
      let next: PromotionJob;
      try {
        const cardPath = cardPathFor(modelPathForId(this.modelsDir, job.model));
        const card = await readFile(cardPath, 'utf8').catch(() => `# Routing model ${job.model}\n\n(no model card was found beside the model file)\n`);
        const pullRequest = await this.tracker.openPullRequest({
          branch: `routing-model/${job.model}`,
          title: `Promote routing model ${job.model}`,
          body: `Routing model \`${job.model}\` was made active by ${job.by} at ${job.at}. Its model card:\n\n${card}`,
          path: `routing-models/models/${job.model}.md`,
          content: card,
          message: `routing model ${job.model}: promoted (model card)`,
        });
        next = { ...job, attempts, status: 'done', pullRequest };
        this.log.info({ model: job.model, pullRequest: pullRequest.url }, 'routing model promotion: pull request opened');
      } catch (err) {
        const message = String((err as Error).message ?? err).slice(0, 500);
        const givenUp = err instanceof PermanentTrackerError || attempts >= this.tracking.maxAttempts;
        next = { ...job, attempts, lastError: message, status: givenUp ? 'failed' : 'pending', ...(givenUp ? {} : { nextAt: new Date(this.now() + Math.min(60_000, 1000 * 2 ** (attempts - 1))).toISOString() }) };
        this.log.warn({ model: job.model, attempts, err: message }, givenUp ? 'routing model promotion: pull request given up' : 'routing model promotion: pull request failed; retried');
      }
      await this.store.putEntry(SET, job.model, JSON.stringify(next), TTL_MS);
    }
  }
}
