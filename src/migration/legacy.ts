import type { IncomingMessage } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Counter } from 'prom-client';
import { z } from 'zod';
import '../auth/principal.js';
import type { LegacyEndpoint } from '../config/index.js';
import { GatewayError } from '../errors.js';
import type { StateStore } from '../state/index.js';

/*
 * Legacy endpoints (docs/operations.md, "Legacy endpoints"): the seed's paths, mapped onto
 * their new ones inside Fastify's `rewriteUrl`, right after the canonical request target is
 * computed (src/proxy/request-target.ts). So a legacy request is routed, protected,
 * authenticated and proxied exactly as a call of the new path: one request path, no second
 * proxy. The onRequest hook, registered before every other stage, adds the deprecation
 * headers (RFC 9745 `Deprecation: @<unix seconds>`, RFC 8594 `Sunset: <HTTP-date>`,
 * `Link: <docs>; rel="deprecation"`) or, after the sunset, answers 410 GW_LEGACY_GONE naming
 * the new path. Use is counted per endpoint and caller (bounded labels) and recorded in the
 * state store (who calls what, last seen; every replica's calls).
 */

const LEGACY = Symbol('gateway.legacyEndpoint');
type WithLegacy = IncomingMessage & { [LEGACY]?: LegacyEndpoint };

/** Caller labels for anonymous calls and for everyone past the label budget. */
export const ANONYMOUS_CALLER = 'anonymous';
export const OTHER_CALLER = 'other';

const USAGE_SET = 'legacy-usage';
const USAGE_TTL_MS = 90 * 86_400_000;

export const legacyUsageEntrySchema = z.strictObject({
  endpoint: z.string().max(256),
  to: z.string().max(256),
  caller: z.string().max(256),
  calls: z.number().int().nonnegative(),
  lastSeen: z.iso.datetime(),
});
export type LegacyUsageEntry = z.infer<typeof legacyUsageEntrySchema>;

export const legacyUsageInput = z.strictObject({
  endpoint: z.string().min(1).max(256).optional().describe('One legacy path (e.g. /query); absent: all'),
});
export const legacyUsageOutput = z.object({
  endpoints: z.array(
    z.object({
      path: z.string(),
      to: z.string(),
      deprecated: z.string().describe('RFC 9745 deprecation date (ISO)'),
      sunset: z.string().describe('RFC 8594 sunset date (ISO): 410 GW_LEGACY_GONE after it'),
      gone: z.boolean().describe('The sunset has passed'),
      docs: z.string(),
    }),
  ),
  callers: z.array(legacyUsageEntrySchema).describe('Who still calls what, most recent first'),
});

export interface LegacyOptions {
  /** Milliseconds since the epoch (tests inject one to cross the sunset). */
  readonly now?: () => number;
  /** Distinct JWT subjects counted under their own metric label; the rest are `other`. */
  readonly callerLabels: number;
  /** API key names (always labelled by name: the config bounds them). */
  readonly keyNames: readonly string[];
}

export class LegacyEndpoints {
  readonly #byPath: ReadonlyMap<string, LegacyEndpoint & { readonly headers: Readonly<Record<string, string>> }>;
  readonly #now: () => number;
  readonly #keyNames: ReadonlySet<string>;
  readonly #labelled = new Set<string>();
  readonly #labelBudget: number;

