import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { PROBE_EXIT, runMcpProbe, type McpProbeOptions } from '../../src/cli/mcp-probe.js';

/* `unified-gateway mcp probe` in process: its output and exit codes against a real stdio server. */

const require = createRequire(import.meta.url);
const EVERYTHING = join(require.resolve('@modelcontextprotocol/server-everything/package.json'), '..', 'dist', 'index.js');

async function probe(opts: McpProbeOptions, env: NodeJS.ProcessEnv = { PATH: process.env.PATH }): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const sink = (append: (s: string) => void) => new Writable({ write: (c: Buffer, _e, done) => (append(c.toString()), done()) });
  const code = await runMcpProbe(opts, sink((s) => (out += s)), sink((s) => (err += s)), env);
  return { code, out, err };
}

const everything = { command: process.execPath, arg: [EVERYTHING, 'stdio'] };

describe('mcp probe', () => {
  it('connects, lists, calls in order, and exits 0', async () => {
    const r = await probe({ ...everything, call: ['echo', 'get-sum'], args: ['{"message":"probe says hi"}', '{"a":2,"b":3}'] });
    expect(r.code).toBe(PROBE_EXIT.ok);
    expect(r.out).toMatch(/^connected to .*: mcp-servers\/everything .*, protocol 2025-11-25$/m);
    expect(r.out).toMatch(/^tools \(\d+\):\n {2}echo \[read-only\]/m);
    expect(r.out).toContain('call echo: ok');
    expect(r.out).toContain('probe says hi');
    expect(r.out.indexOf('call echo')).toBeLessThan(r.out.indexOf('call get-sum'));
    expect(r.out).toMatch(/call get-sum: ok[\s\S]*5/);
  }, 30_000);

  it('prints one JSON document with --json', async () => {
    const r = await probe({ ...everything, json: true });
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.out) as { protocolVersion: string; tools: { name: string }[]; prompts: unknown[] };
    expect(doc.protocolVersion).toBe('2025-11-25');
    expect(doc.tools.map((t) => t.name)).toContain('echo');
    expect(doc.prompts.length).toBeGreaterThan(0);
  }, 30_000);

  it('exits 3 when a call fails, 1 when the server cannot be reached, 2 for bad options', async () => {
    expect((await probe({ ...everything, call: ['no-such-tool'] })).code).toBe(PROBE_EXIT.callFailed);
    const unreachable = await probe({ url: 'http://127.0.0.1:1/mcp', timeout: '2000' });
    expect(unreachable.code).toBe(PROBE_EXIT.unreachable);
    expect(unreachable.err).toMatch(/^mcp probe: cannot connect to http:\/\/127\.0\.0\.1:1\/mcp/);
    for (const bad of [{}, { url: 'http://a', command: 'x' }, { url: 'ftp://a' }, { url: 'http://a', args: ['{}'] }, { url: 'http://a', call: ['t'], args: ['[1]'] }, { url: 'http://a', protocol: '2024-01-01' }, { url: 'http://a', bearerEnv: 'UNSET_TOKEN_VAR' }] as McpProbeOptions[]) {
      const r = await probe(bad);
      expect({ bad, code: r.code }).toEqual({ bad, code: PROBE_EXIT.usage });
      expect(r.err.trim().split('\n')).toHaveLength(1);
    }
  }, 30_000);

  it('sends --bearer-env from the environment, never from the command line', async () => {
    const r = await probe({ url: 'http://127.0.0.1:1/mcp', bearerEnv: 'PROBE_TOKEN', timeout: '1000' }, { PROBE_TOKEN: 'tok-secret-abc' });
    expect(r.code).toBe(PROBE_EXIT.unreachable);
    expect(r.err + r.out).not.toContain('tok-secret-abc');
  }, 30_000);
});
