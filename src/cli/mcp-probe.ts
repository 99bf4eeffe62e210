import type { Writable } from 'node:stream';
import type { CallToolResult, Client } from '@modelcontextprotocol/client';
import { processEnvironment, type McpServerTransport } from '../config/index.js';
import { createClient, createTransport, type UpstreamVersionChoice } from '../../mcp/clients/connect.js';

/*
 * `unified-gateway mcp probe`: connect to one MCP server with the gateway's own client code
 * (mcp/clients/connect.ts: the transport and client the pool uses), list what it offers and
 * optionally call one tool. For operators checking an upstream before configuring it, and the
 * client the conformance suite's client scenarios drive (test/e2e/mcp-probe-conformance.test.ts).
 *
 * Exit codes: 0 connected (and the call, if any, succeeded), 1 could not connect or list,
 * 2 bad options, 3 the call failed or returned a tool error.
 */

export const PROBE_EXIT = { ok: 0, unreachable: 1, usage: 2, callFailed: 3 } as const;

export interface McpProbeOptions {
  readonly url?: string | undefined;
  readonly command?: string | undefined;
  readonly arg?: readonly string[] | undefined;
  /** `Name: value` request headers (HTTP). */
  readonly header?: readonly string[] | undefined;
  /** An environment variable whose value is sent as `Authorization: Bearer` (never on the command line). */
  readonly bearerEnv?: string | undefined;
  readonly protocol?: string | undefined;
  /** Tools to call after listing, in order, in the same session (repeatable). */
  readonly call?: readonly string[] | undefined;
  /** The arguments of each --call, by position (a JSON object; missing: {}). */
  readonly args?: readonly string[] | undefined;
  readonly timeout?: string | undefined;
  readonly json?: boolean | undefined;
}

