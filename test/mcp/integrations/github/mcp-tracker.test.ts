import { afterEach, describe, expect, it } from 'vitest';
import { McpGithubTracker } from '../../../../mcp/integrations/github/mcp-tracker.js';
import { cleanup, onCleanup } from '../../../helpers/gateway.js';
import { githubApi } from '../../../helpers/github-api.js';
import { githubMcp } from '../../../helpers/github-mcp.js';

afterEach(cleanup);

describe('GitHub MCP server migration tracker (official tool names and schemas, in front of the validating API)', () => {
  it('opens one issue per marker, ticks, comments, labels and opens the pull request', async () => {
    const api = await githubApi();
    const mcp = await githubMcp(api.url);
    onCleanup(() => mcp.close());
    const tracker = new McpGithubTracker(mcp.caller, { server: 'github', repo: 'village/gateway', configRepo: 'village/config', baseBranch: 'main' });
    const issue = await tracker.ensureIssue({ marker: '<!-- m:1 -->', title: 'Migration of twin', body: '<!-- m:1 -->\n- [ ] Step 1', labels: ['gateway-migration'] });
    expect(issue).toEqual({ number: 1, url: 'https://github.com/village/gateway/issues/1' });
    expect((await tracker.ensureIssue({ marker: '<!-- m:1 -->', title: 'again', body: '<!-- m:1 -->', labels: [] })).number).toBe(1);
    expect(api.issues.size).toBe(1);
    await tracker.updateIssueBody(1, '<!-- m:1 -->\n- [x] Step 1');
    await tracker.comment(1, 'Step 1 (10%) passed.');
    await tracker.addLabels(1, ['migration-rolled-back']);
    expect(api.issues.get(1)).toMatchObject({ body: '<!-- m:1 -->\n- [x] Step 1', comments: ['Step 1 (10%) passed.'], labels: ['gateway-migration', 'migration-rolled-back'] });
    const input = { branch: 'gateway-migration/m1', title: 'Promote', body: 'figures', path: 'migrations/twin.yaml', content: 'routes: []\n', message: 'promote' };
    const pr = await tracker.openPullRequest(input);
    expect(pr.url).toMatch(/^https:\/\/github\.com\/village\/config\/pull\/\d+$/);
    expect(await tracker.openPullRequest(input)).toEqual(pr);
    expect(api.pulls.size).toBe(1);
    expect(new Set(mcp.calls)).toEqual(new Set(['list_issues', 'issue_write', 'add_issue_comment', 'list_pull_requests', 'create_branch', 'create_or_update_file', 'create_pull_request']));
    expect(mcp.violations.join('\n')).toBe('');
    expect(api.violations.join('\n')).toBe('');
  });
});
