import picomatch from 'picomatch';
import type { Principal } from '../../src/auth/principal.js';
import { grants, type Scope } from '../../src/auth/scopes.js';

/*
 * Per-tool policy of a federated server (mcp.servers.<name>.tools / .scopes), compiled once
 * per catalogue. Globs (picomatch) match the upstream tool name (before the prefix), so a
 * policy stays true when the prefix changes.
 *
 * - allow / deny: a tool is offered when it matches an allow glob (no allow list: every tool)
 *   and no deny glob. A tool left out is neither listed nor callable.
 * - scope: the first `scopes` glob (in the order written) that matches the tool; without one,
 *   `read` for a tool that declares `readOnlyHint: true`, `write` otherwise (annotations are
 *   hints from the upstream, so the default errs on the side of `write`).
 * - who may call: a principal whose scopes grant the tool's scope (`admin` includes `write`,
 *   which includes `read`). Without a principal (MCP_REQUIRE_AUTH=false, refused in
 *   production), `read` and `write` tools are callable and `admin` ones are not, as the
 *   gateway's own admin tools. Tools a caller may not call are not listed to it.
 */

export interface ToolPolicyConfig {
  /** Globs of upstream tool names to offer (absent or empty: all). */
  readonly allow?: readonly string[] | undefined;
  /** Globs of upstream tool names never offered (wins over allow). */
  readonly deny?: readonly string[] | undefined;
  /** Tool glob -> scope needed to call it (first match in order). */
  readonly scopes?: Readonly<Record<string, Scope>> | undefined;
}

/** What the policy reads of an upstream tool. */
export interface ToolFacts {
  readonly name: string;
  readonly annotations?: { readonly readOnlyHint?: boolean | undefined } | undefined;
}

const GLOB_OPTIONS = { dot: true, nocase: false } as const;

export class ToolPolicy {
  readonly #allow: ((name: string) => boolean) | null;
  readonly #deny: ((name: string) => boolean) | null;
  readonly #scopes: ReadonlyArray<{ readonly match: (name: string) => boolean; readonly scope: Scope }>;

  constructor(config: ToolPolicyConfig = {}) {
    this.#allow = config.allow !== undefined && config.allow.length > 0 ? picomatch([...config.allow], GLOB_OPTIONS) : null;
    this.#deny = config.deny !== undefined && config.deny.length > 0 ? picomatch([...config.deny], GLOB_OPTIONS) : null;
    this.#scopes = Object.entries(config.scopes ?? {}).map(([glob, scope]) => ({ match: picomatch(glob, GLOB_OPTIONS), scope }));
  }

  /** Whether the tool is offered at all (allow / deny). */
  offered(name: string): boolean {
    if (this.#deny?.(name) === true) return false;
    return this.#allow === null || this.#allow(name);
  }

  /** The scope a caller needs for the tool. */
  scopeOf(tool: ToolFacts): Scope {
    for (const { match, scope } of this.#scopes) if (match(tool.name)) return scope;
    return tool.annotations?.readOnlyHint === true ? 'read' : 'write';
  }

  /** Whether `principal` may call (and see) the tool. */
  mayCall(principal: Pick<Principal, 'scopes'> | null, tool: ToolFacts): boolean {
    if (!this.offered(tool.name)) return false;
    const scope = this.scopeOf(tool);
    if (principal === null) return scope !== 'admin';
    return grants(principal.scopes, scope);
  }
}
