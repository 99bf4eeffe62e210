/*
 * GitHub tracking of migrations: the one interface both backends implement
 * (mcp/integrations/github: Octokit with retry and throttling, or the federated GitHub MCP
 * server). The controller never calls it on its own path: calls are queued in the migration's
 * record and sent by src/migration/tracking.ts, retried with backoff.
 */

export interface TrackedRef {
  readonly number: number;
  readonly url: string;
}

export interface MigrationTracker {
  readonly backend: 'octokit' | 'mcp';
  /**
   * The open or closed issue whose body contains `marker`, else a new one: a restart (or a
   * retried call whose answer was lost) never opens a second issue.
   */
  ensureIssue(input: { readonly marker: string; readonly title: string; readonly body: string; readonly labels: readonly string[] }): Promise<TrackedRef>;
  updateIssueBody(issue: number, body: string): Promise<void>;
  comment(issue: number, body: string): Promise<void>;
  addLabels(issue: number, labels: readonly string[]): Promise<void>;
  /**
   * A pull request against the configuration repository: the branch `branch` from the base,
   * one file written on it, then the pull request (the existing one of that branch when a
   * retry finds it already open).
   */
  openPullRequest(input: {
    readonly branch: string;
    readonly title: string;
    readonly body: string;
    readonly path: string;
    readonly content: string;
    readonly message: string;
  }): Promise<TrackedRef>;
}

/** A tracker error that retrying cannot fix (bad credentials, a repository that does not exist): the call is given up at once. */
export class PermanentTrackerError extends Error {}
