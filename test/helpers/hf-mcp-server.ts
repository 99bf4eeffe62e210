import { createServer, type Server } from 'node:http';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';

/*
 * A local MCP server that speaks the HuggingFace MCP server's tool contract
 * (github:huggingface/hf-mcp-server, packages/mcp/src): the tool names and input schemas of
 * `hub_repo_search` (repo-search.ts), `model_search` (model-search.ts, older releases) and
 * `hub_repo_details` (hub-inspect.ts), answering with the markdown those tools write
 * (model-detail.ts formatModelDetails, repo-search.ts appendRepoResult; numbers as
 * utilities.ts formatNumber: 1.2M, 3.4K; dates as formatDate: "6 Dec, 2026"). Streamable
 * HTTP at /mcp, stateless, on a loopback port; the models are a small fixed catalogue.
 */

export interface HubModel {
  readonly id: string;
  readonly task: string;
  readonly library: string;
  readonly downloads: number;
  readonly likes: number;
  readonly license: string;
  readonly updatedAt: string;
  readonly tags: readonly string[];
}

export const HUB_MODELS: readonly HubModel[] = [
  { id: 'facebook/bart-large-mnli', task: 'zero-shot-classification', library: 'transformers', downloads: 3_412_877, likes: 1432, license: 'mit', updatedAt: '2023-12-21T00:00:00.000Z', tags: ['transformers', 'pytorch', 'bart', 'text-classification', 'zero-shot-classification', 'dataset:multi_nli', 'license:mit'] },
  { id: 'MoritzLaurer/deberta-v3-large-zeroshot-v2.0', task: 'zero-shot-classification', library: 'transformers', downloads: 98_310, likes: 120, license: 'mit', updatedAt: '2024-04-02T00:00:00.000Z', tags: ['transformers', 'deberta-v2', 'zero-shot-classification', 'license:mit'] },
  { id: 'typeform/distilbert-base-uncased-mnli', task: 'zero-shot-classification', library: 'transformers', downloads: 41_200, likes: 38, license: 'apache-2.0', updatedAt: '2023-03-30T00:00:00.000Z', tags: ['transformers', 'distilbert', 'zero-shot-classification'] },
  { id: 'openai-community/gpt2', task: 'text-generation', library: 'transformers', downloads: 9_800_000, likes: 2400, license: 'mit', updatedAt: '2024-02-19T00:00:00.000Z', tags: ['transformers', 'text-generation'] },
];

function formatNumber(num: number): string {
  if (num >= 1000000) return `${(num / 1000000).toFixed(1)}M`;
  if (num >= 1000) return `${(num / 1000).toFixed(1)}K`;
  return num.toString();
}

function formatDate(date: string): string {
  const d = new Date(date);
  return `${d.getUTCDate()} ${d.toLocaleString('en', { month: 'short', timeZone: 'UTC' })}, ${d.getUTCFullYear()}`;
}

function searchResult(found: readonly HubModel[], query: string | undefined): string {
  const lines = [`Found ${found.length} repositories across models${query ? ` matching query "${query}"` : ''}.`, '', `## Models (${found.length})`, ''];
  for (const m of found) {
    lines.push(`### ${m.id}`, '', `**Author:** ${m.id.split('/')[0]} | **Task:** ${m.task} | **Library:** ${m.library} | **Downloads:** ${formatNumber(m.downloads)} | **Likes:** ${m.likes}`, '');
    lines.push(`**Tags:** ${m.tags.join(', ')}`, '', `**Link:** [https://hf.co/${m.id}](https://hf.co/${m.id})`, '', '---', '');
  }
  return lines.join('\n');
}

function detailResult(m: HubModel): string {
  const [author] = m.id.split('/');
  return [
    `# ${m.id}`,
    '',
    '## Overview',
    `- **Author:** ${author}`,
    `- **Task:** ${m.task}`,
    `- **Library:** ${m.library}`,
    `- **Downloads:** ${formatNumber(m.downloads)} | **Likes:** ${m.likes}`,
    `- **Updated:** ${formatDate(m.updatedAt)}`,
    '',
    '## Tags',
    m.tags.map((t) => `\`${t}\``).join(' '),
    '',
    '## Metadata',
    `- **License:** ${m.license}`,
    '',
    `**Link:** [https://hf.co/${m.id}](https://hf.co/${m.id})`,
  ].join('\n');
}

function matches(m: HubModel, query: string | undefined): boolean {
  return query === undefined || query === '' || m.id.toLowerCase().includes(query.toLowerCase()) || m.tags.some((t) => t.includes(query.toLowerCase()));
}

