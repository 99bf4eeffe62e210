import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import {
  envSchema,
  fileSchema,
  SERVICE_NAMES,
  SERVICE_SWITCH_ENV,
  SERVICE_URL_ENV,
  type EnvConfig,
  type FileConfig,
  type HttpMethod,
} from './schema.js';

export interface ServiceConfig {
  readonly name: string;
  readonly urls: readonly string[];
  readonly healthPath: string;
  readonly timeoutMs: number;
  readonly enabled: boolean;
  /** Why the service is off (the variable or file key that turned it off), when it is. */
  readonly disabledBy?: string;
}

export interface RouteConfig {
  readonly id: string;
  readonly prefix: string;
  readonly service: string;
  /** null: every method. */
  readonly methods: readonly HttpMethod[] | null;
  readonly rewritePrefix?: string;
}

export interface GatewayConfig {
  readonly environment: EnvConfig['ENVIRONMENT'];
  readonly logLevel: EnvConfig['LOG_LEVEL'];
  readonly server: {
    readonly host: string;
    readonly port: number;
    readonly shutdownTimeoutMs: number;
    readonly trustProxy: boolean | readonly string[];
  };
  readonly proxy: {
    readonly connectionPoolSize: number;
    readonly requestQueueSize: number;
    readonly requestTimeoutMs: number;
  };
  readonly workerThreads: number;
  readonly websocketsEnabled: boolean;
  readonly metrics: { readonly enabled: boolean; readonly durationBuckets: readonly number[] };
  readonly health: { readonly intervalMs: number; readonly timeoutMs: number };
  readonly services: Readonly<Record<string, ServiceConfig>>;
  readonly routes: readonly RouteConfig[];
  /** Secrets: never log this object whole; `redactConfig` gives a loggable view. */
  readonly secrets: {
    readonly apiKey?: string;
    readonly secretKey?: string;
    readonly jwtSecretKey?: string;
  };
  readonly redisUrl?: string;
  readonly configFile?: string;
}

export type LoadResult = { ok: true; config: GatewayConfig } | { ok: false; problems: string[] };

export const DEFAULT_ROUTES: readonly RouteConfig[] = [
  { id: 'twin', prefix: '/v1/twin', service: 'twin', methods: null },
  { id: 'agents', prefix: '/v1/agents', service: 'agent-controller', methods: null },
  { id: 'knowledge', prefix: '/v1/knowledge', service: 'knowledge', methods: null },
  { id: 'fog', prefix: '/v1/fog', service: 'fog', methods: null },
  { id: 'p2p', prefix: '/v1/p2p', service: 'p2p', methods: null },
];

const DEFAULT_DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** Secrets that ship in examples and must never reach production. */
const KNOWN_DEFAULT_SECRETS = new Set([
  'changeme',
  'change-me',
  'secret',
  'dev-secret',
  'development',
  'your-secret-key',
  'your-jwt-secret',
  'default',
  'test',
]);
const MIN_PRODUCTION_SECRET_LENGTH = 32;

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out;
}

function zodProblems(error: z.ZodError, prefix: string): string[] {
  const problems: string[] = [];
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) problems.push(`${prefix}${formatPath([...issue.path, key])}: unknown key`);
      continue;
    }
    const where = formatPath(issue.path);
    problems.push(`${prefix}${where === '' ? '(root)' : where}: ${issue.message}`);
  }
  return problems;
}

function readYaml(file: string): { ok: true; value: unknown } | { ok: false; problems: string[] } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    return { ok: false, problems: [`${file}: cannot read file (${(err as NodeJS.ErrnoException).code ?? String(err)})`] };
  }
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      problems: doc.errors.map((e) => {
        const pos = e.linePos?.[0];
        const message = (e.message.split('\n')[0] ?? e.message).replace(/ at line \d+, column \d+:?$/, '');
        return `${file}${pos ? `:${pos.line}:${pos.col}` : ''}: ${message}`;
      }),
    };
  }
  return { ok: true, value: doc.toJS() ?? {} };
}

