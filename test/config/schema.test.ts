import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, type GatewayConfig, type LoadResult } from '../../src/config/index.js';
import { routeConfigSchema } from '../../src/config/routes.js';
import { gatewayConfigSchema } from '../../src/config/schema.js';
import { serviceConfigSchema } from '../../src/config/services.js';

const dir = mkdtempSync(join(tmpdir(), 'gw-config-schema-'));
let n = 0;
function yamlFile(text: string): string {
  const file = join(dir, `c${n++}.yaml`);
  writeFileSync(file, text);
  return file;
}
function ok(result: LoadResult): GatewayConfig {
  if (!result.ok) throw new Error(`expected ok, got:\n${result.problems.join('\n')}`);
  return result.config;
}
/** The problems of a config made of `yaml` (and `env`), the file's name taken off its lines. */
function problemsOf(yaml: string | undefined, env: Record<string, string> = {}): string[] {
  const file = yaml === undefined ? undefined : yamlFile(yaml);
  const result = loadConfig(env, file === undefined ? {} : { file });
  if (result.ok) throw new Error('expected problems, config was accepted');
  return result.problems.map((p) => (file !== undefined && p.startsWith(`${file}: `) ? p.slice(file.length + 2) : p));
}

const known = '(known: twin, agent-controller, knowledge, fog, p2p)';

