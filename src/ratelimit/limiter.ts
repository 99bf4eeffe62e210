import type { RateLimitConfig, RateQuota, RouteConfig } from '../config/index.js';
import type { GatewayMetrics } from '../metrics/registry.js';
import type { StateStore, WindowDecision } from '../state/store.js';

/** One quota checked for a request, and what the store decided. */
export interface LimitOutcome {
  /** The policy name clients see in RateLimit-Policy: "ip", "principal" or "route:<id>". */
  readonly policy: string;
  readonly windowSeconds: number;
  readonly decision: WindowDecision;
}

function scaled(quota: RateQuota, factor: number): number {
  return factor >= 1 ? quota.requests : Math.max(1, Math.floor(quota.requests * factor));
}

/** What the after-authentication check needs to know about the request. */
export interface IdentityCheck {
  readonly client: string;
  /** The principal's subject, when authenticated. */
  readonly subject?: string;
  readonly route?: RouteConfig;
  /** < 1 tightens the quotas of a suspicious client. */
  readonly factor: number;
  /** Check the per-IP quota too, first (when the client stage left it to this check). */
  readonly withIp: boolean;
}

/**
 * The quotas: per client IP, per principal, and a route's own quota when it has one (a
 * separate budget per principal, or per IP on a public route). Every request is one call to
 * the store — one Redis round trip — whatever the number of quotas: the windows are checked
 * in order in one atomic script, each counting the request only when the ones before allowed
 * it, as separate checks in sequence would, but without a second round trip.
 */
export class RateLimiter {
  constructor(
    private readonly store: StateStore,
    private readonly config: Pick<RateLimitConfig, 'ip' | 'principal'>,
    private readonly metrics?: Pick<GatewayMetrics, 'rateLimitRequests'>,
  ) {}

  private record(scope: Scope, decision: WindowDecision): void {
    this.metrics?.rateLimitRequests.inc({ scope, result: decision.allowed ? 'allowed' : 'limited' });
  }

  /** The per-IP quota alone. */
  async checkIp(client: string, factor = 1): Promise<LimitOutcome> {
    const quota = this.config.ip;
    const decision = await this.store.hit(`ip:${client}`, scaled(quota, factor), quota.windowSeconds * 1000);
    this.record('ip', decision);
    return { policy: 'ip', windowSeconds: quota.windowSeconds, decision };
  }

  /**
   * The quotas that apply once the principal is known: the per-IP one when `withIp`, then
   * the route's own (per principal, or per IP on a public route) or else the per-principal
   * one. Returns the outcomes decided, in order: all allowed, or ending with the refusal.
   */
  async checkIdentity(check: IdentityCheck): Promise<LimitOutcome[]> {
    const planned: Array<{ scope: Scope; policy: string; key: string; quota: RateQuota }> = [];
    if (check.withIp) planned.push({ scope: 'ip', policy: 'ip', key: `ip:${check.client}`, quota: this.config.ip });
    const identity = check.subject !== undefined ? `p:${check.subject}` : `ip:${check.client}`;
    const own = check.route?.rateLimit;
    if (own !== undefined && own !== false) {
      planned.push({ scope: 'route', policy: `route:${check.route!.id}`, key: `r:${check.route!.id}:${identity}`, quota: own });
    } else if (check.subject !== undefined) {
      planned.push({ scope: 'principal', policy: 'principal', key: identity, quota: this.config.principal });
    }
    if (planned.length === 0) return [];
    const decisions = await this.store.hitAll(planned.map((p) => ({ key: p.key, limit: scaled(p.quota, check.factor), windowMs: p.quota.windowSeconds * 1000 })));
    return decisions.map((decision, i) => {
      const p = planned[i]!;
      this.record(p.scope, decision);
      return { policy: p.policy, windowSeconds: p.quota.windowSeconds, decision };
    });
  }

  /**
   * A federated MCP tool's quota (mcp.servers.<name>.rateLimit), per caller (`p:<subject>`, or
   * `ip:<client>` without a principal) and tool: one window in the same store as the others,
   * so replicas share it.
   */
  async checkTool(identity: string, server: string, tool: string, quota: RateQuota): Promise<LimitOutcome> {
    const decision = await this.store.hit(`t:${server}:${tool}:${identity}`, quota.requests, quota.windowSeconds * 1000);
    this.record('mcp_tool', decision);
    return { policy: `mcp-tool:${server}`, windowSeconds: quota.windowSeconds, decision };
  }
}

type Scope = 'ip' | 'principal' | 'route' | 'mcp_tool';

const seconds = (ms: number) => Math.max(0, Math.ceil(ms / 1000));

/** The outcome clients should hear about: the fewest hits left (then the longest wait). */
export function tightest(outcomes: readonly LimitOutcome[]): LimitOutcome | undefined {
  let best: LimitOutcome | undefined;
  for (const o of outcomes) {
    if (
      best === undefined ||
      o.decision.remaining < best.decision.remaining ||
      (o.decision.remaining === best.decision.remaining && o.decision.resetMs > best.decision.resetMs)
    ) {
      best = o;
    }
  }
  return best;
}

/**
 * Response headers for the quotas checked: the IETF draft's RateLimit-Policy (every policy)
 * and RateLimit (the tightest), as structured fields (draft-ietf-httpapi-ratelimit-headers-10),
 * and X-RateLimit-Limit/-Remaining/-Reset (seconds until reset) for older clients.
 */
export function rateLimitHeaders(outcomes: readonly LimitOutcome[]): Record<string, string> {
  const t = tightest(outcomes);
  if (t === undefined) return {};
  const reset = String(seconds(t.decision.resetMs));
  return {
    'ratelimit-policy': outcomes.map((o) => `"${o.policy}";q=${o.decision.limit};w=${o.windowSeconds}`).join(', '),
    ratelimit: `"${t.policy}";r=${t.decision.remaining};t=${reset}`,
    'x-ratelimit-limit': String(t.decision.limit),
    'x-ratelimit-remaining': String(t.decision.remaining),
    'x-ratelimit-reset': reset,
  };
}

/** Retry-After for a refused request: when the refusing window frees a slot (at least 1 s). */
export function retryAfterSeconds(outcome: LimitOutcome): number {
  return Math.max(1, seconds(outcome.decision.resetMs));
}
