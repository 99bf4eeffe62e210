import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { RouteAuthPolicy } from '../config/index.js';
import { GatewayError } from '../errors.js';
import '../auth/policy.js';
import '../auth/principal.js';
import { listMigrationsInput, MigrationError, migrationRefInput, startMigrationInput, stopMigrationInput, type MigrationsService } from './migrations-service.js';

/*
 * REST face of the migrations (src/admin/migrations-service.ts; the MCP tools call the same):
 *
 *   GET  /admin/migrations[?state=&route=]     list
 *   POST /admin/migrations                     {route, steps, stepSeconds, minRequests, autoAdvance, dry_run}: start
 *   GET  /admin/migrations/:id                 one, with the figures of each step and the tracking calls
 *   POST /admin/migrations/:id/approve         start the step waiting for approval
 *   POST /admin/migrations/:id/pause | resume
 *   POST /admin/migrations/:id/rollback | abort  {reason}
 */

export interface MigrationRoutesOptions {
  readonly migrations: MigrationsService;
  readonly authPolicy: RouteAuthPolicy;
}

function invalid(issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string }>): GatewayError {
  const first = issues[0];
  const where = first && first.path.length > 0 ? `${first.path.map(String).join('.')}: ` : '';
  return new GatewayError('GW_REQUEST_INVALID', `${where}${first?.message ?? 'invalid input'}`);
}

const CODES = { 'not-found': 'GW_ADMIN_MIGRATION_NOT_FOUND', conflict: 'GW_ADMIN_MIGRATION_CONFLICT', invalid: 'GW_REQUEST_INVALID', unavailable: 'GW_ADMIN_MIGRATION_UNAVAILABLE' } as const;

async function run<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof MigrationError) throw new GatewayError(CODES[err.kind], err.message, err.kind === 'unavailable' ? { headers: { 'retry-after': '1' } } : {});
    throw err;
  }
}

const bodyOf = (request: FastifyRequest) => (request.body !== null && typeof request.body === 'object' ? (request.body as Record<string, unknown>) : {});

export async function migrationRoutes(app: FastifyInstance, opts: MigrationRoutesOptions): Promise<void> {
  const { migrations } = opts;
  const config = { authPolicy: opts.authPolicy };
  const who = (request: FastifyRequest) => request.principal?.subject ?? 'anonymous';
  const audit = (request: FastifyRequest, action: string, result: { migration: { id: string; route: string; state: string } }) =>
    request.log.info({ audit: { action, principal: who(request), migration: result.migration.id, route: result.migration.route, state: result.migration.state } }, 'admin call');

  app.get<{ Querystring: Record<string, string> }>('/admin/migrations', { config }, async (request, reply) => {
    const parsed = listMigrationsInput.safeParse({ ...request.query });
    if (!parsed.success) throw invalid(parsed.error.issues);
    return reply.header('cache-control', 'no-store').send(await migrations.list(parsed.data));
  });
  app.post('/admin/migrations', { config, bodyLimit: 8192 }, async (request, reply) => {
    const parsed = startMigrationInput.safeParse(bodyOf(request));
    if (!parsed.success) throw invalid(parsed.error.issues);
    const result = await run(() => migrations.start(parsed.data, who(request)));
    audit(request, parsed.data.dry_run ? 'start_migration (dry run)' : 'start_migration', result);
    return reply.code(result.applied ? 201 : 200).header('cache-control', 'no-store').send(result);
  });
  app.get<{ Params: { id: string } }>('/admin/migrations/:id', { config }, async (request, reply) => {
    const parsed = migrationRefInput.safeParse({ id: request.params.id });
    if (!parsed.success) throw invalid(parsed.error.issues);
    return reply.header('cache-control', 'no-store').send(await run(() => migrations.get(parsed.data)));
  });
  for (const action of ['approve', 'pause', 'resume'] as const) {
    app.post<{ Params: { id: string } }>(`/admin/migrations/:id/${action}`, { config, bodyLimit: 1024 }, async (request, reply) => {
      const parsed = migrationRefInput.safeParse({ id: request.params.id });
      if (!parsed.success) throw invalid(parsed.error.issues);
      const result = await run(() => migrations.change(action, parsed.data, who(request)));
      audit(request, `${action}_migration`, result);
      return reply.header('cache-control', 'no-store').send(result);
    });
  }
  for (const how of ['rollback', 'abort'] as const) {
    app.post<{ Params: { id: string } }>(`/admin/migrations/:id/${how}`, { config, bodyLimit: 4096 }, async (request, reply) => {
      const parsed = stopMigrationInput.safeParse({ ...bodyOf(request), id: request.params.id });
      if (!parsed.success) throw invalid(parsed.error.issues);
      const result = await run(() => migrations.stop(how, parsed.data, who(request)));
      audit(request, `${how}_migration`, result);
      return reply.header('cache-control', 'no-store').send(result);
    });
  }
}
