import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, resolve as resolvePath } from 'node:path';
import { z } from 'zod';
import { comparing, type Checker } from './check.js';
import { booleanFromEnv, httpUrl, origin, scopeSchema } from './fields.js';
import { rateQuotaSchema } from './ratelimit.js';

/* The gateway as an MCP server (mcp/server). */

export const mcpEnv = z.object({
  /** false: /mcp without credentials, for local development and the conformance suite; refused in production. */
  MCP_REQUIRE_AUTH: booleanFromEnv.default(true),
});
type McpEnv = z.output<typeof mcpEnv>;

// --- the gateway as an MCP client: upstream MCP servers (mcp/clients), issue 14 ---

/** How each preset starts (resolvePreset below); network presets stay off until `enabled: true`. */
export const MCP_PRESETS = ['memory', 'sequential-thinking', 'github', 'context7', 'huggingface'] as const;
export type McpPreset = (typeof MCP_PRESETS)[number];
const NETWORK_PRESETS: ReadonlySet<McpPreset> = new Set(['github', 'context7', 'huggingface']);

/** Upstream protocol revisions the client negotiates (`auto`: 2026-07-28 when the server offers it, else 2025-11-25). */
export const MCP_UPSTREAM_VERSIONS = ['auto', '2026-07-28', '2025-11-25'] as const;

const mcpServerName = z.string().regex(/^[a-z0-9-]+$/, 'MCP server names are lowercase letters, digits and dashes').max(63);
/** A value that may reference the environment as `${VAR}` (resolved at boot, never shown). */
const envTemplate = z.string().max(8192);
const VAR_REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;
/** A glob over tool names (picomatch syntax: `*`, `?`, `{a,b}`, `[a-z]`). */
const toolGlob = z.string().min(1).max(200);

const mcpServerSchema = z
  .strictObject({
    /** A built-in way to start a well-known server; `command`/`url` below override its transport. */
    preset: z.enum(MCP_PRESETS).optional(),
    /** stdio: the program (spawned without a shell), its arguments, environment (exactly this, plus PATH/HOME-like basics) and working directory. */
    command: z.string().min(1).optional(),
    args: z.array(z.string()).optional(),
    env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name'), envTemplate).optional(),
    cwd: z.string().min(1).optional(),
    /** Streamable HTTP: the server's URL and extra request headers (e.g. `Authorization: Bearer ${TOKEN}`). */
    url: httpUrl.optional(),
    headers: z.record(z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'an HTTP header name'), envTemplate).optional(),
    /** Default true; presets that need the network (github, context7, huggingface) default to false. */
    enabled: z.boolean().optional(),
    /** Deadline of one call (and of connecting); the pool sends notifications/cancelled when it passes. */
    timeoutMs: z.number().int().min(100).max(600_000).default(30_000),
    /** Offer this server's tools, resources and prompts to agents on /mcp. */
    federate: z.boolean().default(true),
    /** Prefix of its federated tool and prompt names; default `<name>__`; '' federates the names as they are. */
    toolPrefix: z.string().regex(/^[A-Za-z0-9_.-]*$/, 'letters, digits, _ . -').max(64).optional(),
    /** Which upstream tools are offered (globs over the upstream's own names; deny wins). */
    tools: z
      .strictObject({
        allow: z.array(toolGlob).default(['*']),
        deny: z.array(toolGlob).default([]),
      })
      .prefault({}),
    /** Scope an agent needs per tool (first matching glob wins); default read for `readOnlyHint: true`, write otherwise. */
    scopes: z.record(toolGlob, scopeSchema).default({}),
    /** Federated calls per principal and tool (through the gateway's limiter); none by default. */
    rateLimit: rateQuotaSchema.optional(),
    /** Protocol revision to negotiate with this server. */
    protocolVersion: z.enum(MCP_UPSTREAM_VERSIONS).default('auto'),
  })
  .refine((s) => s.preset !== undefined || s.command !== undefined || s.url !== undefined, { message: 'needs a preset, a command (stdio) or a url (Streamable HTTP)' })
  .refine((s) => !(s.command !== undefined && s.url !== undefined), { message: 'command (stdio) and url (Streamable HTTP) exclude each other' })
  .refine((s) => s.url === undefined || (s.args === undefined && s.env === undefined && s.cwd === undefined), {
    message: 'args, env and cwd belong to a command (stdio), not a url',
  })
  .refine((s) => s.command === undefined || s.headers === undefined, { message: 'headers belong to a url (Streamable HTTP), not a command' });

