import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, redactConfig, type GatewayConfig, type LoadResult } from '../../src/config/index.js';

const dir = mkdtempSync(join(tmpdir(), 'gw-config-'));
function yamlFile(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}
function ok(result: LoadResult): GatewayConfig {
  if (!result.ok) throw new Error(`expected ok, got:\n${result.problems.join('\n')}`);
  return result.config;
}
function problems(result: LoadResult): string[] {
  if (result.ok) throw new Error('expected problems, config was accepted');
  return result.problems;
}

describe('loadConfig: environment', () => {
  it('has working defaults with an empty environment', () => {
    const config = ok(loadConfig({}));
    expect(config.server).toMatchObject({ host: '0.0.0.0', port: 8000 });
    expect(config.proxy).toEqual({ connectionPoolSize: 100, requestQueueSize: 1000, requestTimeoutMs: 30_000 });
    expect(config.services.twin?.urls).toEqual(['http://localhost:8001']);
    expect(config.services.p2p?.urls).toEqual(['http://localhost:8005']);
    expect(config.routes.map((r) => r.prefix)).toEqual(['/v1/twin', '/v1/agents', '/v1/knowledge', '/v1/fog', '/v1/p2p']);
    expect(config.metrics.enabled).toBe(true);
  });

  it('reads every service URL, sizes and switches from the environment', () => {
    const config = ok(
      loadConfig({
        GATEWAY_PORT: '9000',
        TWIN_SERVICE_URL: 'http://twin.internal:7000/api/',
        AGENT_CONTROLLER_URL: 'http://agents:1',
        KNOWLEDGE_SYSTEM_URL: 'http://knowledge:2',
        FOG_COORDINATOR_URL: 'http://fog:3',
        P2P_BRIDGE_URL: 'https://p2p:4',
        CONNECTION_POOL_SIZE: '8',
        REQUEST_TIMEOUT: '2.5',
        ENABLE_P2P_FOG: 'false',
        ENABLE_METRICS: '0',
      }),
    );
    expect(config.server.port).toBe(9000);
    expect(config.services.twin?.urls).toEqual(['http://twin.internal:7000/api/']);
    expect(config.services['agent-controller']?.urls).toEqual(['http://agents:1']);
    expect(config.proxy.connectionPoolSize).toBe(8);
    expect(config.proxy.requestTimeoutMs).toBe(2500);
    expect(config.services.twin?.timeoutMs).toBe(2500);
    expect(config.services.fog).toMatchObject({ enabled: false, disabledBy: 'ENABLE_P2P_FOG=false' });
    expect(config.services.p2p?.enabled).toBe(false);
    expect(config.services.knowledge?.enabled).toBe(true);
    expect(config.metrics.enabled).toBe(false);
  });

  it('names each bad variable on its own line', () => {
    const lines = problems(loadConfig({ GATEWAY_PORT: 'abc', ENABLE_METRICS: 'maybe', TWIN_SERVICE_URL: 'ftp://x', CONNECTION_POOL_SIZE: '0' }));
    expect(lines).toHaveLength(4);
    expect(lines.some((l) => l.startsWith('GATEWAY_PORT: '))).toBe(true);
    expect(lines.some((l) => l.startsWith('ENABLE_METRICS: '))).toBe(true);
    expect(lines.some((l) => l.startsWith('TWIN_SERVICE_URL: '))).toBe(true);
    expect(lines.some((l) => l.startsWith('CONNECTION_POOL_SIZE: '))).toBe(true);
  });

  it('treats an empty variable as unset', () => {
    expect(ok(loadConfig({ GATEWAY_PORT: '' })).server.port).toBe(8000);
  });

  it('refuses default and short secrets in production, and requires them', () => {
    const missing = problems(loadConfig({ ENVIRONMENT: 'production' }));
    expect(missing).toEqual(['SECRET_KEY: required when ENVIRONMENT=production', 'JWT_SECRET_KEY: required when ENVIRONMENT=production']);
    const weak = problems(loadConfig({ ENVIRONMENT: 'production', SECRET_KEY: 'changeme', JWT_SECRET_KEY: 'short', API_KEY: 'x'.repeat(40) }));
    expect(weak).toHaveLength(2);
    expect(weak[0]).toMatch(/^SECRET_KEY: is a well-known default/);
    expect(weak[1]).toMatch(/^JWT_SECRET_KEY: must be at least 32 characters/);
    ok(loadConfig({ ENVIRONMENT: 'production', SECRET_KEY: 'a'.repeat(32), JWT_SECRET_KEY: 'b'.repeat(48) }));
  });

  it('allows short secrets outside production', () => {
    ok(loadConfig({ SECRET_KEY: 'dev', JWT_SECRET_KEY: 'dev' }));
  });
});

