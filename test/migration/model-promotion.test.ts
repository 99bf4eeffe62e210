import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { OctokitTracker } from '../../mcp/integrations/github/octokit.js';
import { loadConfig } from '../../src/config/index.js';
import { ModelPromotionTracking } from '../../src/migration/model-promotion.js';
import { MemoryStore } from '../../src/state/index.js';
import { cleanup } from '../helpers/gateway.js';
import { githubApi } from '../helpers/github-api.js';

afterEach(cleanup);
const quiet = { warn() {}, info() {} };

describe('routing-model promotion pull request', () => {
  it('opens one pull request with the model card, retried with backoff after a failure', async () => {
    const api = await githubApi();
    const dir = mkdtempSync(join(tmpdir(), 'gw-models-'));
    mkdirSync(join(dir, 'models'));
    writeFileSync(join(dir, 'models', 'rm-abc123.md'), '# Model card rm-abc123\n\nmacro-F1 0.97\n');
    const r = loadConfig({ GATEWAY_PORT: '0' }, {});
    if (!r.ok) throw new Error(r.problems.join('\n'));
    const clock = { t: Date.parse('2026-12-01T00:00:00Z') };
    const tracking = new ModelPromotionTracking(
      new OctokitTracker({ repo: 'village/gateway', configRepo: 'village/config', baseBranch: 'main', baseUrl: api.url, retryAfterBaseValue: 1 }),
      { ...r.config.migration.tracking, maxAttempts: 5 },
      new MemoryStore({ sweepIntervalMs: 0 }),
      dir,
      quiet,
      () => clock.t,
    );
    // The first attempt meets a GitHub that fails every call (including the client's own retries).
    api.failNext(4, 503);
    await tracking.promoted('rm-abc123', 'key:ops');
    await tracking.process();
    let [job] = await tracking.jobs();
    expect(job).toMatchObject({ model: 'rm-abc123', status: 'pending', attempts: 1 });
    expect(job!.lastError).toBeDefined();
    // Not before its backoff ...
    await tracking.process();
    expect((await tracking.jobs())[0]!.attempts).toBe(1);
    clock.t += 1500;
    await tracking.process();
    [job] = await tracking.jobs();
    expect(job).toMatchObject({ status: 'done', attempts: 2, pullRequest: { url: expect.stringMatching(/village\/config\/pull\/\d+$/) } });
    expect(api.pulls.size).toBe(1);
    expect([...api.pulls.values()][0]!.body).toContain('# Model card rm-abc123');
    expect(api.files.get('routing-model/rm-abc123:routing-models/models/rm-abc123.md')).toBe('# Model card rm-abc123\n\nmacro-F1 0.97\n');
    expect(api.violations.join('\n')).toBe('');
  });
});