describe('every problem in one pass: a key of the wrong shape does not hide a problem across keys', () => {
  // Each case: one key that fails its own schema, and one problem that only a check across keys finds.
  const cases: [string, string, string, string][] = [
    ['a bad number beside a route to an unknown service', 'health: { intervalMs: fast }\nroutes:\n  - { prefix: /v1/x, service: nope }\n', 'health.intervalMs: ', `routes[0].service: unknown service "nope" ${known}`],
    ['a bad prefix and an unknown service in the same route', 'routes:\n  - { prefix: v1/x, service: nope }\n', 'routes[0].prefix: ', `routes[0].service: unknown service "nope" ${known}`],
    ['a bad method beside a route id used twice', 'routes:\n  - { id: a, prefix: /v1/a, service: twin }\n  - { id: a, prefix: /v1/b, service: twin, methods: [FETCH] }\n', 'routes[1].methods[0]: ', 'routes[1].id: "a" is already used by routes[0]'],
    ['a bad timeout beside a fallback to no service', 'services: { twin: { timeoutMs: -1, fallback: "service:ghost" } }\n', 'services.twin.timeoutMs: ', 'services.twin.fallback: no service named ghost'],
    ['split weights that do not add up beside an unknown canary', 'routes:\n  - { prefix: /v1/twin, service: twin, split: { canary: { service: nope }, weights: { stable: 60, canary: 30 } } }\n', 'routes[0].split.weights: stable + canary must be 100', `routes[0].split.canary.service: unknown service "nope" ${known}`],
    ['a bad threshold beside a default service not routed', 'routing: { confidenceThreshold: 5, services: [twin, knowledge], defaultService: fog }\n', 'routing.confidenceThreshold: ', 'routing.defaultService: "fog" is not one of routing.services (twin, knowledge)'],
    ['a bad issuer beside tokens that outlive the JWT lifetime', 'auth: { jwt: { issuer: "", maxLifetimeSeconds: 600 }, tokens: { ttlSeconds: 900 } }\n', 'auth.jwt.issuer: ', "auth.tokens.ttlSeconds: 900 exceeds auth.jwt.maxLifetimeSeconds (600): the gateway's own tokens would be refused"],
    [
      'a key without scopes beside a key name used twice',
      `auth: { apiKeys: [ { name: a, sha256: ${'a'.repeat(64)}, scopes: [read] }, { name: a, sha256: ${'b'.repeat(64)}, scopes: [] } ] }\n`,
      'auth.apiKeys[1].scopes: ',
      'auth.apiKeys[1].name: "a" is used twice',
    ],
    ['a bad key hash beside an allow-listed key that does not exist', 'auth: { apiKeys: [ { name: a, sha256: nothex, scopes: [read] } ] }\nrateLimit: { allowList: { keys: [ghost, a] } }\n', 'auth.apiKeys[0].sha256: ', 'rateLimit.allowList.keys[0]: no API key is named "ghost" (known: a)'],
    ['a stream cap that is not a number beside an admin reserve as large as the total', 'mcp: { maxStreamsPerPrincipal: many, maxStreams: 10, adminReservedStreams: 10 }\n', 'mcp.maxStreamsPerPrincipal: ', 'mcp.adminReservedStreams: must be less than maxStreams'],
    ['a bad max age beside credentials for any origin', 'cors: { origins: ["*"], credentials: true, maxAgeSeconds: -1 }\n', 'cors.maxAgeSeconds: ', 'cors.credentials: true needs an explicit origin list, not "*"'],
    ['a failure count that is not a number beside a lockout longer than its maximum', 'auth: { totp: { maxFailures: five, lockoutSeconds: 7200 } }\n', 'auth.totp.maxFailures: ', 'auth.totp: lockoutSeconds must not exceed maxLockoutSeconds'],
    ['a keep-alive that is not a number beside a request timeout shorter than the header timeout', 'server: { keepAliveTimeoutMs: long, requestTimeoutMs: 500 }\n', 'server.keepAliveTimeoutMs: ', 'server.requestTimeoutMs: requestTimeoutMs must be 0 or at least clientHeaderTimeoutMs'],
    ['an unknown key beside an unknown service', 'routes:\n  - { prefix: /v1/x, service: nope, colour: red }\n', 'routes[0].colour: unknown key', `routes[0].service: unknown service "nope" ${known}`],
  ];
  it.each(cases)('%s', (_name, yaml, shape, across) => {
    const found = problemsOf(yaml);
    expect(found).toHaveLength(2);
    expect(found).toContainEqual(expect.stringMatching(new RegExp(`^${shape.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`)));
    expect(found).toContain(across);
  });

  it('a bad variable beside production secrets and MCP_REQUIRE_AUTH', () => {
    expect(problemsOf(undefined, { GATEWAY_PORT: 'abc', ENVIRONMENT: 'production', MCP_REQUIRE_AUTH: 'false' })).toEqual([
      'GATEWAY_PORT: expected a whole number from 0 to 65535',
      'SECRET_KEY: required when ENVIRONMENT=production',
      'JWT_SECRET_KEY: required when ENVIRONMENT=production',
      'MCP_REQUIRE_AUTH: cannot be false when ENVIRONMENT=production (it serves /mcp without credentials)',
    ]);
  });

  it('a bad variable beside the problems of the file GATEWAY_CONFIG names', () => {
    const file = yamlFile('health: { intervalMs: fast }\nroutes:\n  - { prefix: /v1/x, service: nope }\n');
    const result = loadConfig({ GATEWAY_PORT: 'abc', GATEWAY_CONFIG: file });
    expect(result.ok).toBe(false);
    expect(result.ok ? [] : result.problems).toEqual([
      'GATEWAY_PORT: expected a whole number from 0 to 65535',
      expect.stringMatching(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: health\\.intervalMs: `)),
      `${file}: routes[0].service: unknown service "nope" ${known}`,
    ]);
  });

  it('a file that cannot be read beside production secrets', () => {
    const missing = join(dir, 'missing.yaml');
    expect(problemsOf(undefined, { ENVIRONMENT: 'production', GATEWAY_CONFIG: missing })).toEqual([
      'SECRET_KEY: required when ENVIRONMENT=production',
      'JWT_SECRET_KEY: required when ENVIRONMENT=production',
      `${missing}: cannot read file (ENOENT)`,
    ]);
  });
});

describe('checks across keys read only keys that parsed: one problem, not a second one it caused', () => {
  it.each([
    ['a route to an added service whose URL is bad', 'services: { search: { urls: [ftp://x] } }\nroutes:\n  - { prefix: /v1/s, service: search }\n', ['services.search.urls[0]: expected an http(s) URL']],
    [
      'routing naming the canary of a split whose URL is bad',
      'routes:\n  - { prefix: /v1/twin, service: twin, split: { canary: { urls: [ftp://a] } } }\nrouting: { services: [twin, twin-canary], defaultService: twin }\n',
      ['routes[0].split.canary.urls[0]: expected an http(s) URL'],
    ],
    ['routes when `services` is not a map', 'services: 5\nroutes:\n  - { prefix: /v1/x, service: nope }\n', ['services: Invalid input: expected record, received number']],
    ['an allow-list when a key name is bad', 'auth: { apiKeys: [ { name: "-bad", sha256: nothex, scopes: [read] } ] }\nrateLimit: { allowList: { keys: [ghost] } }\n', null],
    ['a default service when routing.services is bad', 'routing: { services: [twin], defaultService: fog }\n', ['routing.services: Too small: expected array to have >=2 items']],
  ] as const)('%s', (_name, yaml, expected) => {
    const found = problemsOf(yaml);
    if (expected !== null) expect(found).toEqual(expected);
    expect(found.join('\n')).not.toMatch(/unknown service|no API key is named|is not one of routing\.services/);
  });

  it('a canary made by a split is a service routing may name, even when the split has another problem', () => {
    expect(
      problemsOf('routes:\n  - { prefix: /v1/twin, service: twin, split: { canary: { urls: [http://a:1] }, weights: { stable: 1, canary: 1 } } }\nrouting: { services: [twin, twin-canary], defaultService: twin }\n'),
    ).toEqual(['routes[0].split.weights: stable + canary must be 100']);
  });
});

describe('the resolved shape', () => {
  it('every service and route matches the schema that declares its type (no key the schema does not name)', () => {
    const file = yamlFile(`
services:
  twin: { urls: [http://a:1], retries: { maxRetries: 1 }, breaker: { volumeThreshold: 5 }, fallback: { type: static, body: { ok: false } } }
  knowledge: { enabled: false, fallback: stale-cache }
  search: { urls: [http://search:9], fallback: "service:twin", maxInFlight: 5 }
routes:
  - prefix: /v1/twin
    service: twin
    methods: [GET, GET, POST]
    rewritePrefix: /
    auth: { required: false }
    validation: text
    textFields: [q]
    bodyLimitBytes: 1000
    rateLimit: false
    cache: { ttlSeconds: 5 }
    split: { canary: { urls: [http://twin-v2:1] }, weights: { stable: 90, canary: 10 } }
    allowEncodedSlashes: true
    allowSemicolons: true
    forwardAuthorization: true
  - { prefix: /v1/search, service: search, split: { canary: { service: knowledge }, sticky: ip } }
`);
    const config = ok(loadConfig({ ENABLE_P2P_FOG: 'false' }, { file }));
    expect(Object.keys(config.services)).toEqual(['twin', 'agent-controller', 'knowledge', 'fog', 'p2p', 'search', 'twin-canary']);
    // Strict schemas: a key they do not declare fails the parse; every value passes through unchanged.
    for (const service of Object.values(config.services)) expect(serviceConfigSchema.parse(service)).toMatchObject(service);
    for (const route of config.routes) expect(routeConfigSchema.parse(route)).toMatchObject(route);
    expect(config.services['twin-canary']).toMatchObject({ canaryOf: 'twin', urls: ['http://twin-v2:1'], fallback: { type: 'static', status: 200, body: '{"ok":false}' } });
    expect(config.routes.find((r) => r.id === 'v1-twin')).toMatchObject({ methods: ['GET', 'POST'], split: { canaryService: 'twin-canary', weights: { stable: 90, canary: 10 }, sticky: 'cookie' } });
  });
});

describe('checks across keys on any partly broken input', () => {
  it('never throw: every key of a rich config replaced in turn by a value of every wrong type', () => {
    const rich = {
      services: { twin: { urls: ['http://a:1'], fallback: 'service:knowledge' }, search: { urls: ['http://s:1'] } },
      routes: [
        { id: 'a', prefix: '/v1/a', service: 'twin', split: { canary: { urls: ['http://c:1'] }, weights: { stable: 50, canary: 50 } } },
        { prefix: '/v1/b', service: 'search', split: { canary: { service: 'twin' } } },
      ],
      auth: { apiKeys: [{ name: 'k', sha256: 'a'.repeat(64), scopes: ['read'] }], tokens: { ttlSeconds: 900 }, jwt: { maxLifetimeSeconds: 1000 }, totp: { lockoutSeconds: 5 } },
      rateLimit: { allowList: { keys: ['k'] }, threat: { levels: { medium: 1, high: 2, critical: 3 } } },
      routing: { services: ['twin', 'twin-canary'], defaultService: 'twin' },
      mcp: { maxStreams: 5, adminReservedStreams: 1 },
      cors: { origins: ['https://a.example'], credentials: true },
      server: { requestTimeoutMs: 0 },
    };
    const wrong = [null, 5, 'text', true, [], {}, [null], -1, 'service:nope'];
    const paths = (value: unknown, path: (string | number)[] = []): (string | number)[][] =>
      value !== null && typeof value === 'object'
        ? Object.entries(value).flatMap(([k, v]) => [[...path, Array.isArray(value) ? Number(k) : k], ...paths(v, [...path, Array.isArray(value) ? Number(k) : k])])
        : [];
    expect(gatewayConfigSchema.safeParse({ env: {}, file: rich }).success).toBe(true);
    let broken = 0;
    for (const path of paths(rich)) {
      for (const value of wrong) {
        const input = structuredClone(rich) as Record<string | number, unknown>;
        let parent = input;
        for (const part of path.slice(0, -1)) parent = parent[part] as Record<string | number, unknown>;
        parent[path.at(-1)!] = value;
        const result = gatewayConfigSchema.safeParse({ env: {}, file: input });
        if (!result.success) broken += 1;
      }
    }
    // Most replacements are problems; none made the checks throw.
    expect(broken).toBeGreaterThan(paths(rich).length * 4);
  });
});
