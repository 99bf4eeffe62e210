import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, redactConfig, type GatewayConfig, type LoadResult } from '../../src/config/index.js';

/* mcp.servers.<name> and mcp.dataDir (upstream MCP servers, mcp/clients). */

const dir = mkdtempSync(join(tmpdir(), 'gw-mcp-servers-config-'));
let n = 0;
function load(yaml: string, env: Record<string, string> = {}): LoadResult {
  const file = join(dir, `c${n++}.yaml`);
  writeFileSync(file, yaml);
  return loadConfig(env, { file });
}
function ok(result: LoadResult): GatewayConfig {
  if (!result.ok) throw new Error(`expected ok, got:\n${result.problems.join('\n')}`);
  return result.config;
}
function problems(result: LoadResult): string {
  if (result.ok) throw new Error('expected problems, config was accepted');
  return result.problems.join('\n');
}

describe('mcp.servers', () => {
  it('has none by default, and a data directory of ./data', () => {
    const config = ok(loadConfig({}));
    expect(config.mcp.servers).toEqual({});
    expect(config.mcp.dataDir).toBe(resolve('./data'));
  });

  it('expands the stdio presets to the project Node and the package bin, memory with its file in dataDir', () => {
    const config = ok(load('mcp:\n  dataDir: /var/lib/gw\n  servers:\n    memory: { preset: memory }\n    thinking: { preset: sequential-thinking, args: [--flag] }\n', { PATH: '/usr/bin', HOME: '/home/gw', SECRET_KEY: 'do-not-pass' }));
    const memory = config.mcp.servers.memory!;
    expect(memory).toMatchObject({ name: 'memory', preset: 'memory', enabled: true, federate: true, toolPrefix: 'memory__', timeoutMs: 30_000, protocolVersion: 'auto' });
    expect(memory.transport.kind).toBe('stdio');
    if (memory.transport.kind !== 'stdio') throw new Error('stdio');
    expect(memory.transport.command).toBe(process.execPath);
    expect(memory.transport.args[0]).toMatch(/server-memory[/\\]dist[/\\]index\.js$/);
    // Exactly the configured environment plus basics; never the gateway's secrets.
    expect(memory.transport.env).toEqual({ PATH: '/usr/bin', HOME: '/home/gw', MEMORY_FILE_PATH: '/var/lib/gw/memory.jsonl' });
    const thinking = config.mcp.servers.thinking!;
    if (thinking.transport.kind !== 'stdio') throw new Error('stdio');
    expect(thinking.transport.args.at(-1)).toBe('--flag');
    expect(thinking.transport.args[0]).toMatch(/server-sequential-thinking/);
  });

  it('keeps network presets off until enabled; github and huggingface are remote with their token from the environment', () => {
    const off = ok(load('mcp:\n  servers:\n    github: { preset: github }\n    hf: { preset: huggingface }\n    docs: { preset: context7 }\n'));
    expect(Object.values(off.mcp.servers).map((s) => [s.name, s.enabled])).toEqual([
      ['github', false],
      ['hf', false],
      ['docs', false],
    ]);
    const on = ok(load('mcp:\n  servers:\n    github: { preset: github, enabled: true }\n    hf: { preset: huggingface, enabled: true }\n    docs: { preset: context7, enabled: true }\n', { GITHUB_TOKEN: 'ghp_secret123', HF_TOKEN: 'hf_secret456' }));
    expect(on.mcp.servers.github!.transport).toEqual({ kind: 'http', url: 'https://api.githubcopilot.com/mcp/', headers: { Authorization: 'Bearer ghp_secret123' } });
    expect(on.mcp.servers.hf!.transport).toEqual({ kind: 'http', url: 'https://huggingface.co/mcp', headers: { Authorization: 'Bearer hf_secret456' } });
    // context7 over stdio; its API key is optional: left out when unset.
    const docs = on.mcp.servers.docs!.transport;
    if (docs.kind !== 'stdio') throw new Error('stdio');
    expect(Object.keys(docs.env)).not.toContain('CONTEXT7_API_KEY');
    expect(docs.args.join(' ')).toMatch(/context7-mcp.*--transport stdio$/);
    // A local github-mcp-server instead of the remote one.
    const local = ok(load('mcp:\n  servers:\n    github: { preset: github, command: github-mcp-server, args: [stdio], env: { GITHUB_PERSONAL_ACCESS_TOKEN: "${GITHUB_TOKEN}" } }\n', { GITHUB_TOKEN: 'ghp_x1234567' }));
    expect(local.mcp.servers.github).toMatchObject({ enabled: true, transport: { kind: 'stdio', command: 'github-mcp-server', args: ['stdio'], env: { GITHUB_PERSONAL_ACCESS_TOKEN: 'ghp_x1234567' } } });
  });

  it('resolves ${VAR} in env and headers, names a missing one for enabled servers only, and never shows the values', () => {
    const yaml = 'mcp:\n  servers:\n    remote:\n      url: https://mcp.example.org/mcp\n      headers: { Authorization: "Bearer ${REMOTE_TOKEN}", X-Team: "team-${TEAM}" }\n';
    expect(problems(load(yaml, { TEAM: 'a' }))).toContain('mcp.servers.remote: references ${REMOTE_TOKEN}, not set in the environment');
    ok(load(yaml.replace('url:', 'enabled: false\n      url:'), { TEAM: 'a' }));
    const config = ok(load(yaml, { REMOTE_TOKEN: 'tok-very-secret', TEAM: 'blue' }));
    expect(config.mcp.servers.remote!.transport).toEqual({ kind: 'http', url: 'https://mcp.example.org/mcp', headers: { Authorization: 'Bearer tok-very-secret', 'X-Team': 'team-blue' } });
    const shown = JSON.stringify(redactConfig(config));
    expect(shown).not.toContain('tok-very-secret');
    expect(shown).toContain('"Authorization":"***"');
    const stdio = ok(load('mcp:\n  servers:\n    s:\n      command: /bin/server\n      env: { API_KEY_X: "${S_KEY}" }\n', { S_KEY: 'sk-abcdef' }));
    expect(JSON.stringify(redactConfig(stdio))).not.toContain('sk-abcdef');
  });

  it('refuses bad names, no transport, both transports, and colliding prefixes, each naming its key', () => {
    expect(problems(load('mcp:\n  servers:\n    Bad_Name: { command: x }\n'))).toContain('mcp.servers.Bad_Name');
    expect(problems(load('mcp:\n  servers:\n    a: { enabled: true }\n'))).toContain('mcp.servers.a: needs a preset, a command (stdio) or a url');
    expect(problems(load('mcp:\n  servers:\n    a: { command: x, url: "http://h/mcp" }\n'))).toContain('mcp.servers.a: command (stdio) and url (Streamable HTTP) exclude each other');
    expect(problems(load('mcp:\n  servers:\n    a: { url: "http://h/mcp", env: { A: b } }\n'))).toContain('args, env and cwd belong to a command');
    expect(problems(load('mcp:\n  servers:\n    a: { command: x, toolPrefix: p_ }\n    b: { command: y, toolPrefix: p_ }\n'))).toContain('mcp.servers.b.toolPrefix: "p_" is also the prefix of a');
    expect(problems(load('mcp:\n  servers:\n    a: { command: x, scopes: { "*": root } }\n'))).toContain('mcp.servers.a.scopes');
    expect(problems(load('mcp:\n  servers:\n    a: { command: x, unknown: 1 }\n'))).toContain('mcp.servers.a.unknown: unknown key');
  });

  it('keeps the federation settings: prefix (off with ""), allow/deny globs, scopes, a per-tool rate limit', () => {
    const config = ok(load('mcp:\n  servers:\n    fx:\n      command: /bin/fx\n      toolPrefix: ""\n      tools: { allow: ["get_*"], deny: [get_secret] }\n      scopes: { "get_*": read, "*": admin }\n      rateLimit: { requests: 10, windowSeconds: 60 }\n      protocolVersion: 2026-07-28\n'));
    expect(config.mcp.servers.fx).toMatchObject({
      toolPrefix: '',
      tools: { allow: ['get_*'], deny: ['get_secret'] },
      scopes: { 'get_*': 'read', '*': 'admin' },
      rateLimit: { requests: 10, windowSeconds: 60 },
      protocolVersion: '2026-07-28',
    });
  });
});
