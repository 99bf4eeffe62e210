import { afterAll, describe, expect, it } from 'vitest';
import { cleanup, runCli, writeTempFile } from '../helpers/gateway.js';

afterAll(cleanup);

const BAD_YAML = `
services:
  twin:
    url: http://127.0.0.1:9001
health:
  intervalMs: fast
`;

const GOOD_YAML = `
services:
  twin:
    urls: [http://127.0.0.1:9001, http://127.0.0.1:9002]
    timeoutMs: 5000
routes:
  - prefix: /v2/twin
    service: twin
    methods: [GET, POST]
    rewritePrefix: /v1/twin
health:
  intervalMs: 1000
  timeoutMs: 500
server:
  shutdownTimeoutMs: 2000
`;

describe('unified-gateway config check', () => {
  it('exits 1 and names the path of each bad key', async () => {
    const file = writeTempFile(BAD_YAML, 'bad.yaml');
    const res = await runCli(['config', 'check', '--file', file]);
    expect(res.code).toBe(1);
    const lines = res.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines).toContainEqual(expect.stringMatching(/services\.twin\.url: unknown key$/));
    expect(lines).toContainEqual(expect.stringMatching(/health\.intervalMs: .*number/));
    expect(res.stdout).not.toMatch(/^ok$/m);
  });

  it('prints "ok" and exits 0 for a good file', async () => {
    const file = writeTempFile(GOOD_YAML, 'good.yaml');
    const res = await runCli(['config', 'check', '--file', file]);
    expect(res.stderr).toBe('');
    expect(res.stdout).toBe('ok\n');
    expect(res.code).toBe(0);
  });

  it('checks the file named by GATEWAY_CONFIG when no --file is given', async () => {
    const res = await runCli(['config', 'check'], { GATEWAY_CONFIG: writeTempFile(BAD_YAML) });
    expect(res.code).toBe(1);
    expect(res.stdout).toMatch(/services\.twin\.url: unknown key/);
  });

  it('reports a file that is not YAML with its position', async () => {
    const res = await runCli(['config', 'check', '--file', writeTempFile('health: [1, 2\n')]);
    expect(res.code).toBe(1);
    expect(res.stdout).toMatch(/gateway\.yaml:\d+:\d+: /);
  });
});

describe('unified-gateway serve with a bad configuration', () => {
  it('exits 1 naming GATEWAY_PORT when it is not a number', async () => {
    const res = await runCli(['serve'], { GATEWAY_PORT: 'abc' });
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/^ {2}GATEWAY_PORT: /m);
    expect(res.stdout).not.toContain('gateway listening');
  });

  it('names every bad variable, one line each', async () => {
    const res = await runCli(['serve'], { GATEWAY_PORT: 'abc', ENABLE_METRICS: 'maybe', TWIN_SERVICE_URL: 'ftp://x' });
    expect(res.code).toBe(1);
    const problems = res.stderr.split('\n').filter((l) => l.startsWith('  '));
    expect(problems).toHaveLength(3);
    for (const key of ['GATEWAY_PORT', 'ENABLE_METRICS', 'TWIN_SERVICE_URL']) {
      expect(problems).toContainEqual(expect.stringMatching(new RegExp(`^ {2}${key}: `)));
    }
  });

  it('exits 1 naming the YAML key when GATEWAY_CONFIG is bad', async () => {
    const res = await runCli(['serve'], { GATEWAY_CONFIG: writeTempFile(BAD_YAML) });
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/services\.twin\.url: unknown key/);
  });
});