describe('loadConfig: YAML file', () => {
  it('adds services and routes, and a file route replaces the default with the same prefix', () => {
    const file = yamlFile(
      'good.yaml',
      `
services:
  twin:
    urls: [http://a:1, http://b:2]
    timeoutMs: 1500
  search:
    urls: [http://search:9]
    healthPath: /ping
routes:
  - prefix: /v1/twin
    service: twin
    methods: [GET]
  - id: search
    prefix: /v1/search
    service: search
    rewritePrefix: /
health:
  intervalMs: 1000
`,
    );
    const config = ok(loadConfig({}, { file }));
    expect(config.configFile).toBe(file);
    expect(config.services.twin).toMatchObject({ urls: ['http://a:1', 'http://b:2'], timeoutMs: 1500 });
    expect(config.services.search).toMatchObject({ urls: ['http://search:9'], healthPath: '/ping', enabled: true });
    const twinRoutes = config.routes.filter((r) => r.prefix === '/v1/twin');
    expect(twinRoutes).toHaveLength(1);
    expect(twinRoutes[0]?.methods).toEqual(['GET']);
    expect(config.routes.find((r) => r.id === 'search')).toMatchObject({ prefix: '/v1/search', rewritePrefix: '/' });
    expect(config.health).toEqual({ intervalMs: 1000, timeoutMs: 2000 });
  });

  it('reads GATEWAY_CONFIG when no file is passed', () => {
    const file = yamlFile('env.yaml', 'health: { intervalMs: 750 }\n');
    expect(ok(loadConfig({ GATEWAY_CONFIG: file })).health.intervalMs).toBe(750);
  });

  it('rejects unknown keys with their full path', () => {
    const file = yamlFile('unknown.yaml', 'services:\n  twin:\n    url: http://x:1\nroutez: []\n');
    const lines = problems(loadConfig({}, { file }));
    expect(lines).toContain(`${file}: services.twin.url: unknown key`);
    expect(lines).toContain(`${file}: routez: unknown key`);
  });

  it('names wrong types and cross-reference errors by path', () => {
    const file = yamlFile(
      'bad.yaml',
      'health:\n  intervalMs: fast\nroutes:\n  - prefix: /v1/x\n    service: twin\n  - prefix: v1/y\n    service: twin\n',
    );
    const lines = problems(loadConfig({}, { file }));
    expect(lines.some((l) => l.startsWith(`${file}: health.intervalMs: `))).toBe(true);
    expect(lines.some((l) => l.startsWith(`${file}: routes[1].prefix: `))).toBe(true);

    const unknownService = yamlFile('svc.yaml', 'routes:\n  - prefix: /v1/x\n    service: nope\n');
    expect(problems(loadConfig({}, { file: unknownService }))).toEqual([
      `${unknownService}: routes[0].service: unknown service "nope" (known: twin, agent-controller, knowledge, fog, p2p)`,
    ]);

    const newServiceWithoutUrl = yamlFile('nourl.yaml', 'services:\n  search: { healthPath: /h }\n');
    expect(problems(loadConfig({}, { file: newServiceWithoutUrl }))[0]).toMatch(/services\.search\.urls: required/);
  });

  it('reports YAML syntax errors with line and column, and a missing file', () => {
    const file = yamlFile('syntax.yaml', 'services:\n  twin: [unclosed\n');
    const [line] = problems(loadConfig({}, { file }));
    expect(line).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+: `));
    expect(problems(loadConfig({}, { file: join(dir, 'missing.yaml') }))).toEqual([`${join(dir, 'missing.yaml')}: cannot read file (ENOENT)`]);
  });
});

describe('the loaded config', () => {
  it('is frozen all the way down', () => {
    const config = ok(loadConfig({}));
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.services.twin)).toBe(true);
    expect(Object.isFrozen(config.routes)).toBe(true);
    expect(() => {
      (config.server as { port: number }).port = 1;
    }).toThrow(TypeError);
  });

  it('redacts secrets and URL credentials for display', () => {
    const config = ok(loadConfig({ JWT_SECRET_KEY: 'super-secret-value', REDIS_URL: 'redis://user:pw@redis:6379', TWIN_SERVICE_URL: 'http://u:p@twin:1' }));
    const shown = JSON.stringify(redactConfig(config));
    expect(shown).not.toContain('super-secret-value');
    expect(shown).not.toContain('pw@');
    expect(shown).not.toContain('u:p@');
    expect(shown).toContain('"jwtSecretKey":"***"');
  });
});