/** Environment variables the schema knows, taken from a process-like environment. */
function pickEnv(env: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const picked: Record<string, string> = {};
  for (const key of Object.keys(envSchema.shape)) {
    const value = env[key];
    // An empty variable means "not set", as a shell `FOO= cmd` usually intends.
    if (value !== undefined && value !== '') picked[key] = value;
  }
  return picked;
}

function productionSecretProblems(env: EnvConfig): string[] {
  if (env.ENVIRONMENT !== 'production') return [];
  const problems: string[] = [];
  for (const key of ['SECRET_KEY', 'JWT_SECRET_KEY', 'API_KEY'] as const) {
    const value = env[key];
    if (value === undefined) {
      if (key !== 'API_KEY') problems.push(`${key}: required when ENVIRONMENT=production`);
      continue;
    }
    if (KNOWN_DEFAULT_SECRETS.has(value.toLowerCase())) problems.push(`${key}: is a well-known default value; set a random secret`);
    else if (value.length < MIN_PRODUCTION_SECRET_LENGTH)
      problems.push(`${key}: must be at least ${MIN_PRODUCTION_SECRET_LENGTH} characters when ENVIRONMENT=production`);
  }
  return problems;
}

function resolveServices(env: EnvConfig, file: FileConfig, problems: string[]): Record<string, ServiceConfig> {
  const services: Record<string, ServiceConfig> = {};
  const defaultTimeoutMs = Math.round(env.REQUEST_TIMEOUT * 1000);
  for (const name of SERVICE_NAMES) {
    const fromFile = file.services[name];
    const switchKey = (SERVICE_SWITCH_ENV as Partial<Record<string, keyof EnvConfig>>)[name];
    const switchedOff = switchKey !== undefined && env[switchKey] === false;
    const fileOff = fromFile?.enabled === false;
    services[name] = {
      name,
      urls: fromFile?.urls ?? [env[SERVICE_URL_ENV[name]]],
      healthPath: fromFile?.healthPath ?? '/health',
      timeoutMs: fromFile?.timeoutMs ?? defaultTimeoutMs,
      enabled: !switchedOff && !fileOff,
      ...(switchedOff ? { disabledBy: `${switchKey}=false` } : fileOff ? { disabledBy: `services.${name}.enabled=false` } : {}),
    };
  }
  for (const [name, svc] of Object.entries(file.services)) {
    if (name in services) continue;
    if (svc.urls === undefined) {
      problems.push(`services.${name}.urls: required for a service that is not one of ${SERVICE_NAMES.join(', ')}`);
      continue;
    }
    services[name] = {
      name,
      urls: svc.urls,
      healthPath: svc.healthPath,
      timeoutMs: svc.timeoutMs ?? defaultTimeoutMs,
      enabled: svc.enabled ?? true,
      ...(svc.enabled === false ? { disabledBy: `services.${name}.enabled=false` } : {}),
    };
  }
  return services;
}

