import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { exposureWarnings, loadConfig, redactConfig, type GatewayConfig, type LoadResult } from '../../src/config/index.js';

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

// --- rate limiting, threat detection and state (src/ratelimit, src/state) ---
describe('loadConfig: rate limiting', () => {
  it('defaults: 1000 per 60 s per principal and per IP, nothing allow-listed (not even loopback), threat detection on', () => {
    const config = ok(loadConfig({}));
    expect(config.rateLimit).toMatchObject({
      enabled: true,
      principal: { requests: 1000, windowSeconds: 60 },
      ip: { requests: 1000, windowSeconds: 60 },
      allowList: { keys: [], cidrs: [] },
      exemptLoopback: false,
    });
    expect(config.rateLimit.threat).toMatchObject({
      enabled: true,
      halfLifeSeconds: 300,
      levels: { medium: 30, high: 60, critical: 100 },
      weights: { inputRejected: 25, authFailed: 8, notFound: 4, rateLimited: 0.25 },
      blockSeconds: 60,
    });
    expect(config.state).toEqual({ keyPrefix: 'ugw:', commandTimeoutMs: 50 });
    expect(Object.isFrozen(config.rateLimit.threat.levels)).toBe(true);
  });

  it('takes RATE_LIMIT_REQUESTS and RATE_LIMIT_WINDOW_SECONDS as the default quota; the file overrides per scope', () => {
    const env = { RATE_LIMIT_REQUESTS: '100', RATE_LIMIT_WINDOW_SECONDS: '30' };
    expect(ok(loadConfig(env)).rateLimit).toMatchObject({ principal: { requests: 100, windowSeconds: 30 }, ip: { requests: 100, windowSeconds: 30 } });
    const file = yamlFile('rl.yaml', 'rateLimit:\n  ip: { requests: 5000, windowSeconds: 60 }\n');
    expect(ok(loadConfig(env, { file })).rateLimit).toMatchObject({ principal: { requests: 100, windowSeconds: 30 }, ip: { requests: 5000, windowSeconds: 60 } });
    const lines = problems(loadConfig({ RATE_LIMIT_REQUESTS: '0', RATE_LIMIT_WINDOW_SECONDS: 'a minute' }));
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^RATE_LIMIT_REQUESTS: /);
    expect(lines[1]).toMatch(/^RATE_LIMIT_WINDOW_SECONDS: expected a whole number/);
  });

  it('reads route quotas, allow-list, thresholds and trusted proxies', () => {
    const file = yamlFile(
      'rl-full.yaml',
      `auth:
  apiKeys:
    - { name: batch, sha256: ${'a'.repeat(64)}, scopes: [read] }
server:
  trustProxy: [10.0.0.0/8, "2001:db8::/32", loopback]
routes:
  - { prefix: /v1/knowledge, service: knowledge, rateLimit: { requests: 20, windowSeconds: 60 } }
  - { prefix: /v1/fog, service: fog, rateLimit: false }
rateLimit:
  allowList: { keys: [batch, env-api-key], cidrs: [10.1.0.0/16, "fd00::/8"] }
  threat:
    levels: { medium: 10, high: 20, critical: 40 }
    weights: { notFound: 1 }
    blockSeconds: 300
state: { keyPrefix: "gw-prod:", commandTimeoutMs: 25 }
`,
    );
    const config = ok(loadConfig({ API_KEY: 'k' }, { file }));
    expect(config.server.trustProxy).toEqual(['10.0.0.0/8', '2001:db8::/32', 'loopback']);
    expect(config.routes.find((r) => r.prefix === '/v1/knowledge')?.rateLimit).toEqual({ requests: 20, windowSeconds: 60 });
    expect(config.routes.find((r) => r.prefix === '/v1/fog')?.rateLimit).toBe(false);
    expect(config.routes.find((r) => r.prefix === '/v1/twin')?.rateLimit).toBeUndefined();
    expect(config.rateLimit.allowList).toEqual({ keys: ['batch', 'env-api-key'], cidrs: ['10.1.0.0/16', 'fd00::/8'] });
    expect(config.rateLimit.threat.levels).toEqual({ medium: 10, high: 20, critical: 40 });
    expect(config.rateLimit.threat.weights).toMatchObject({ notFound: 1, inputRejected: 25 });
    expect(config.state).toEqual({ keyPrefix: 'gw-prod:', commandTimeoutMs: 25 });
  });

  it('names each bad rate-limit setting by path, unknown keys included', () => {
    const file = yamlFile(
      'rl-bad.yaml',
      `server:
  trustProxy: [10.0.0.0/33, proxy.internal]
routes:
  - { prefix: /v1/x, service: twin, rateLimit: { requests: 0, windowSeconds: 60 } }
rateLimit:
  perIp: 5
  allowList: { keys: [ghost], cidrs: [10.0.0.0/8, 300.1.1.1] }
  threat:
    levels: { medium: 50, high: 40 }
    tarpit: 1
state: { keyPrefix: "has spaces" }
`,
    );
    const lines = problems(loadConfig({}, { file })).map((l) => l.slice(file.length + 2));
    expect(lines).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^server\.trustProxy/),
        expect.stringMatching(/^routes\[0\]\.rateLimit/),
        'rateLimit.perIp: unknown key',
        expect.stringMatching(/^rateLimit\.allowList\.cidrs\[1\]: an IP address or CIDR/),
        'rateLimit.threat.levels: levels must grow: medium < high < critical',
        'rateLimit.threat.tarpit: unknown key',
        expect.stringMatching(/^state\.keyPrefix: /),
      ]),
    );
    // An allow-listed key must exist.
    const ghost = yamlFile('rl-ghost.yaml', 'rateLimit: { allowList: { keys: [ghost] } }\n');
    expect(problems(loadConfig({}, { file: ghost }))).toEqual([`${ghost}: rateLimit.allowList.keys[0]: no API key is named "ghost" (known: none)`]);
  });
});

