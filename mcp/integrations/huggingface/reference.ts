import type { CallToolResult } from '@modelcontextprotocol/client';
import { z } from 'zod';
import { UpstreamUnavailableError, type UpstreamToolCaller } from '../../clients/types.js';
import { ValidatorError } from './errors.js';

/*
 * The reference zero-shot model, found and described through the HuggingFace MCP server
 * (mcp.servers.huggingface; github:huggingface/hf-mcp-server), called only through the
 * pool's UpstreamToolCaller. Two calls:
 *  1. search: `hub_repo_search` {query, repo_types: ["model"], filters: [task], sort:
 *     "downloads"} (current releases), or `model_search` {query, task, sort} (older ones) when
 *     the server does not know the first: is the configured model a zero-shot model on the
 *     Hub, and which are the most downloaded ones for the task;
 *  2. `hub_repo_details` {repo_ids: [id], repo_type: "model"}: license, downloads, task and
 *     the last update.
 * The server answers in markdown (its tools are written for LLM agents, no structured
 * content), so the fields are read from the lines its formatters write ("**License:** mit",
 * "**Downloads:** 3.4M", "**Updated:** 21 Dec, 2023") and the result is checked with zod.
 * The server reports no commit hash; `revision` is a 40-hex sha when the answer carries one,
 * else `main@<last update>`, which names the state of the default branch that was described.
 */

/** The name of the HuggingFace MCP server in `mcp.servers` (the preset's usual name). */
export const HF_MCP_SERVER = 'huggingface';

export const HF_MCP_TOOLS = Object.freeze({ search: 'hub_repo_search', legacySearch: 'model_search', details: 'hub_repo_details' });
export const ZERO_SHOT_TASK = 'zero-shot-classification';

export const referenceModelSchema = z.strictObject({
  id: z.string().regex(/^[\w.-]+\/[\w.-]+$|^[\w.-]+$/, 'a Hub model id'),
  revision: z.string().min(1),
  license: z.string().min(1).nullable(),
  downloads: z.number().int().nonnegative().nullable(),
  likes: z.number().int().nonnegative().nullable(),
  task: z.string().min(1).nullable(),
  updated: z.string().min(1).nullable(),
  /** Whether the search for the task found the model among its results. */
  foundBySearch: z.boolean(),
  /** The most downloaded models of the task, as the search listed them (at most 5). */
  alternatives: z.array(z.string()).max(5),
  /** The tools that answered, and the MCP server's name in the config. */
  tools: z.array(z.string()),
  server: z.string(),
});
export type ReferenceModel = z.output<typeof referenceModelSchema>;

function text(result: CallToolResult): string {
  return result.content
    .filter((c): c is { type: 'text'; text: string } => c.type === 'text' && typeof (c as { text?: unknown }).text === 'string')
    .map((c) => c.text)
    .join('\n');
}

/** "3.4M" / "12.5K" / "523" (the server's formatNumber) as a number. */
export function parseHubNumber(s: string): number | null {
  const m = /^(\d+(?:\.\d+)?)([KM]?)$/.exec(s.trim().replace(/,/g, ''));
  if (!m) return null;
  const n = Number(m[1]) * (m[2] === 'M' ? 1_000_000 : m[2] === 'K' ? 1_000 : 1);
  return Math.round(n);
}

/** The value after `**<name>:**` up to the next `|` or line end, in the first matching line. */
function field(markdown: string, name: string): string | null {
  const re = new RegExp(`\\*\\*${name}:\\*\\*\\s*([^|\\n]+)`);
  const m = re.exec(markdown);
  return m ? m[1]!.trim() : null;
}

