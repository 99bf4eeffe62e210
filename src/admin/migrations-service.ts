import { z } from 'zod';
import { MigrationError, type MigrationController } from '../migration/controller.js';
import { MIGRATION_STATES, migrationRecordSchema, RecordsUnavailableError, type MigrationRecord } from '../migration/records.js';

/*
 * Migrations in the admin service layer: one implementation behind REST (/admin/migrations)
 * and the MCP tools start_migration, get_migration, list_migrations, approve_migration_step,
 * pause_migration, resume_migration, rollback_migration, abort_migration.
 */

export { MigrationError };

const routeId = z.string().min(1).max(64);
const migrationId = z.string().regex(/^mig-[a-z0-9-]{1,80}$/, 'a migration id (mig-...)');

export const startMigrationInput = z.strictObject({
  route: routeId.describe('Id of a route with a traffic split (see get_traffic_split)'),
  steps: z.array(z.number().int().min(1).max(100)).min(1).max(20).optional().describe('Percent to the canary at each step, increasing, ending at 100 (default 10, 25, 50, 100)'),
  stepSeconds: z.number().int().min(1).max(86_400).optional().describe('Minimum time of each step'),
  minRequests: z.number().int().min(0).max(10_000_000).optional().describe('Minimum canary requests of each step'),
  autoAdvance: z.boolean().optional().describe('Advance by itself when a step passes (default true); false: each step waits for approve_migration_step'),
  dry_run: z.boolean().default(false).describe('Validate and show the planned migration without starting it'),
});

/** A migration named by id, or the newest on a route. */
export const migrationRefInput = z
  .strictObject({
    id: migrationId.optional().describe('Migration id'),
    route: routeId.optional().describe('Route id: its newest migration'),
  })
  .refine((v) => (v.id === undefined) !== (v.route === undefined), 'give id or route (one of them)');

export const stopMigrationInput = z.strictObject({
  id: migrationId.optional(),
  route: routeId.optional(),
  reason: z.string().trim().min(3).max(500).describe('Why: recorded and posted on the tracking issue'),
});

export const listMigrationsInput = z.strictObject({
  state: z.enum(MIGRATION_STATES).optional().describe('Only migrations in this state'),
  route: routeId.optional(),
});

export const migrationView = migrationRecordSchema.extend({
  liveWeights: z.object({ stable: z.number(), canary: z.number() }).optional().describe('The route\'s weights now'),
});
export const migrationOutput = z.object({ migration: migrationView, applied: z.boolean().describe('False for a dry run') });
export const listMigrationsOutput = z.object({ migrations: z.array(migrationView) });

/** A store that does not answer, as the service layer's refusal (REST 503, an MCP tool error). */
async function guarded<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof RecordsUnavailableError) throw new MigrationError(err.message, 'unavailable');
    throw err;
  }
}

export class MigrationsService {
  constructor(
    private readonly controller: MigrationController,
    private readonly weights: (route: string) => { stable: number; canary: number } | undefined,
  ) {}

  #view(r: MigrationRecord): z.infer<typeof migrationView> {
    const w = this.weights(r.route);
    return { ...r, ...(w !== undefined ? { liveWeights: { stable: w.stable, canary: w.canary } } : {}) };
  }

  async start(input: z.infer<typeof startMigrationInput>, by: string): Promise<z.infer<typeof migrationOutput>> {
    const { dry_run, ...rest } = input;
    const r = await guarded(() => this.controller.startMigration({ ...rest, dryRun: dry_run }, by));
    return { migration: this.#view(r), applied: !dry_run };
  }

  async get(input: z.infer<typeof migrationRefInput>): Promise<z.infer<typeof migrationOutput>> {
    return { migration: this.#view(await guarded(() => this.controller.find(input))), applied: true };
  }

  async list(input: z.infer<typeof listMigrationsInput> = {}): Promise<z.infer<typeof listMigrationsOutput>> {
    const all = await guarded(() => this.controller.records.list());
    return { migrations: all.filter((m) => (input.state === undefined || m.state === input.state) && (input.route === undefined || m.route === input.route)).map((m) => this.#view(m)) };
  }

  async change(action: 'approve' | 'pause' | 'resume', input: z.infer<typeof migrationRefInput>, by: string): Promise<z.infer<typeof migrationOutput>> {
    const r = await guarded(async () => {
      const { id } = await this.controller.find(input);
      return action === 'approve' ? this.controller.approve(id, by) : action === 'pause' ? this.controller.pause(id, by) : this.controller.resume(id, by);
    });
    return { migration: this.#view(r), applied: true };
  }

  async stop(how: 'rollback' | 'abort', input: z.infer<typeof stopMigrationInput>, by: string): Promise<z.infer<typeof migrationOutput>> {
    if ((input.id === undefined) === (input.route === undefined)) throw new MigrationError('give id or route (one of them)', 'invalid');
    const r = await guarded(async () => this.controller.stop((await this.controller.find(input)).id, by, how, input.reason));
    return { migration: this.#view(r), applied: true };
  }
}
