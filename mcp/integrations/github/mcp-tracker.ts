import { z } from 'zod';
import { PermanentTrackerError, type MigrationTracker, type TrackedRef } from '../../../src/migration/tracker.js';
import type { UpstreamToolCaller } from '../../clients/types.js';

/*
 * The migration tracker through the federated GitHub MCP server (github/github-mcp-server),
 * with its tool names and arguments (pkg/github/__toolsnaps__ of that repository):
 * list_issues, issue_write (method create | update), add_issue_comment, create_branch,
 * create_or_update_file, create_pull_request, list_pull_requests. Answers are parsed with zod
 * (the write tools answer a MinimalResponse `{ id, url }`; numbers come from the URL).
 */

const minimalResponse = z.object({ id: z.string(), url: z.string() });
const listIssuesAnswer = z.object({ issues: z.array(z.object({ number: z.number().int(), body: z.string().optional().nullable() })) });
const listPullsAnswer = z.array(z.object({ number: z.number().int(), html_url: z.string() }));

const numberIn = (url: string, kind: 'issues' | 'pull'): number => {
  const m = new RegExp(`/${kind}/(\\d+)(?:$|[/?#])`).exec(url);
  if (m === null) throw new Error(`the GitHub MCP server answered a URL without a ${kind} number: ${url.slice(0, 200)}`);
  return Number(m[1]);
};

export interface McpTrackerOptions {
  readonly server: string;
  readonly repo: string;
  readonly configRepo?: string;
  readonly baseBranch: string;
  readonly issueLabel?: string;
}

export class McpGithubTracker implements MigrationTracker {
  readonly backend = 'mcp' as const;
  readonly #issues: { owner: string; repo: string };
  readonly #config: { owner: string; repo: string };
  readonly #label: string;

  constructor(
    private readonly caller: UpstreamToolCaller,
    private readonly options: McpTrackerOptions,
  ) {
    const [owner, repo] = options.repo.split('/') as [string, string];
    this.#issues = { owner, repo };
    const [cOwner, cRepo] = (options.configRepo ?? options.repo).split('/') as [string, string];
    this.#config = { owner: cOwner, repo: cRepo };
    this.#label = options.issueLabel ?? 'gateway-migration';
  }

  /** A tool's text answer, as JSON when `schema` is given; a tool error throws. */
  async #call<T>(tool: string, args: Record<string, unknown>, schema?: z.ZodType<T>): Promise<T> {
    const result = await this.caller.callTool(this.options.server, tool, args);
    const text = result.content
      .filter((c): c is { type: 'text'; text: string } => c.type === 'text')
      .map((c) => c.text)
      .join('');
    if (result.isError === true) {
      const message = `${tool}: ${text.slice(0, 300)}`;
      throw /\b(401|403|404|Bad credentials|Not Found)\b/.test(text) ? new PermanentTrackerError(message) : new Error(message);
    }
    if (schema === undefined) return undefined as T;
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      throw new Error(`${tool}: the answer is not JSON`);
    }
    const parsed = schema.safeParse(raw);
    if (!parsed.success) throw new Error(`${tool}: unexpected answer (${parsed.error.issues[0]?.message ?? 'invalid'})`);
    return parsed.data;
  }

  async ensureIssue(input: { marker: string; title: string; body: string; labels: readonly string[] }): Promise<TrackedRef> {
    // Open and closed issues with the label (list_issues returns both without `state`), scanned for the marker.
    let after: string | undefined;
    for (let page = 0; page < 20; page++) {
      const answer = await this.#call('list_issues', { ...this.#issues, labels: [this.#label], perPage: 100, ...(after !== undefined ? { after } : {}) }, listIssuesAnswer.extend({ pageInfo: z.object({ hasNextPage: z.boolean(), endCursor: z.string().nullable().optional() }).optional() }));
      const found = answer.issues.find((i) => (i.body ?? '').includes(input.marker));
      if (found !== undefined) return { number: found.number, url: `https://github.com/${this.options.repo}/issues/${found.number}` };
      if (answer.pageInfo?.hasNextPage !== true || !answer.pageInfo.endCursor) break;
      after = answer.pageInfo.endCursor;
    }
    const created = await this.#call('issue_write', { method: 'create', ...this.#issues, title: input.title, body: input.body, labels: [...new Set([this.#label, ...input.labels])] }, minimalResponse);
    return { number: numberIn(created.url, 'issues'), url: created.url };
  }

  async updateIssueBody(issue: number, body: string): Promise<void> {
    await this.#call('issue_write', { method: 'update', ...this.#issues, issue_number: issue, body });
  }

  async comment(issue: number, body: string): Promise<void> {
    await this.#call('add_issue_comment', { ...this.#issues, issue_number: issue, body });
  }

  async addLabels(issue: number, labels: readonly string[]): Promise<void> {
    // issue_write sets the whole label list: the migration label stays.
    await this.#call('issue_write', { method: 'update', ...this.#issues, issue_number: issue, labels: [...new Set([this.#label, ...labels])] });
  }

  async openPullRequest(input: { branch: string; title: string; body: string; path: string; content: string; message: string }): Promise<TrackedRef> {
    const repo = this.#config;
    const open = await this.#call('list_pull_requests', { ...repo, head: `${repo.owner}:${input.branch}`, state: 'open', perPage: 1 }, listPullsAnswer);
    if (open[0] !== undefined) return { number: open[0].number, url: open[0].html_url };
    await this.#call('create_branch', { ...repo, branch: input.branch, from_branch: this.options.baseBranch }).catch((err: Error) => {
      if (!/already exists|Reference already exists|422/i.test(err.message)) throw err;
    });
    await this.#call('create_or_update_file', { ...repo, path: input.path, content: input.content, message: input.message, branch: input.branch });
    const pr = await this.#call('create_pull_request', { ...repo, title: input.title, body: input.body, head: input.branch, base: this.options.baseBranch }, minimalResponse);
    return { number: numberIn(pr.url, 'pull'), url: pr.url };
  }
}