function resolveRoutes(file: FileConfig, services: Record<string, ServiceConfig>, problems: string[]): RouteConfig[] {
  const byPrefix = new Map<string, RouteConfig>();
  for (const route of DEFAULT_ROUTES) byPrefix.set(route.prefix, route);
  const ids = new Map<string, number>();
  file.routes.forEach((r, i) => {
    if (!(r.service in services)) {
      problems.push(`routes[${i}].service: unknown service "${r.service}" (known: ${Object.keys(services).join(', ')})`);
      return;
    }
    const id = r.id ?? (r.prefix.replace(/^\//, '').replace(/[^a-z0-9_.-]+/gi, '-').toLowerCase() || 'root');
    const seen = ids.get(id);
    if (seen !== undefined) {
      problems.push(`routes[${i}].id: "${id}" is already used by routes[${seen}]`);
      return;
    }
    ids.set(id, i);
    // A file route with a default prefix replaces the default route.
    byPrefix.set(r.prefix, {
      id,
      prefix: r.prefix,
      service: r.service,
      methods: r.methods ? [...new Set(r.methods)] : null,
      ...(r.rewritePrefix !== undefined ? { rewritePrefix: r.rewritePrefix } : {}),
    });
  });
  return [...byPrefix.values()];
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/**
 * Validate the environment and (when given) the YAML file together, and build the frozen
 * config the rest of the gateway receives. Never throws for bad input: every problem is one
 * line naming the key.
 */
export function loadConfig(
  rawEnv: Readonly<Record<string, string | undefined>>,
  options: { file?: string } = {},
): LoadResult {
  const problems: string[] = [];
  const envResult = envSchema.safeParse(pickEnv(rawEnv));
  if (!envResult.success) problems.push(...zodProblems(envResult.error, ''));

  const filePath = options.file ?? (envResult.success ? envResult.data.GATEWAY_CONFIG : undefined);
  let file: FileConfig = fileSchema.parse({});
  if (filePath !== undefined) {
    const yaml = readYaml(filePath);
    if (!yaml.ok) problems.push(...yaml.problems);
    else {
      const parsed = fileSchema.safeParse(yaml.value);
      if (!parsed.success) problems.push(...zodProblems(parsed.error, `${filePath}: `));
      else file = parsed.data;
    }
  }
  if (!envResult.success || problems.length > 0) return { ok: false, problems };
  const env = envResult.data;
  problems.push(...productionSecretProblems(env));

  const fileProblems: string[] = [];
  const services = resolveServices(env, file, fileProblems);
  const routes = resolveRoutes(file, services, fileProblems);
  problems.push(...fileProblems.map((p) => (filePath ? `${filePath}: ${p}` : p)));
  if (problems.length > 0) return { ok: false, problems };

  const config: GatewayConfig = {
    environment: env.ENVIRONMENT,
    logLevel: env.LOG_LEVEL,
    server: {
      host: env.GATEWAY_HOST,
      port: env.GATEWAY_PORT,
      shutdownTimeoutMs: file.server.shutdownTimeoutMs,
      trustProxy: file.server.trustProxy,
    },
    proxy: {
      connectionPoolSize: env.CONNECTION_POOL_SIZE,
      requestQueueSize: env.REQUEST_QUEUE_SIZE,
      requestTimeoutMs: Math.round(env.REQUEST_TIMEOUT * 1000),
    },
    workerThreads: env.WORKER_THREADS,
    websocketsEnabled: env.ENABLE_WEBSOCKETS,
    metrics: { enabled: env.ENABLE_METRICS, durationBuckets: file.metrics.durationBuckets ?? DEFAULT_DURATION_BUCKETS },
    health: { intervalMs: file.health.intervalMs, timeoutMs: file.health.timeoutMs },
    services,
    routes,
    secrets: {
      ...(env.API_KEY !== undefined ? { apiKey: env.API_KEY } : {}),
      ...(env.SECRET_KEY !== undefined ? { secretKey: env.SECRET_KEY } : {}),
      ...(env.JWT_SECRET_KEY !== undefined ? { jwtSecretKey: env.JWT_SECRET_KEY } : {}),
    },
    ...(env.REDIS_URL !== undefined ? { redisUrl: env.REDIS_URL } : {}),
    ...(filePath !== undefined ? { configFile: filePath } : {}),
  };
  return { ok: true, config: deepFreeze(config) };
}

/** A view of the config that is safe to log or show: secrets replaced, credentials in URLs hidden. */
export function redactConfig(config: GatewayConfig): unknown {
  const hideUrlCredentials = (u: string) => u.replace(/\/\/[^@/]*@/, '//***@');
  return {
    ...config,
    secrets: Object.fromEntries(Object.keys(config.secrets).map((k) => [k, '***'])),
    ...(config.redisUrl ? { redisUrl: hideUrlCredentials(config.redisUrl) } : {}),
    services: Object.fromEntries(
      Object.entries(config.services).map(([k, s]) => [k, { ...s, urls: s.urls.map(hideUrlCredentials) }]),
    ),
  };
}