export interface HfMcpServerOptions {
  /** Which search tool the server offers: current releases `hub_repo_search`, older ones `model_search`. */
  readonly search?: 'hub_repo_search' | 'model_search';
}

/** One server instance per request (stateless Streamable HTTP), with the contract's tools. */
function buildServer(calls: string[], options: HfMcpServerOptions): McpServer {
  const server = new McpServer({ name: '@llmindset/hf-mcp-server', version: '0.2.0' });
  const sorted = (list: readonly HubModel[], sort: string | undefined) => (sort === 'downloads' ? [...list].sort((a, b) => b.downloads - a.downloads) : list);
  if ((options.search ?? 'hub_repo_search') === 'hub_repo_search') {
    server.registerTool(
      'hub_repo_search',
      {
        description: 'Search Hugging Face repositories with a shared query interface.',
        inputSchema: {
          query: z.string().optional(),
          repo_types: z.array(z.enum(['model', 'dataset', 'space'])).min(1).max(3).optional().default(['model', 'dataset']),
          author: z.string().optional(),
          filters: z.array(z.string()).optional(),
          sort: z.enum(['trendingScore', 'downloads', 'likes', 'createdAt', 'lastModified']).optional(),
          limit: z.number().min(1).max(100).optional().default(20),
        },
        annotations: { title: 'Repo Search', destructiveHint: false, readOnlyHint: true, openWorldHint: true },
      },
      (args) => {
        calls.push('hub_repo_search');
        const found = sorted(
          HUB_MODELS.filter((m) => matches(m, args.query) && (args.filters ?? []).every((f) => m.tags.includes(f) || m.task === f) && (args.author === undefined || m.id.startsWith(`${args.author}/`))),
          args.sort,
        ).slice(0, args.limit);
        return { content: [{ type: 'text', text: found.length === 0 ? 'No repositories found for the given criteria.' : searchResult(found, args.query) }] };
      },
    );
  } else {
    server.registerTool(
      'model_search',
      {
        description: 'Find Machine Learning models hosted on Hugging Face.',
        inputSchema: {
          query: z.string().optional(),
          author: z.string().optional(),
          task: z.string().optional(),
          library: z.string().optional(),
          sort: z.enum(['trendingScore', 'downloads', 'likes', 'createdAt', 'lastModified']).optional(),
          limit: z.number().min(1).max(100).optional().default(20),
        },
        annotations: { title: 'Model Search', destructiveHint: false, readOnlyHint: true, openWorldHint: true },
      },
      (args) => {
        calls.push('model_search');
        const found = sorted(HUB_MODELS.filter((m) => matches(m, args.query) && (args.task === undefined || m.task === args.task)), args.sort).slice(0, args.limit);
        return { content: [{ type: 'text', text: found.length === 0 ? 'No models found for the given criteria.' : searchResult(found, args.query) }] };
      },
    );
  }
  server.registerTool(
    'hub_repo_details',
    {
      description: 'Get details for one or more Hugging Face repos (model, dataset, or space). Auto-detects type unless specified.',
      inputSchema: {
        repo_ids: z.array(z.string().min(1)).min(1).max(10),
        repo_type: z.enum(['model', 'dataset', 'space']).optional(),
        include_readme: z.boolean().default(false),
      },
      annotations: { title: 'Hub Repo Details', destructiveHint: false, readOnlyHint: true, openWorldHint: false },
    },
    (args) => {
      calls.push('hub_repo_details');
      const parts = args.repo_ids.map((id) => {
        const m = HUB_MODELS.find((x) => x.id === id);
        return m ? detailResult(m) : `# ${id}\n\nError: Model '${id}' not found. Please check the model ID.`;
      });
      const missing = args.repo_ids.every((id) => !HUB_MODELS.some((x) => x.id === id));
      return { content: [{ type: 'text', text: parts.join('\n\n---\n\n') }], ...(missing ? { isError: true } : {}) };
    },
  );
  return server;
}

export interface HfMcpServer {
  readonly url: string;
  /** Tool names called, in order. */
  readonly calls: string[];
  close(): Promise<void>;
}

export async function startHfMcpServer(options: HfMcpServerOptions = {}): Promise<HfMcpServer> {
  const calls: string[] = [];
  const http: Server = createServer((req, res) => {
    if (req.url !== '/mcp') {
      res.writeHead(404).end();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const server = buildServer(calls, options);
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
      res.on('close', () => {
        void transport.close();
        void server.close();
      });
      const body = chunks.length > 0 ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown) : undefined;
      void server.connect(transport).then(() => transport.handleRequest(req, res, body));
    });
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  const { port } = http.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    calls,
    close: () =>
      new Promise<void>((r) => {
        http.closeAllConnections();
        http.close(() => r());
      }),
  };
}
