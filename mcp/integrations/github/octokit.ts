import { retry } from '@octokit/plugin-retry';
import { throttling } from '@octokit/plugin-throttling';
import { Octokit } from '@octokit/rest';
import { PermanentTrackerError, type MigrationTracker, type TrackedRef } from '../../../src/migration/tracker.js';

/*
 * The migration tracker over GitHub's REST API (src/migration/tracker.ts): @octokit/rest with
 * the retry plugin (5xx and network errors, a few times) and the throttling plugin (waits out
 * primary and secondary rate limits, twice, then fails the call: the tracking queue retries it
 * later with its own backoff). GitHub Enterprise through `baseUrl`.
 */

const MigratingOctokit = Octokit.plugin(retry, throttling);

export interface OctokitTrackerOptions {
  /** owner/name of the repository of the issues. */
  readonly repo: string;
  /** owner/name of the configuration repository of the pull requests (default: `repo`). */
  readonly configRepo?: string;
  readonly baseBranch: string;
  readonly baseUrl: string;
  readonly token?: string;
  /** The label every migration issue has (the marker search lists those). */
  readonly issueLabel?: string;
  readonly log?: { warn(obj: object, msg: string): void };
  /** Tests: shorter retry waits. */
  readonly retryAfterBaseValue?: number;
}

const split = (repo: string) => {
  const [owner, name] = repo.split('/') as [string, string];
  return { owner, repo: name };
};

/** Statuses retrying cannot fix. */
function classify(err: unknown): never {
  const status = (err as { status?: number }).status;
  const message = (err as Error).message ?? String(err);
  if (status === 401 || status === 403 || status === 404 || status === 422) throw new PermanentTrackerError(`GitHub ${status}: ${message}`);
  throw err instanceof Error ? err : new Error(message);
}

export class OctokitTracker implements MigrationTracker {
  readonly backend = 'octokit' as const;
  readonly #octokit: InstanceType<typeof MigratingOctokit>;
  readonly #issues: { owner: string; repo: string };
  readonly #config: { owner: string; repo: string };
  readonly #label: string;

  constructor(private readonly options: OctokitTrackerOptions) {
    const log = options.log;
    this.#octokit = new MigratingOctokit({
      baseUrl: options.baseUrl.replace(/\/$/, ''),
      ...(options.token !== undefined ? { auth: options.token } : {}),
      userAgent: 'unified-gateway-migrations',
      log: { debug() {}, info() {}, warn: (msg: string) => log?.warn({}, `github: ${msg}`), error: (msg: string) => log?.warn({}, `github: ${msg}`) },
      ...(options.retryAfterBaseValue !== undefined ? { retry: { retryAfterBaseValue: options.retryAfterBaseValue } } : {}),
      throttle: {
        onRateLimit: (_after: number, _o: unknown, _k: unknown, retryCount: number) => retryCount < 2,
        onSecondaryRateLimit: (_after: number, _o: unknown, _k: unknown, retryCount: number) => retryCount < 2,
      },
    });
    this.#issues = split(options.repo);
    this.#config = split(options.configRepo ?? options.repo);
    this.#label = options.issueLabel ?? 'gateway-migration';
  }

  async ensureIssue(input: { marker: string; title: string; body: string; labels: readonly string[] }): Promise<TrackedRef> {
    try {
      // Issues with the label, open or closed, scanned for the marker (the search API's index lags; this list does not).
      const existing = await this.#octokit.paginate(this.#octokit.rest.issues.listForRepo, { ...this.#issues, labels: this.#label, state: 'all', per_page: 100 });
      const found = existing.find((i) => i.pull_request === undefined && (i.body ?? '').includes(input.marker));
      if (found !== undefined) return { number: found.number, url: found.html_url };
      const created = await this.#octokit.rest.issues.create({ ...this.#issues, title: input.title, body: input.body, labels: [...new Set([this.#label, ...input.labels])] });
      return { number: created.data.number, url: created.data.html_url };
    } catch (err) {
      return classify(err);
    }
  }

  async updateIssueBody(issue: number, body: string): Promise<void> {
    await this.#octokit.rest.issues.update({ ...this.#issues, issue_number: issue, body }).catch(classify);
  }

  async comment(issue: number, body: string): Promise<void> {
    await this.#octokit.rest.issues.createComment({ ...this.#issues, issue_number: issue, body }).catch(classify);
  }

  async addLabels(issue: number, labels: readonly string[]): Promise<void> {
    await this.#octokit.rest.issues.addLabels({ ...this.#issues, issue_number: issue, labels: [...labels] }).catch(classify);
  }

  async openPullRequest(input: { branch: string; title: string; body: string; path: string; content: string; message: string }): Promise<TrackedRef> {
    const o = this.#octokit.rest;
    const repo = this.#config;
    const base = this.options.baseBranch;
    try {
      // Each step is idempotent, so a retry after a lost answer goes on where it stopped.
      const open = await o.pulls.list({ ...repo, head: `${repo.owner}:${input.branch}`, state: 'open', per_page: 1 });
      if (open.data[0] !== undefined) return { number: open.data[0].number, url: open.data[0].html_url };
      const baseRef = await o.git.getRef({ ...repo, ref: `heads/${base}` });
      await o.git.createRef({ ...repo, ref: `refs/heads/${input.branch}`, sha: baseRef.data.object.sha }).catch((err: { status?: number }) => {
        if (err.status !== 422) throw err; // 422: the branch exists (a retry)
      });
      const sha = await o.repos
        .getContent({ ...repo, path: input.path, ref: input.branch })
        .then((r) => (!Array.isArray(r.data) && 'sha' in r.data ? r.data.sha : undefined))
        .catch((err: { status?: number }) => {
          if (err.status === 404) return undefined;
          throw err;
        });
      await o.repos.createOrUpdateFileContents({
        ...repo,
        path: input.path,
        message: input.message,
        content: Buffer.from(input.content, 'utf8').toString('base64'),
        branch: input.branch,
        ...(sha !== undefined ? { sha } : {}),
      });
      const pr = await o.pulls.create({ ...repo, title: input.title, body: input.body, head: input.branch, base });
      return { number: pr.data.number, url: pr.data.html_url };
    } catch (err) {
      return classify(err);
    }
  }
}