  constructor(
    readonly endpoints: readonly LegacyEndpoint[],
    options: LegacyOptions,
  ) {
    this.#now = options.now ?? Date.now;
    this.#keyNames = new Set(options.keyNames);
    this.#labelBudget = options.callerLabels;
    // The header values are fixed per endpoint: worked out once here.
    this.#byPath = new Map(
      endpoints.map((e) => [
        e.path,
        {
          ...e,
          headers: {
            deprecation: `@${Math.floor(Date.parse(e.deprecated) / 1000)}`,
            sunset: new Date(e.sunset).toUTCString(),
            link: `<${e.docs}>; rel="deprecation", <${e.to}>; rel="successor-version"`,
          },
        },
      ]),
    );
  }

  /**
   * Part of Fastify's `rewriteUrl`, after the canonical target: a legacy path (exactly, the
   * query string kept) becomes its new path, and the request remembers which endpoint it came by.
   */
  rewrite(req: IncomingMessage, canonicalUrl: string): string {
    if (this.#byPath.size === 0) return canonicalUrl;
    const q = canonicalUrl.indexOf('?');
    const path = q === -1 ? canonicalUrl : canonicalUrl.slice(0, q);
    const entry = this.#byPath.get(path);
    if (entry === undefined) return canonicalUrl;
    (req as WithLegacy)[LEGACY] = entry;
    return q === -1 ? entry.to : entry.to + canonicalUrl.slice(q);
  }

  /** The legacy endpoint a request came by, if any. */
  endpointOf(request: FastifyRequest): LegacyEndpoint | undefined {
    return (request.raw as WithLegacy)[LEGACY];
  }

  /** The headers of a legacy answer, or the 410 after its sunset. */
  answer(request: FastifyRequest, reply: FastifyReply): void {
    const entry = this.endpointOf(request);
    if (entry === undefined) return;
    const known = this.#byPath.get(entry.path)!;
    reply.headers(known.headers);
    if (this.#now() >= Date.parse(entry.sunset)) {
      throw new GatewayError('GW_LEGACY_GONE', `${entry.path} was retired on ${known.headers.sunset}: call ${entry.to} instead`);
    }
  }

  /** The bounded metric label of a caller. */
  callerLabel(request: FastifyRequest): string {
    const p = request.principal;
    if (p == null) return ANONYMOUS_CALLER;
    if (p.keyName !== undefined && this.#keyNames.has(p.keyName)) return p.subject;
    if (this.#labelled.has(p.subject)) return p.subject;
    if (this.#labelled.size < this.#labelBudget) {
      this.#labelled.add(p.subject);
      return p.subject;
    }
    return OTHER_CALLER;
  }

  /** The caller as the usage list names it (never bounded to `other`: the list is bounded in size instead). */
  static callerOf(request: FastifyRequest): string {
    return request.principal?.subject ?? ANONYMOUS_CALLER;
  }

  isGone(entry: LegacyEndpoint): boolean {
    return this.#now() >= Date.parse(entry.sunset);
  }

  nowIso(): string {
    return new Date(this.#now()).toISOString();
  }
}

/** Who calls which legacy endpoint, shared by the replicas through the state store. */
export class LegacyUsage {
  constructor(
    private readonly legacy: LegacyEndpoints,
    private readonly store: Pick<StateStore, 'increment' | 'putEntry' | 'listEntries'>,
    private readonly log: { warn(obj: object, msg: string): void },
  ) {}

  /** Record one call (in the background: never awaited by the request). */
  async record(entry: LegacyEndpoint, caller: string): Promise<void> {
    const id = `${entry.path}\u0000${caller}`;
    try {
      const calls = await this.store.increment(`legacy:${id}`, USAGE_TTL_MS);
      const value: LegacyUsageEntry = { endpoint: entry.path, to: entry.to, caller, calls, lastSeen: this.legacy.nowIso() };
      await this.store.putEntry(USAGE_SET, id, JSON.stringify(value), USAGE_TTL_MS);
    } catch (err) {
      this.log.warn({ endpoint: entry.path, err: (err as Error).message }, 'legacy usage: recording failed');
    }
  }

  async list(input: z.infer<typeof legacyUsageInput> = {}): Promise<z.infer<typeof legacyUsageOutput>> {
    const callers: LegacyUsageEntry[] = [];
    for (const e of await this.store.listEntries(USAGE_SET)) {
      let raw: unknown;
      try {
        raw = JSON.parse(e.value);
      } catch {
        continue;
      }
      const parsed = legacyUsageEntrySchema.safeParse(raw);
      if (parsed.success && (input.endpoint === undefined || parsed.data.endpoint === input.endpoint)) callers.push(parsed.data);
    }
    callers.sort((a, b) => (a.lastSeen < b.lastSeen ? 1 : a.lastSeen > b.lastSeen ? -1 : 0));
    const endpoints = this.legacy.endpoints
      .filter((e) => input.endpoint === undefined || e.path === input.endpoint)
      .map((e) => ({ path: e.path, to: e.to, deprecated: e.deprecated, sunset: e.sunset, gone: this.legacy.isGone(e), docs: e.docs }));
    return { endpoints, callers };
  }
}

export interface LegacyPluginOptions {
  readonly legacy: LegacyEndpoints;
  readonly usage: LegacyUsage;
  readonly counter: Counter<'endpoint' | 'caller'>;
}

/** The hooks of legacy requests: headers or 410 first of all stages; counted once answered (the principal is known then). */
async function legacyPlugin(app: FastifyInstance, opts: LegacyPluginOptions): Promise<void> {
  const { legacy, usage, counter } = opts;
  // Callback hooks: every request passes here and the work is synchronous (no promise per request).
  app.addHook('onRequest', (request, reply, done) => {
    legacy.answer(request, reply);
    done();
  });
  app.addHook('onResponse', (request, _reply, done) => {
    const entry = legacy.endpointOf(request);
    if (entry !== undefined) {
      counter.inc({ endpoint: entry.path, caller: legacy.callerLabel(request) });
      void usage.record(entry, LegacyEndpoints.callerOf(request));
    }
    done();
  });
}

export default fp(legacyPlugin, { name: 'gateway-legacy-endpoints', fastify: '5.x' });