type McpServerFile = z.output<typeof mcpServerSchema>;

/** How the pool reaches a server, every `${VAR}` resolved. */
export type McpServerTransport =
  | { readonly kind: 'stdio'; readonly command: string; readonly args: readonly string[]; readonly env: Readonly<Record<string, string>>; readonly cwd?: string }
  | { readonly kind: 'http'; readonly url: string; readonly headers: Readonly<Record<string, string>> };

/** Variables a stdio child gets from the gateway's environment besides its configured `env` (never the gateway's secrets). */
const CHILD_BASIC_ENV = ['PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'TERM', 'LANG', 'LC_ALL', 'TMPDIR', 'TZ', 'SYSTEMROOT', 'APPDATA'] as const;

/** `<package>`'s bin (the first, or `bin`) as an absolute path: started with the project's own Node, never downloaded. */
function packageBin(pkg: string, bin?: string): string {
  const require = createRequire(import.meta.url);
  const manifestPath = require.resolve(`${pkg}/package.json`);
  const manifest = z
    .object({ bin: z.union([z.string(), z.record(z.string(), z.string())]) })
    .parse(JSON.parse(readFileSync(manifestPath, 'utf8')));
  const rel = typeof manifest.bin === 'string' ? manifest.bin : (bin !== undefined ? manifest.bin[bin] : Object.values(manifest.bin)[0]);
  if (rel === undefined) throw new Error(`${pkg} has no bin ${bin ?? ''}`);
  return join(dirname(manifestPath), rel);
}

/** What a preset contributes (the server's own keys override it). */
function presetDefaults(preset: McpPreset, dataDir: string): Partial<Pick<McpServerFile, 'command' | 'args' | 'env' | 'url' | 'headers'>> {
  switch (preset) {
    case 'memory':
      return { command: process.execPath, args: [packageBin('@modelcontextprotocol/server-memory')], env: { MEMORY_FILE_PATH: join(dataDir, 'memory.jsonl') } };
    case 'sequential-thinking':
      // Its stderr log of each thought is noise in the gateway's log.
      return { command: process.execPath, args: [packageBin('@modelcontextprotocol/server-sequential-thinking')], env: { DISABLE_THOUGHT_LOGGING: 'true' } };
    case 'context7':
      return { command: process.execPath, args: [packageBin('@upstash/context7-mcp'), '--transport', 'stdio'], env: { CONTEXT7_API_KEY: '${CONTEXT7_API_KEY}' } };
    case 'github':
      return { url: 'https://api.githubcopilot.com/mcp/', headers: { Authorization: 'Bearer ${GITHUB_TOKEN}' } };
    case 'huggingface':
      return { url: 'https://huggingface.co/mcp', headers: { Authorization: 'Bearer ${HF_TOKEN}' } };
  }
}

/** `${VAR}` replaced from `vars`; the names of missing ones collected. */
function substitute(value: string, vars: Readonly<Record<string, string>>, missing: Set<string>): string {
  return value.replace(VAR_REF, (_, name: string) => {
    const v = vars[name];
    if (v === undefined) missing.add(name);
    return v ?? '';
  });
}

/** The optional `${CONTEXT7_API_KEY}` of the context7 preset: dropped when unset instead of a problem. */
const OPTIONAL_PRESET_VARS: ReadonlySet<string> = new Set(['CONTEXT7_API_KEY']);

function resolveServer(name: string, s: McpServerFile, dataDir: string, vars: Readonly<Record<string, string>>) {
  const preset = s.preset !== undefined ? presetDefaults(s.preset, dataDir) : {};
  // The server's own transport keys replace the preset's (a preset's url vs. a configured command).
  const own = s.command !== undefined || s.url !== undefined;
  const base = own ? {} : preset;
  const missing = new Set<string>();
  const resolveMap = (m: Record<string, string> | undefined, optionalDrop: boolean) => {
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(m ?? {})) {
      const refs = [...v.matchAll(VAR_REF)].map((r) => r[1]!);
      if (optionalDrop && refs.length > 0 && refs.every((r) => OPTIONAL_PRESET_VARS.has(r) && vars[r] === undefined)) continue;
      out[k] = substitute(v, vars, missing);
    }
    return out;
  };
  const command = s.command ?? base.command;
  const url = s.url ?? base.url;
  let transport: McpServerTransport;
  if (command !== undefined) {
    const basics: Record<string, string> = {};
    for (const k of CHILD_BASIC_ENV) if (vars[k] !== undefined) basics[k] = vars[k];
    transport = {
      kind: 'stdio',
      command,
      args: s.args ?? base.args ?? [],
      env: { ...basics, ...resolveMap(base.env, true), ...resolveMap(s.env, false) },
      ...(s.cwd !== undefined ? { cwd: s.cwd } : {}),
    };
  } else {
    transport = { kind: 'http', url: url!, headers: { ...resolveMap(base.headers, true), ...resolveMap(s.headers, false) } };
  }
  const enabled = s.enabled ?? !(s.preset !== undefined && NETWORK_PRESETS.has(s.preset) && !own);
  return {
    name,
    ...(s.preset !== undefined ? { preset: s.preset } : {}),
    transport,
    enabled,
    timeoutMs: s.timeoutMs,
    federate: s.federate,
    toolPrefix: s.toolPrefix ?? `${name}__`,
    tools: s.tools,
    scopes: s.scopes,
    ...(s.rateLimit !== undefined ? { rateLimit: s.rateLimit } : {}),
    protocolVersion: s.protocolVersion,
    /** Variables referenced but not set (a problem when the server is enabled). */
    missingVars: [...missing],
  };
}

