import { readFileSync } from 'node:fs';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { CallToolRequestSchema, ListToolsRequestSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { Ajv } from 'ajv';
import type { UpstreamToolCaller } from '../../mcp/clients/types.js';

/*
 * A stand-in of the official GitHub MCP server (github/github-mcp-server) for the MCP tracking
 * backend: the official tool names and input schemas (./github-mcp-server-tools.json, copied
 * from that repository's tool snapshots), every call's arguments validated against them, and
 * each tool done through the REST API of `apiUrl` (the local server that validates requests
 * against GitHub's OpenAPI description, ./github-api.ts), answering in the official server's
 * shapes (MinimalResponse {id, url}; list_issues {issues, totalCount, pageInfo}).
 */

interface ToolSpec {
  name: string;
  description: string;
  inputSchema: Record<string, unknown>;
}
const TOOLS: ToolSpec[] = JSON.parse(readFileSync(new URL('./github-mcp-server-tools.json', import.meta.url), 'utf8')).tools;

export interface GithubMcp {
  readonly caller: UpstreamToolCaller;
  /** Tool calls as `name`, and argument violations. */
  readonly calls: string[];
  readonly violations: string[];
  close(): Promise<void>;
}

const text = (value: unknown): CallToolResult => ({ content: [{ type: 'text', text: typeof value === 'string' ? value : JSON.stringify(value) }] });
const error = (message: string): CallToolResult => ({ content: [{ type: 'text', text: message }], isError: true });

export async function githubMcp(apiUrl: string): Promise<GithubMcp> {
  const ajv = new Ajv({ strict: false });
  const validators = new Map(TOOLS.map((t) => [t.name, ajv.compile(t.inputSchema)]));
  const calls: string[] = [];
  const violations: string[] = [];
  const rest = async (method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> => {
    const res = await fetch(`${apiUrl}${path}`, {
      method,
      headers: { accept: 'application/vnd.github+json', authorization: 'Bearer ghp_local', ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, json: await res.json().catch(() => ({})) };
  };
  const failed = (what: string, r: { status: number; json: any }) => error(`${what}: ${r.status} ${r.json?.message ?? ''}`);

  const server = new Server({ name: 'github-mcp-server', version: 'local' }, { capabilities: { tools: {} } });
  server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: TOOLS.map((t) => ({ name: t.name, description: t.description, inputSchema: t.inputSchema as never })) }));
  server.setRequestHandler(CallToolRequestSchema, async (request): Promise<CallToolResult> => {
    const { name } = request.params;
    const a = (request.params.arguments ?? {}) as Record<string, any>;
    calls.push(name);
    const validate = validators.get(name);
    if (validate === undefined) {
      violations.push(`unknown tool ${name}`);
      return error(`unknown tool ${name}`);
    }
    if (!validate(a)) {
      violations.push(`${name}: ${ajv.errorsText(validate.errors)}`);
      return error(`invalid arguments: ${ajv.errorsText(validate.errors)}`);
    }
    const repo = `/repos/${a.owner}/${a.repo}`;
    switch (name) {
      case 'list_issues': {
        const q = new URLSearchParams({ state: a.state === undefined ? 'all' : String(a.state).toLowerCase(), per_page: String(a.perPage ?? 30), ...(a.labels ? { labels: a.labels.join(',') } : {}) });
        const r = await rest('GET', `${repo}/issues?${q}`);
        if (r.status !== 200) return failed('failed to list issues', r);
        const issues = r.json.map((i: any) => ({ number: i.number, title: i.title, body: i.body ?? '', state: i.state.toUpperCase(), labels: i.labels.map((l: any) => l.name), assignees: [] }));
        return text({ issues, totalCount: issues.length, pageInfo: { hasNextPage: false, hasPreviousPage: false, startCursor: '', endCursor: '' } });
      }
      case 'issue_write': {
        if (a.method === 'create') {
          const r = await rest('POST', `${repo}/issues`, { title: a.title, body: a.body, labels: a.labels });
          return r.status === 201 ? text({ id: String(r.json.id), url: r.json.html_url }) : failed('failed to create issue', r);
        }
        const r = await rest('PATCH', `${repo}/issues/${a.issue_number}`, { ...(a.body !== undefined ? { body: a.body } : {}), ...(a.labels !== undefined ? { labels: a.labels } : {}), ...(a.title !== undefined ? { title: a.title } : {}) });
        return r.status === 200 ? text({ id: String(r.json.id), url: r.json.html_url }) : failed('failed to update issue', r);
      }
      case 'add_issue_comment': {
        const r = await rest('POST', `${repo}/issues/${a.issue_number}/comments`, { body: a.body });
        return r.status === 201 ? text({ id: String(r.json.id), url: r.json.html_url }) : failed('failed to create comment', r);
      }
      case 'create_branch': {
        const base = await rest('GET', `${repo}/git/ref/heads/${a.from_branch ?? 'main'}`);
        if (base.status !== 200) return failed('failed to get reference', base);
        const r = await rest('POST', `${repo}/git/refs`, { ref: `refs/heads/${a.branch}`, sha: base.json.object.sha });
        return r.status === 201 ? text({ ref: r.json.ref }) : failed('failed to create branch', r);
      }
      case 'create_or_update_file': {
        const r = await rest('PUT', `${repo}/contents/${a.path}`, { message: a.message, content: Buffer.from(a.content, 'utf8').toString('base64'), branch: a.branch, ...(a.sha ? { sha: a.sha } : {}) });
        return r.status === 200 || r.status === 201 ? text(r.json) : failed('failed to create/update file', r);
      }
      case 'create_pull_request': {
        const r = await rest('POST', `${repo}/pulls`, { title: a.title, body: a.body, head: a.head, base: a.base, draft: a.draft ?? false });
        return r.status === 201 ? text({ id: String(r.json.id), url: r.json.html_url }) : failed('failed to create pull request', r);
      }
      case 'list_pull_requests': {
        const q = new URLSearchParams({ state: a.state ?? 'open', per_page: String(a.perPage ?? 30), ...(a.head ? { head: a.head } : {}) });
        const r = await rest('GET', `${repo}/pulls?${q}`);
        return r.status === 200 ? text(r.json.map((p: any) => ({ number: p.number, title: p.title, state: p.state, draft: false, merged: false, html_url: p.html_url }))) : failed('failed to list pull requests', r);
      }
      default:
        return error(`not implemented here: ${name}`);
    }
  });
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await server.connect(serverSide);
  const client = new Client({ name: 'gateway-tracker-test', version: '1' });
  await client.connect(clientSide);
  const caller: UpstreamToolCaller = {
    isReady: (s) => s === 'github',
    callTool: async (s, tool, args) => {
      if (s !== 'github') throw new Error(`unknown server ${s}`);
      return (await client.callTool({ name: tool, arguments: args })) as never;
    },
  };
  return { caller, calls, violations, close: async () => void (await client.close()) };
}