// --- ML routing (src/routing/model) ---
describe('loadConfig: routing', () => {
  it('defaults: on, the five services, threshold 0.5, default service knowledge, ambiguous -> default', () => {
    const config = ok(loadConfig({}));
    expect(config.routing).toEqual({
      enabled: true,
      services: ['twin', 'agent-controller', 'knowledge', 'fog', 'p2p'],
      confidenceThreshold: 0.5,
      defaultService: 'knowledge',
      ambiguous: 'default',
      watchPointer: true,
      shadowQueueSize: 1024,
      validator: { model: 'facebook/bart-large-mnli' },
    });
    expect(config.secrets.hfToken).toBeUndefined();
  });

  it('reads the routing section (ambiguous: 300 as a number or a string) and HF_TOKEN / HF_ENDPOINT_URL', () => {
    const file = yamlFile(
      'routing.yaml',
      `routing:
  modelsDir: /srv/routing-models
  model: /srv/m.json
  shadowModel: /srv/candidate.json
  confidenceThreshold: 0.7
  defaultService: twin
  ambiguous: 300
  services: [twin, knowledge]
  validatorModel: MoritzLaurer/deberta-v3-large-zeroshot-v2.0
`,
    );
    const config = ok(loadConfig({ HF_TOKEN: 'hf_abc', HF_ENDPOINT_URL: 'https://x.endpoints.huggingface.cloud' }, { file }));
    expect(config.routing).toMatchObject({
      modelsDir: '/srv/routing-models',
      model: '/srv/m.json',
      shadowModel: '/srv/candidate.json',
      confidenceThreshold: 0.7,
      defaultService: 'twin',
      ambiguous: '300',
      services: ['twin', 'knowledge'],
      validator: { model: 'MoritzLaurer/deberta-v3-large-zeroshot-v2.0', endpointUrl: 'https://x.endpoints.huggingface.cloud' },
    });
    expect(config.secrets.hfToken).toBe('hf_abc');
    expect(JSON.stringify(redactConfig(config))).not.toContain('hf_abc');
    expect(ok(loadConfig({}, { file: yamlFile('r2.yaml', 'routing: { ambiguous: "300" }\n') })).routing.ambiguous).toBe('300');
  });

  it('names bad routing keys: unknown keys, threshold range, services, default service, endpoint URL', () => {
    const file = yamlFile('bad-routing.yaml', 'routing:\n  confidenceThreshold: 1.5\n  ambiguous: ask\n  colour: red\n');
    const found = problems(loadConfig({}, { file }));
    expect(found).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/routing\.confidenceThreshold: /),
        expect.stringMatching(/routing\.ambiguous: /),
        expect.stringMatching(/routing\.colour: unknown key/),
      ]),
    );
    const file2 = yamlFile('bad-routing2.yaml', 'routing:\n  services: [twin, weather]\n  defaultService: fog\n');
    expect(problems(loadConfig({}, { file: file2 }))).toEqual([
      expect.stringMatching(/routing\.services\[1\]: unknown service "weather"/),
      expect.stringMatching(/routing\.defaultService: "fog" is not one of routing\.services \(twin, weather\)/),
    ]);
    expect(problems(loadConfig({ HF_ENDPOINT_URL: 'ftp://x' }))).toEqual([expect.stringMatching(/^HF_ENDPOINT_URL: /)]);
  });
});