/** `c` is rooted at the file's `mcp`. Enabled servers must have every `${VAR}` they reference; prefixes must not collide. */
export function checkMcpServers(c: Checker, file: McpFile, vars: Readonly<Record<string, string>>): void {
  if (!c.readable('servers')) return;
  const prefixes = new Map<string, string>();
  for (const [name, s] of Object.entries(file.servers)) {
    if (!c.valid('servers', name)) continue;
    const r = resolveServer(name, s, resolvePath(file.dataDir), vars);
    if (r.enabled && r.missingVars.length > 0) {
      c.problem(['servers', name], `references ${r.missingVars.map((v) => `\${${v}}`).join(', ')}, not set in the environment`);
    }
    if (r.federate && r.toolPrefix !== '') {
      const other = prefixes.get(r.toolPrefix);
      if (other !== undefined) c.problem(['servers', name, 'toolPrefix'], `"${r.toolPrefix}" is also the prefix of ${other}`);
      prefixes.set(r.toolPrefix, name);
    }
  }
}

export function resolveMcpServers(file: McpFile, vars: Readonly<Record<string, string>>) {
  const dataDir = isAbsolute(file.dataDir) ? file.dataDir : resolvePath(file.dataDir);
  const servers: Record<string, ReturnType<typeof resolveServer>> = {};
  for (const [name, s] of Object.entries(file.servers)) servers[name] = resolveServer(name, s, dataDir, vars);
  return { dataDir, servers };
}

