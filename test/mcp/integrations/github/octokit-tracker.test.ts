import { afterEach, describe, expect, it } from 'vitest';
import { OctokitTracker } from '../../../../mcp/integrations/github/octokit.js';
import { PermanentTrackerError } from '../../../../src/migration/tracker.js';
import { cleanup } from '../../../helpers/gateway.js';
import { githubApi } from '../../../helpers/github-api.js';

afterEach(cleanup);

describe('Octokit migration tracker against a server validating GitHub\'s OpenAPI description', () => {
  it('opens one issue per marker, ticks, comments, labels, and opens the pull request with the file', async () => {
    const api = await githubApi();
    const tracker = new OctokitTracker({ repo: 'village/gateway', configRepo: 'village/config', baseBranch: 'main', baseUrl: api.url, token: 'ghp_test', retryAfterBaseValue: 1 });
    const issue = await tracker.ensureIssue({ marker: '<!-- m:1 -->', title: 'Migration of twin', body: '<!-- m:1 -->\n- [ ] Step 1', labels: ['gateway-migration'] });
    expect(issue.number).toBe(1);
    expect(issue.url).toBe('https://github.com/village/gateway/issues/1');
    // A restart (or a retry whose answer was lost) finds it by its marker.
    expect(await tracker.ensureIssue({ marker: '<!-- m:1 -->', title: 'again', body: '<!-- m:1 -->', labels: [] })).toEqual(issue);
    expect(api.issues.size).toBe(1);
    await tracker.updateIssueBody(1, '<!-- m:1 -->\n- [x] Step 1');
    await tracker.comment(1, 'Step 1 (10%) passed.');
    await tracker.addLabels(1, ['migration-rolled-back']);
    expect(api.issues.get(1)).toMatchObject({ body: '<!-- m:1 -->\n- [x] Step 1', comments: ['Step 1 (10%) passed.'], labels: ['gateway-migration', 'migration-rolled-back'] });
    const pr = await tracker.openPullRequest({ branch: 'gateway-migration/m1', title: 'Promote', body: 'figures', path: 'migrations/twin.yaml', content: 'routes: []\n', message: 'promote' });
    expect(pr.url).toMatch(/^https:\/\/github\.com\/village\/config\/pull\/\d+$/);
    expect(api.files.get('gateway-migration/m1:migrations/twin.yaml')).toBe('routes: []\n');
    // Retried after a lost answer: the same pull request, not a second one.
    expect(await tracker.openPullRequest({ branch: 'gateway-migration/m1', title: 'Promote', body: 'figures', path: 'migrations/twin.yaml', content: 'routes: []\n', message: 'promote' })).toEqual(pr);
    expect(api.pulls.size).toBe(1);
    expect(api.violations.join("\n")).toBe("");
  });

  it('retries server errors (plugin-retry) and gives up at once on what retrying cannot fix', async () => {
    const api = await githubApi();
    const tracker = new OctokitTracker({ repo: 'village/gateway', baseBranch: 'main', baseUrl: api.url, retryAfterBaseValue: 1 });
    api.failNext(2, 502);
    const issue = await tracker.ensureIssue({ marker: '<!-- m:2 -->', title: 't', body: '<!-- m:2 -->', labels: [] });
    expect(issue.number).toBe(1);
    expect(api.requests.filter((r) => r === 'GET /repos/village/gateway/issues').length).toBe(3);
    await expect(tracker.comment(99, 'nobody')).rejects.toBeInstanceOf(PermanentTrackerError);
    expect(api.violations.join("\n")).toBe("");
  });
});
