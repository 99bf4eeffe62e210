import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { RouteAuthPolicy } from '../config/index.js';
import { GatewayError } from '../errors.js';
import { ModelNotAvailableError, type RoutingModelManager, type RoutingStatus } from '../routing/model/manager.js';
import { ModelFileError } from '../routing/model/model.js';
import '../auth/policy.js';

/*
 * The admin service for the routing models (one implementation behind the REST endpoints
 * and, later, the MCP tools): which model is active, the shadow candidate and how often it
 * agrees, and runtime swaps that every replica follows (state store broadcast).
 */

const modelRef = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'a model id (as in routing-models/models/<id>.json), "shadow" or "pointer"');

export const activateModelInput = z.strictObject({
  /** A model id, "shadow" (promote the shadow model) or "pointer" (what routing-models/active.json names). */
  model: modelRef,
  /** Also rewrite active.json so a restart keeps the choice (default true). */
  persist: z.boolean().default(true),
});
export const shadowModelInput = z.strictObject({ model: modelRef });

function adminError(err: unknown): never {
  if (err instanceof ModelNotAvailableError) throw new GatewayError('GW_ADMIN_MODEL_NOT_FOUND', err.message);
  if (err instanceof ModelFileError) throw new GatewayError('GW_ADMIN_MODEL_INVALID', err.message);
  throw err;
}

export class RoutingModelsService {
  constructor(
    private readonly manager: RoutingModelManager,
    /** Called once a model is active (the GitHub promotion pull request, src/migration/model-promotion.ts). */
    private readonly onActivated?: (model: string) => void,
  ) {}

  status(): RoutingStatus {
    return this.manager.status();
  }

  async activate(input: z.input<typeof activateModelInput>): Promise<RoutingStatus & { persisted: boolean | string }> {
    const { model, persist } = activateModelInput.parse(input);
    const ref = model === 'shadow' || model === 'pointer' ? model : { id: model };
    try {
      const { status, persisted } = await this.manager.activate(ref, { persist });
      this.onActivated?.(status.active.id);
      return { ...status, persisted };
    } catch (err) {
      return adminError(err);
    }
  }

  async setShadow(input: z.input<typeof shadowModelInput>): Promise<RoutingStatus> {
    const { model } = shadowModelInput.parse(input);
    try {
      return await this.manager.setShadow(model);
    } catch (err) {
      return adminError(err);
    }
  }

  async clearShadow(): Promise<RoutingStatus> {
    return this.manager.setShadow(null);
  }
}

export interface RoutingAdminRoutesOptions {
  readonly service: RoutingModelsService;
  readonly authPolicy: RouteAuthPolicy;
}

function invalid(issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string }>): GatewayError {
  const first = issues[0];
  const where = first && first.path.length > 0 ? `${first.path.map(String).join('.')}: ` : '';
  return new GatewayError('GW_REQUEST_INVALID', `${where}${first?.message ?? 'invalid input'}`);
}

/**
 *   GET    /admin/routing/model            active and shadow models, shadow agreement, settings
 *   POST   /admin/routing/model/activate   {model: id | "shadow" | "pointer", persist?}: swap at runtime, every replica
 *   PUT    /admin/routing/model/shadow     {model: id}: run a candidate beside the active model
 *   DELETE /admin/routing/model/shadow     stop shadowing
 */
export async function routingAdminRoutes(app: FastifyInstance, opts: RoutingAdminRoutesOptions): Promise<void> {
  const { service, authPolicy } = opts;
  const config = { authPolicy };

  app.get('/admin/routing/model', { config }, async (_request, reply) => reply.header('cache-control', 'no-store').send(service.status()));

  app.post('/admin/routing/model/activate', { config, bodyLimit: 4096 }, async (request, reply) => {
    const parsed = activateModelInput.safeParse(request.body ?? {});
    if (!parsed.success) throw invalid(parsed.error.issues);
    return reply.header('cache-control', 'no-store').send(await service.activate(parsed.data));
  });

  app.put('/admin/routing/model/shadow', { config, bodyLimit: 4096 }, async (request, reply) => {
    const parsed = shadowModelInput.safeParse(request.body ?? {});
    if (!parsed.success) throw invalid(parsed.error.issues);
    return reply.header('cache-control', 'no-store').send(await service.setShadow(parsed.data));
  });

  app.delete('/admin/routing/model/shadow', { config }, async (_request, reply) => reply.header('cache-control', 'no-store').send(await service.clearShadow()));
}