/** `### <id>` headings of a search answer, in order. */
export function searchHits(markdown: string): string[] {
  return [...markdown.matchAll(/^###\s+(\S+)\s*$/gm)].map((m) => m[1]!);
}

/** The fields of a `hub_repo_details` answer for one model. */
export function parseModelDetails(markdown: string, id: string): Omit<ReferenceModel, 'foundBySearch' | 'alternatives' | 'tools' | 'server'> {
  const heading = /^#\s+(\S+)\s*$/m.exec(markdown)?.[1];
  if (heading !== id) throw new ValidatorError('output', `the HuggingFace MCP server described "${heading ?? '?'}" when asked for ${id}`);
  const updated = field(markdown, 'Updated');
  const sha = /\b([0-9a-f]{40})\b/.exec(markdown)?.[1];
  const downloads = field(markdown, 'Downloads');
  const likes = field(markdown, 'Likes');
  return {
    id,
    revision: sha ?? `main@${updated ?? 'unknown'}`,
    license: field(markdown, 'License'),
    downloads: downloads === null ? null : parseHubNumber(downloads),
    likes: likes === null ? null : parseHubNumber(likes),
    task: field(markdown, 'Task'),
    updated,
  };
}

async function call(caller: UpstreamToolCaller, server: string, tool: string, args: Record<string, unknown>, timeoutMs: number | undefined): Promise<CallToolResult> {
  try {
    return await caller.callTool(server, tool, args, timeoutMs !== undefined ? { timeoutMs } : {});
  } catch (err) {
    if (err instanceof UpstreamUnavailableError) throw new ValidatorError('network', `the HuggingFace MCP server (mcp.servers.${server}) is not reachable: ${err.reason}`);
    throw err;
  }
}

/**
 * Finds and describes `modelId` on the Hub through the HuggingFace MCP server `server`.
 * Rejects with ValidatorError: `network` (exit 3) when the server is not connected, `output`
 * when its answers are not what the contract says, `api` when it reports a failure.
 */
export async function describeReferenceModel(
  caller: UpstreamToolCaller,
  options: { readonly server: string; readonly modelId: string; readonly task?: string; readonly timeoutMs?: number },
): Promise<ReferenceModel> {
  const { server, modelId } = options;
  const task = options.task ?? ZERO_SHOT_TASK;
  if (!caller.isReady(server)) throw new ValidatorError('network', `the HuggingFace MCP server (mcp.servers.${server}) is not connected: check the network, the server's URL and HF_TOKEN`);
  const tools: string[] = [];
  const query = modelId.includes('/') ? modelId.split('/')[1]! : modelId;

  let search: CallToolResult | null = null;
  let searchError: unknown = null;
  try {
    search = await call(caller, server, HF_MCP_TOOLS.search, { query, repo_types: ['model'], filters: [task], sort: 'downloads', limit: 20 }, options.timeoutMs);
    if (search.isError === true) search = null;
    else tools.push(HF_MCP_TOOLS.search);
  } catch (err) {
    if (err instanceof ValidatorError) throw err;
    searchError = err; // an unknown tool is a protocol error on some SDK versions
  }
  if (search === null) {
    // Older releases of the server: `model_search`.
    const legacy = await call(caller, server, HF_MCP_TOOLS.legacySearch, { query, task, sort: 'downloads', limit: 20 }, options.timeoutMs).catch((err: unknown) => {
      if (err instanceof ValidatorError) throw err;
      throw new ValidatorError('api', `the HuggingFace MCP server has neither ${HF_MCP_TOOLS.search} nor ${HF_MCP_TOOLS.legacySearch}: ${(err as Error)?.message ?? String(searchError)}`);
    });
    if (legacy.isError === true) throw new ValidatorError('api', `${HF_MCP_TOOLS.legacySearch} failed: ${text(legacy).slice(0, 200)}`);
    search = legacy;
    tools.push(HF_MCP_TOOLS.legacySearch);
  }
  const hits = searchHits(text(search));

  const details = await call(caller, server, HF_MCP_TOOLS.details, { repo_ids: [modelId], repo_type: 'model' }, options.timeoutMs);
  if (details.isError === true) throw new ValidatorError('api', `${HF_MCP_TOOLS.details} failed for ${modelId}: ${text(details).slice(0, 200)}`);
  tools.push(HF_MCP_TOOLS.details);
  const parsed = referenceModelSchema.safeParse({
    ...parseModelDetails(text(details), modelId),
    foundBySearch: hits.includes(modelId),
    alternatives: hits.filter((h) => h !== modelId).slice(0, 5),
    tools,
    server,
  });
  if (!parsed.success) throw new ValidatorError('output', `the HuggingFace MCP server's description of ${modelId} is not in the expected format: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return parsed.data;
}