/** Environment variables a probed stdio server gets (never the caller's secrets). */
const BASIC_ENV = ['PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'TERM', 'LANG', 'TMPDIR'] as const;

class UsageError extends Error {}

function parseOptions(opts: McpProbeOptions, env: NodeJS.ProcessEnv): { transport: McpServerTransport; version: UpstreamVersionChoice; timeoutMs: number; calls: { name: string; args: Record<string, unknown> }[] } {
  if ((opts.url === undefined) === (opts.command === undefined)) throw new UsageError('give exactly one of --url (Streamable HTTP) or --command (stdio)');
  const version = (opts.protocol ?? 'auto') as UpstreamVersionChoice;
  if (!['auto', '2026-07-28', '2025-11-25'].includes(version)) throw new UsageError('--protocol must be auto, 2026-07-28 or 2025-11-25');
  const timeoutMs = opts.timeout !== undefined ? Number(opts.timeout) : 30_000;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 100 || timeoutMs > 600_000) throw new UsageError('--timeout must be milliseconds from 100 to 600000');
  const calls: { name: string; args: Record<string, unknown> }[] = [];
  const argList = opts.args ?? [];
  if (argList.length > (opts.call ?? []).length) throw new UsageError('each --args needs its --call');
  for (const [i, name] of (opts.call ?? []).entries()) {
    let args: unknown = {};
    const text = argList[i];
    if (text !== undefined) {
      try {
        args = JSON.parse(text);
      } catch {
        throw new UsageError(`--args of ${name} must be a JSON object`);
      }
    }
    if (typeof args !== 'object' || args === null || Array.isArray(args)) throw new UsageError(`--args of ${name} must be a JSON object`);
    calls.push({ name, args: args as Record<string, unknown> });
  }
  if (opts.url !== undefined) {
    let url: URL;
    try {
      url = new URL(opts.url);
    } catch {
      throw new UsageError(`--url is not a URL: ${opts.url}`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError('--url must be http(s)');
    const headers: Record<string, string> = {};
    for (const h of opts.header ?? []) {
      const m = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):\s*(.*)$/.exec(h);
      if (!m) throw new UsageError(`--header must be "Name: value", got "${h.slice(0, 40)}"`);
      headers[m[1]!] = m[2]!;
    }
    if (opts.bearerEnv !== undefined) {
      const token = env[opts.bearerEnv];
      if (token === undefined || token === '') throw new UsageError(`--bearer-env: ${opts.bearerEnv} is not set`);
      headers.Authorization = `Bearer ${token}`;
    }
    return { transport: { kind: 'http', url: url.href, headers }, version, timeoutMs, calls };
  }
  const basics: Record<string, string> = {};
  for (const k of BASIC_ENV) if (env[k] !== undefined) basics[k] = env[k]!;
  return { transport: { kind: 'stdio', command: opts.command!, args: opts.arg ?? [], env: basics }, version, timeoutMs, calls };
}

function describeResult(result: CallToolResult): string {
  return JSON.stringify(result.structuredContent ?? result.content, null, 2);
}

export async function runMcpProbe(opts: McpProbeOptions, out: Writable = process.stdout, err: Writable = process.stderr, env: NodeJS.ProcessEnv = processEnvironment()): Promise<number> {
  let parsed: ReturnType<typeof parseOptions>;
  try {
    parsed = parseOptions(opts, env);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    err.write(`mcp probe: ${e.message}\n`);
    return PROBE_EXIT.usage;
  }
  const report: Record<string, unknown> = {};
  const say = (line: string) => {
    if (!opts.json) out.write(`${line}\n`);
  };
  const client: Client = createClient({ version: parsed.version, timeoutMs: parsed.timeoutMs });
  const transport = createTransport(parsed.transport);
  const stderr = (transport as { stderr?: NodeJS.ReadableStream | null }).stderr;
  stderr?.on('data', (chunk: Buffer) => err.write(chunk));
  const where = parsed.transport.kind === 'http' ? parsed.transport.url : parsed.transport.command;
  try {
    try {
      await client.connect(transport, { timeout: parsed.timeoutMs });
      const info = client.getServerVersion();
      report.server = info ?? null;
      report.protocolVersion = client.getNegotiatedProtocolVersion() ?? null;
      say(`connected to ${where}: ${info ? `${info.name} ${info.version}` : '(server without a name)'}, protocol ${client.getNegotiatedProtocolVersion() ?? '?'}`);
      const caps = client.getServerCapabilities() ?? {};
      const o = { timeout: parsed.timeoutMs };
      const tools = caps.tools ? (await client.listTools(undefined, o)).tools : [];
      const resources = caps.resources ? (await client.listResources(undefined, o)).resources : [];
      const templates = caps.resources ? (await client.listResourceTemplates(undefined, o)).resourceTemplates : [];
      const prompts = caps.prompts ? (await client.listPrompts(undefined, o)).prompts : [];
      Object.assign(report, { tools, resources, resourceTemplates: templates, prompts });
      say(`tools (${tools.length}):${tools.map((t) => `\n  ${t.name}${t.annotations?.readOnlyHint ? ' [read-only]' : ''}${t.description ? ` - ${t.description.split('\n')[0]!.slice(0, 100)}` : ''}`).join('')}`);
      say(`resources (${resources.length}):${resources.map((r) => `\n  ${r.uri}${r.name ? ` (${r.name})` : ''}`).join('')}`);
      if (templates.length > 0) say(`resource templates (${templates.length}):${templates.map((t) => `\n  ${t.uriTemplate}`).join('')}`);
      say(`prompts (${prompts.length}):${prompts.map((p) => `\n  ${p.name}`).join('')}`);
    } catch (e) {
      err.write(`mcp probe: cannot connect to ${where}: ${e instanceof Error ? e.message : String(e)}\n`);
      return PROBE_EXIT.unreachable;
    }
    const results: unknown[] = [];
    report.calls = results;
    for (const call of parsed.calls) {
      try {
        const result = await client.callTool({ name: call.name, arguments: call.args }, { timeout: parsed.timeoutMs });
        results.push({ tool: call.name, result });
        say(`call ${call.name}: ${result.isError ? 'tool error' : 'ok'}\n${describeResult(result)}`);
        if (result.isError) {
          if (opts.json) out.write(`${JSON.stringify(report)}\n`);
          return PROBE_EXIT.callFailed;
        }
      } catch (e) {
        const message = e instanceof Error ? e.message : String(e);
        err.write(`mcp probe: call ${call.name} failed: ${message}\n`);
        results.push({ tool: call.name, error: message });
        if (opts.json) out.write(`${JSON.stringify(report)}\n`);
        return PROBE_EXIT.callFailed;
      }
    }
    if (opts.json) out.write(`${JSON.stringify(report)}\n`);
    return PROBE_EXIT.ok;
  } finally {
    await client.close().catch(() => {});
  }
}