describe('rate-limit allow-list default', () => {
  const prodSecrets = { SECRET_KEY: 'a'.repeat(32), JWT_SECRET_KEY: 'b'.repeat(32) };
  it('exempts loopback in no ENVIRONMENT unless asked (rateLimit.exemptLoopback / RATE_LIMIT_EXEMPT_LOOPBACK)', () => {
    for (const ENVIRONMENT of ['development', 'test', 'staging', 'production']) {
      const config = ok(loadConfig({ ENVIRONMENT, ...prodSecrets }));
      expect(config.rateLimit.allowList.cidrs, ENVIRONMENT).toEqual([]);
      expect(config.rateLimit.exemptLoopback).toBe(false);
    }
    const optedIn = ok(loadConfig({ RATE_LIMIT_EXEMPT_LOOPBACK: 'true' }));
    expect(optedIn.rateLimit.exemptLoopback).toBe(true);
    expect(optedIn.rateLimit.allowList.cidrs).toEqual(['127.0.0.0/8', '::1/128']);
    // The file wins over the variable; configured CIDRs are kept beside loopback.
    const file = yamlFile('rl-loopback.yaml', 'rateLimit: { exemptLoopback: false, allowList: { cidrs: [10.0.0.0/8] } }\n');
    const fromFile = ok(loadConfig({ RATE_LIMIT_EXEMPT_LOOPBACK: 'true' }, { file }));
    expect(fromFile.rateLimit.allowList.cidrs).toEqual(['10.0.0.0/8']);
    const both = ok(loadConfig({}, { file: yamlFile('rl-loopback2.yaml', 'rateLimit: { exemptLoopback: true, allowList: { cidrs: [10.0.0.0/8] } }\n') }));
    expect(both.rateLimit.allowList.cidrs).toEqual(['10.0.0.0/8', '127.0.0.0/8', '::1/128']);
    expect(problems(loadConfig({ RATE_LIMIT_EXEMPT_LOOPBACK: 'maybe' }))).toEqual([expect.stringMatching(/^RATE_LIMIT_EXEMPT_LOOPBACK: /)]);
  });

  it('warns when a development or test gateway listens on a non-loopback address', () => {
    expect(exposureWarnings(ok(loadConfig({})))).toEqual([expect.stringContaining('ENVIRONMENT=development and listening on 0.0.0.0, not loopback')]);
    expect(exposureWarnings(ok(loadConfig({ ENVIRONMENT: 'test', GATEWAY_HOST: '::' })))).toHaveLength(1);
    expect(exposureWarnings(ok(loadConfig({ GATEWAY_HOST: '192.168.1.5' })))).toHaveLength(1);
    for (const host of ['127.0.0.1', '127.0.0.2', 'localhost', '::1', '[::1]', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1']) {
      expect(exposureWarnings(ok(loadConfig({ GATEWAY_HOST: host }))), host).toEqual([]);
    }
    expect(exposureWarnings(ok(loadConfig({ ENVIRONMENT: 'production', ...prodSecrets })))).toEqual([]);
    // The loopback exemption on an exposed gateway is worth a warning in any environment.
    const exempt = exposureWarnings(ok(loadConfig({ ENVIRONMENT: 'production', RATE_LIMIT_EXEMPT_LOOPBACK: 'true', ...prodSecrets })));
    expect(exempt).toEqual([expect.stringContaining('rateLimit.exemptLoopback is on')]);
  });
});

describe('loadConfig: service fallbacks', () => {
  it('resolves fail (absent), service:<other> and static (body serialized once, status default 200)', () => {
    const file = yamlFile(
      'fallback.yaml',
      [
        'services:',
        '  twin: { fallback: fail }',
        '  agent-controller: { fallback: "service:knowledge" }',
        '  knowledge:',
        '    fallback: { type: static, body: { results: [], degraded: true } }',
        '  fog:',
        '    fallback: { type: static, status: 503, body: "down" }',
        '',
      ].join('\n'),
    );
    const config = ok(loadConfig({}, { file }));
    expect(config.services.twin?.fallback).toBeUndefined();
    expect(config.services.p2p?.fallback).toBeUndefined();
    expect(config.services['agent-controller']?.fallback).toEqual({ type: 'service', service: 'knowledge' });
    expect(config.services.knowledge?.fallback).toEqual({ type: 'static', status: 200, body: '{"results":[],"degraded":true}' });
    expect(config.services.fog?.fallback).toEqual({ type: 'static', status: 503, body: '"down"' });
  });

  it('rejects unknown strategies, unknown keys, a missing body, bad statuses, unknown or self targets', () => {
    const cases = [
      'services: { twin: { fallback: retry } }',
      'services: { twin: { fallback: { type: static, body: {}, extra: 1 } } }',
      'services: { twin: { fallback: { type: static } } }',
      'services: { twin: { fallback: { type: static, status: 100, body: {} } } }',
    ];
    for (const [i, text] of cases.entries()) {
      const found = problems(loadConfig({}, { file: yamlFile(`fb-bad-${i}.yaml`, `${text}\n`) }));
      expect(found.join('\n')).toMatch(/services\.twin\.fallback/);
    }
    const ghost = problems(loadConfig({}, { file: yamlFile('fb-ghost.yaml', 'services: { twin: { fallback: "service:ghost" } }\n') }));
    expect(ghost.join('\n')).toMatch(/services\.twin\.fallback: no service named ghost/);
    const self = problems(loadConfig({}, { file: yamlFile('fb-self.yaml', 'services: { twin: { fallback: "service:twin" } }\n') }));
    expect(self.join('\n')).toMatch(/services\.twin\.fallback: a service cannot fall back to itself/);
  });
});

describe('loadConfig: server.pressure', () => {
  it('reads the thresholds and rejects bad ones', () => {
    const file = yamlFile('pressure.yaml', 'server:\n  pressure: { maxEventLoopDelayMs: 200, maxHeapUsedBytes: 1000000000, sustainedSamples: 3 }\n');
    expect(ok(loadConfig({}, { file })).server.pressure).toEqual({
      enabled: true,
      maxEventLoopDelayMs: 200,
      maxHeapUsedBytes: 1_000_000_000,
      sampleIntervalMs: 1000,
      sustainedSamples: 3,
    });
    const bad = yamlFile('pressure-bad.yaml', 'server:\n  pressure: { maxEventLoopDelayMs: 0, sustained: 3 }\n');
    const found = problems(loadConfig({}, { file: bad })).join('\n');
    expect(found).toMatch(/server\.pressure\.maxEventLoopDelayMs/);
    expect(found).toMatch(/server\.pressure.*sustained/);
  });
});

describe('auth.jwt.maxLifetimeSeconds', () => {
  it('defaults to 24 h and refuses gateway tokens that would outlive it', () => {
    expect(ok(loadConfig({})).auth.jwt.maxLifetimeSeconds).toBe(86_400);
    const file = yamlFile('jwt-life.yaml', 'auth: { jwt: { maxLifetimeSeconds: 600 }, tokens: { ttlSeconds: 900 } }\n');
    expect(problems(loadConfig({}, { file }))).toEqual([`${file}: auth.tokens.ttlSeconds: 900 exceeds auth.jwt.maxLifetimeSeconds (600): the gateway's own tokens would be refused`]);
  });
});
