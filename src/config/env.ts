import { z } from 'zod';
import type { Checker } from './check.js';

/*
 * The deployment: ENVIRONMENT, LOG_LEVEL, the config file, and the secrets the environment
 * holds (never the file). Production refuses missing, well-known and short secrets.
 */

export const deploymentEnv = z.object({
  ENVIRONMENT: z.enum(['development', 'test', 'staging', 'production']).default('development'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** The YAML file (read before the schema runs: see load.ts). */
  GATEWAY_CONFIG: z.string().min(1).optional(),
  API_KEY: z.string().min(1).optional(),
  SECRET_KEY: z.string().min(1).optional(),
  JWT_SECRET_KEY: z.string().min(1).optional(),
  /** The HuggingFace token of `model validate` (src/routing, mcp/integrations/huggingface). */
  HF_TOKEN: z.string().min(1).optional(),
});
type DeploymentEnv = z.output<typeof deploymentEnv>;

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

/** `c` is rooted at the environment. */
export function checkDeployment(c: Checker, env: DeploymentEnv): void {
  if (!c.valid('ENVIRONMENT') || env.ENVIRONMENT !== 'production') return;
  for (const key of ['SECRET_KEY', 'JWT_SECRET_KEY', 'API_KEY'] as const) {
    if (!c.valid(key)) continue;
    const value = env[key];
    if (value === undefined) {
      if (key !== 'API_KEY') c.problem([key], 'required when ENVIRONMENT=production');
      continue;
    }
    if (KNOWN_DEFAULT_SECRETS.has(value.toLowerCase())) c.problem([key], 'is a well-known default value; set a random secret');
    else if (value.length < MIN_PRODUCTION_SECRET_LENGTH) c.problem([key], `must be at least ${MIN_PRODUCTION_SECRET_LENGTH} characters when ENVIRONMENT=production`);
  }
}

/** Secrets: never log this object whole; `redactConfig` gives a loggable view. */
export function resolveSecrets(env: DeploymentEnv) {
  return {
    ...(env.API_KEY !== undefined ? { apiKey: env.API_KEY } : {}),
    ...(env.SECRET_KEY !== undefined ? { secretKey: env.SECRET_KEY } : {}),
    ...(env.JWT_SECRET_KEY !== undefined ? { jwtSecretKey: env.JWT_SECRET_KEY } : {}),
    /** HF_TOKEN, for `model validate`. */
    ...(env.HF_TOKEN !== undefined ? { hfToken: env.HF_TOKEN } : {}),
  };
}
