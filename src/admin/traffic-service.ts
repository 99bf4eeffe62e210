import { z } from 'zod';
import type { GatewayConfig } from '../config/index.js';
import type { SplitState, TrafficSplits } from '../routing/traffic-split.js';
import { hideCredentials } from './routes-service.js';

/*
 * Traffic splits in the admin service layer: one implementation behind the REST admin API
 * (/admin/traffic) and the MCP tools get_traffic_split and shift_traffic.
 */

const weightsSchema = z.object({
  stable: z.number().int().describe('Percent of clients on the stable side'),
  canary: z.number().int().describe('Percent of clients on the canary side'),
});

export const trafficSplitSchema = z.object({
  route: z.string().describe('Route id'),
  prefix: z.string(),
  stableService: z.string(),
  canaryService: z.string(),
  canaryUrls: z.array(z.string()).describe('Where canary requests go'),
  weights: weightsSchema,
  sticky: z.enum(['cookie', 'ip']).describe('How clients without a principal keep their side (principals always stick by identity)'),
  active: z.boolean().describe('False when the canary service is disabled on this gateway (everything goes to stable)'),
  updatedBy: z.string(),
  reason: z.string(),
  updatedAt: z.string(),
  version: z.number().int(),
  history: z.array(z.object({ weights: weightsSchema, by: z.string(), reason: z.string(), at: z.string() })).describe('Latest changes, newest first'),
});
export type TrafficSplitView = z.infer<typeof trafficSplitSchema>;

export const getTrafficSplitInput = z.strictObject({
  route: z.string().min(1).max(64).optional().describe('Route id; absent: every route that has a split'),
});
export const getTrafficSplitOutput = z.object({ splits: z.array(trafficSplitSchema) });

export const shiftTrafficInput = z.strictObject({
  route: z.string().min(1).max(64).describe('Id of a route with a traffic split (see get_traffic_split)'),
  stable: z.number().int().min(0).max(100).describe('Percent to the stable side'),
  canary: z.number().int().min(0).max(100).describe('Percent to the canary side; stable + canary = 100'),
  reason: z.string().trim().min(3).max(500).describe('Why: recorded with who made the change'),
  dry_run: z.boolean().default(false).describe('Validate and show the change without applying it'),
});
export type ShiftTrafficInput = z.infer<typeof shiftTrafficInput>;

export const shiftTrafficOutput = z.object({
  route: z.string(),
  applied: z.boolean().describe('False for a dry run'),
  shared: z.boolean().describe('The change reached the shared state store (every replica applies it within a second); false: this replica only'),
  before: weightsSchema,
  after: weightsSchema,
  by: z.string(),
  reason: z.string(),
  split: trafficSplitSchema,
});
export type ShiftTrafficResult = z.infer<typeof shiftTrafficOutput>;

/** A request the admin layer refuses: the message says what to change. */
export class TrafficSplitError extends Error {
  constructor(
    message: string,
    readonly kind: 'not-found' | 'invalid',
  ) {
    super(message);
  }
}

export class TrafficService {
  constructor(
    private readonly config: Pick<GatewayConfig, 'services'>,
    private readonly splits: TrafficSplits,
  ) {}

  list(input: z.infer<typeof getTrafficSplitInput> = {}): z.infer<typeof getTrafficSplitOutput> {
    if (input.route !== undefined) return { splits: [this.view(input.route, this.stateOf(input.route))] };
    return { splits: this.splits.all().map(({ route, state }) => this.view(route.id, state)) };
  }

  async shift(input: ShiftTrafficInput, by: string): Promise<ShiftTrafficResult> {
    const current = this.stateOf(input.route);
    if (input.stable + input.canary !== 100) {
      throw new TrafficSplitError(`stable + canary must be 100 (got ${input.stable} + ${input.canary} = ${input.stable + input.canary})`, 'invalid');
    }
    const weights = { stable: input.stable, canary: input.canary };
    if (input.dry_run) {
      const preview: SplitState = { ...current, weights };
      return { route: input.route, applied: false, shared: false, before: current.weights, after: weights, by, reason: input.reason, split: this.view(input.route, preview) };
    }
    const { before, after, shared } = await this.splits.shift(input.route, weights, by, input.reason);
    return { route: input.route, applied: true, shared, before: before.weights, after: after.weights, by, reason: input.reason, split: this.view(input.route, after) };
  }

  private stateOf(routeId: string): SplitState {
    const state = this.splits.state(routeId);
    if (state === undefined) {
      const known = this.splits.all().map((s) => s.route.id);
      throw new TrafficSplitError(`route "${routeId}" has no traffic split (routes with one: ${known.join(', ') || 'none'})`, 'not-found');
    }
    return state;
  }

  private view(routeId: string, state: SplitState): TrafficSplitView {
    const entry = this.splits.all().find((s) => s.route.id === routeId)!;
    const canary = this.config.services[entry.split.canaryService];
    return {
      route: routeId,
      prefix: entry.route.prefix,
      stableService: entry.route.service,
      canaryService: entry.split.canaryService,
      canaryUrls: (canary?.urls ?? []).map(hideCredentials),
      weights: { ...state.weights },
      sticky: entry.split.sticky,
      active: canary?.enabled === true,
      updatedBy: state.updatedBy,
      reason: state.reason,
      updatedAt: state.updatedAt,
      version: state.version,
      history: state.history.map((h) => ({ ...h, weights: { ...h.weights } })),
    };
  }
}
