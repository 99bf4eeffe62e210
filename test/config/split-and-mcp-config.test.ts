import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, type GatewayConfig, type LoadResult } from '../../src/config/index.js';

const dir = mkdtempSync(join(tmpdir(), 'gw-split-config-'));
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

describe('routes[].split', () => {
  it('a canary URL set becomes the service <service>-canary with the stable settings', () => {
    const config = ok(load('services:\n  twin: { timeoutMs: 1234 }\nroutes:\n  - { prefix: /v1/twin, service: twin, split: { canary: { urls: [http://twin-v2:8001] }, weights: { stable: 90, canary: 10 } } }\n'));
    const route = config.routes.find((r) => r.prefix === '/v1/twin')!;
    expect(route.split).toEqual({ canaryService: 'twin-canary', weights: { stable: 90, canary: 10 }, sticky: 'cookie' });
    expect(config.services['twin-canary']).toMatchObject({ urls: ['http://twin-v2:8001'], timeoutMs: 1234, canaryOf: 'twin', enabled: true });
  });

  it('defaults to all-stable and accepts another service as the canary', () => {
    const config = ok(load('routes:\n  - { prefix: /v1/twin, service: twin, split: { canary: { service: knowledge }, sticky: ip } }\n'));
    expect(config.routes.find((r) => r.prefix === '/v1/twin')!.split).toEqual({ canaryService: 'knowledge', weights: { stable: 100, canary: 0 }, sticky: 'ip' });
  });

  it('names each problem by its key', () => {
    expect(problems(load('routes:\n  - { prefix: /v1/twin, service: twin, split: { canary: { service: knowledge }, weights: { stable: 60, canary: 30 } } }\n'))).toContain(
      'stable + canary must be 100',
    );
    expect(problems(load('routes:\n  - { prefix: /v1/twin, service: twin, split: { canary: { service: twin } } }\n'))).toContain('routes[0].split.canary.service: the canary must be another service');
    expect(problems(load('routes:\n  - { prefix: /v1/twin, service: twin, split: { canary: { service: nope } } }\n'))).toContain('routes[0].split.canary.service: unknown service "nope"');
    expect(problems(load('routes:\n  - { prefix: /v1/twin, service: twin, split: { canary: { path: /x } } }\n'))).toContain('canary is { service: <name> } or { urls: [<url>, ...] }');
    expect(
      problems(
        load(
          'routes:\n  - { prefix: /v1/twin, service: twin, split: { canary: { urls: [http://a:1] } } }\n  - { prefix: /v1/twin2, service: twin, split: { canary: { urls: [http://b:1] } } }\n',
        ),
      ),
    ).toContain('routes[1].split.canary.urls: the service "twin-canary" already exists with other URLs');
  });
});

describe('MCP settings', () => {
  it('MCP_REQUIRE_AUTH=false is accepted outside production and refused in production', () => {
    expect(ok(loadConfig({ MCP_REQUIRE_AUTH: 'false' })).mcp).toMatchObject({ requireAuth: false, enabled: true, maxStreams: 200 });
    const secrets = { SECRET_KEY: 's'.repeat(40), JWT_SECRET_KEY: 'j'.repeat(40), API_KEY: 'k'.repeat(40) };
    const refused = loadConfig({ ENVIRONMENT: 'production', MCP_REQUIRE_AUTH: 'false', ...secrets });
    expect(refused.ok).toBe(false);
    expect(problems(refused)).toContain('MCP_REQUIRE_AUTH: cannot be false when ENVIRONMENT=production');
    expect(ok(loadConfig({ ENVIRONMENT: 'production', ...secrets })).mcp.requireAuth).toBe(true);
  });

  it('validates the mcp block', () => {
    expect(ok(load('mcp:\n  allowedOrigins: [https://console.example.org]\n  maxStreams: 5\n')).mcp).toMatchObject({ allowedOrigins: ['https://console.example.org'], maxStreams: 5 });
    expect(problems(load('mcp:\n  allowedOrigins: [https://console.example.org/path]\n'))).toContain('mcp.allowedOrigins[0]');
    expect(problems(load('mcp:\n  sessions: 3\n'))).toContain('mcp');
    // The session caps of the 2025-only gateway are gone (sessions are state-store records now): named as unknown.
    expect(problems(load('mcp:\n  maxSessions: 3\n'))).toContain('mcp');
  });

  it('validates mcp.allowedHosts: host names without scheme or port, lower-cased', () => {
    expect(ok(load('mcp:\n  allowedHosts: [Gateway.Example.ORG, "[::1]", 10.0.0.5]\n')).mcp.allowedHosts).toEqual(['gateway.example.org', '[::1]', '10.0.0.5']);
    for (const bad of ['https://gateway.example.org', 'gateway.example.org:8000', '"::1"', '""']) {
      expect(problems(load(`mcp:\n  allowedHosts: [${bad}]\n`))).toContain('mcp.allowedHosts[0]');
    }
  });

  it('stream caps: defaults well under maxStreams, an admin reserve that scales with it, and a reserve smaller than the total', () => {
    expect(ok(loadConfig({})).mcp).toMatchObject({ maxStreams: 200, maxStreamsPerPrincipal: 10, maxStreamsPerAddress: 20, adminReservedStreams: 20, sessionIdleSeconds: 1800, streamRetryMs: 1000 });
    expect(ok(load('mcp:\n  maxStreams: 5\n')).mcp.adminReservedStreams).toBe(1);
    expect(ok(load('mcp:\n  maxStreams: 1\n')).mcp.adminReservedStreams).toBe(0);
    expect(ok(load('mcp:\n  maxStreams: 40\n  adminReservedStreams: 0\n')).mcp.adminReservedStreams).toBe(0);
    expect(problems(load('mcp:\n  maxStreams: 10\n  adminReservedStreams: 10\n'))).toContain('mcp.adminReservedStreams: must be less than maxStreams');
  });
});