/** A host name as the Host header carries it, without port: a DNS name, an IPv4 address or a bracketed IPv6 one. */
const hostName = z
  .string()
  .min(1)
  .max(253)
  .regex(/^([A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.?|\[[0-9A-Fa-f:.]+\])$/, 'must be a host name without scheme or port (IPv6 in brackets)')
  .transform((h) => h.toLowerCase());

export const mcpSchema = z
  .strictObject({
    /** Serve MCP at /mcp. */
    enabled: z.boolean().default(true),
    // Long-lived streams per replica: the GET streams of 2025 sessions and the 2026-07-28
    // subscriptions/listen streams (everything else of MCP is served per request and
    // forgotten; 2025 sessions are records in the state store). Bounded per principal, per
    // client address, and a share of the total that only admin-scoped principals may use.
    /** Open streams per replica at most; past it, a new one gets 503. */
    maxStreams: z.number().int().min(1).max(100_000).default(200),
    /** Open streams of one authenticated principal (API key / JWT subject) per replica; a newer one closes its oldest. */
    maxStreamsPerPrincipal: z.number().int().min(1).max(100_000).default(10),
    /** Open streams of non-admin principals (anonymous ones included) from one client address (IPv6: its /64) per replica. */
    maxStreamsPerAddress: z.number().int().min(1).max(100_000).default(20),
    /** Streams of maxStreams only admin-scoped principals may open. Default: a tenth of maxStreams, rounded up, less than maxStreams. */
    adminReservedStreams: z.number().int().min(0).max(100_000).optional(),
    /** A 2025 session (its state-store record) ends this long after its last request while no stream of it is open. */
    sessionIdleSeconds: z.number().int().min(2).max(86_400).default(1800),
    /** Reconnection delay suggested to 2025 clients on their GET stream (SSE `retry`); they resume with Last-Event-ID. */
    streamRetryMs: z.number().int().min(100).max(600_000).default(1000),
    /**
     * Browser origins allowed to call /mcp (DNS-rebinding protection). Requests without Origin
     * (non-browser clients) pass; default: the CORS origins, plus localhost ones outside production.
     */
    allowedOrigins: z.array(origin).optional(),
    /**
     * Host names /mcp may be called by (DNS-rebinding protection, with Origin). Default: the host
     * of resourceUrl, plus outside production localhost, 127.0.0.1, [::1] and the listen address.
     */
    allowedHosts: z.array(hostName).min(1).optional(),
    /** This gateway's public /mcp URL, named in the RFC 9728 metadata; default: from the request's Host. */
    resourceUrl: httpUrl.optional(),
    // --- the gateway as an MCP client: upstream MCP servers (mcp/clients), issue 14 ---
    /** Upstream MCP servers the gateway connects to (one supervised connection each) and federates on /mcp. */
    servers: z.record(mcpServerName, mcpServerSchema).default({}),
    /** Where upstream servers keep files (memory's MEMORY_FILE_PATH); relative to the working directory. */
    dataDir: z.string().min(1).default('./data'),
  })
  .refine(
    (m) => m.adminReservedStreams === undefined || m.adminReservedStreams < m.maxStreams,
    comparing(['adminReservedStreams', 'maxStreams'], ['adminReservedStreams'], 'must be less than maxStreams'),
  )
  .prefault({});
type McpFile = z.output<typeof mcpSchema>;

/** `c` is rooted at the environment. */
export function checkMcpEnv(c: Checker, env: McpEnv & { ENVIRONMENT: string }): void {
  if (c.valid('ENVIRONMENT') && c.valid('MCP_REQUIRE_AUTH') && env.ENVIRONMENT === 'production' && !env.MCP_REQUIRE_AUTH) {
    c.problem(['MCP_REQUIRE_AUTH'], 'cannot be false when ENVIRONMENT=production (it serves /mcp without credentials)');
  }
}

export function resolveMcp(env: McpEnv, file: McpFile, vars: Readonly<Record<string, string>> = {}) {
  return {
    ...file,
    ...resolveMcpServers(file, vars),
    /** false only outside production (MCP_REQUIRE_AUTH). */
    requireAuth: env.MCP_REQUIRE_AUTH,
    adminReservedStreams: file.adminReservedStreams ?? Math.min(Math.ceil(file.maxStreams / 10), file.maxStreams - 1),
  };
}
