import { loadConfig, type LoadResult } from './load.js';

/*
 * The configuration (one zod pipeline, see schema.ts): each area's schema, checks and
 * resolution in its own file: env.ts (ENVIRONMENT, secrets), server.ts, services.ts,
 * routes.ts, auth.ts, ratelimit.ts, state.ts, cache.ts, routing.ts, mcp.ts,
 * observability.ts; load.ts reads the environment and the file.
 */

export * from './schema.js';
export { loadConfig, type LoadResult } from './load.js';
export { exposureWarnings, isLoopbackHost, redactConfig } from './display.js';
export { cidrSchema, HTTP_METHODS, parseCidr, SCOPE_VALUES, type HttpMethod, type ScopeName } from './fields.js';
export { SERVICE_SWITCH_ENV, serviceFallbackSchema, type ServiceName } from './services.js';
export { DEFAULT_ROUTES, splitWeightsSchema, VALIDATION_MODES, type ValidationMode } from './routes.js';
export { ENV_API_KEY_NAME } from './auth.js';
export { LOOPBACK_CIDRS } from './ratelimit.js';
export { DEFAULT_REDACTED_QUERY_PARAMS } from './observability.js';
export { MCP_PRESETS, type McpPreset, type McpServerTransport } from './mcp.js';

/** The one place the gateway reads `process.env`: everything else receives the parsed config. */
export function loadConfigFromProcess(options: { file?: string } = {}): LoadResult {
  return loadConfig(process.env, options);
}

/** The raw environment, for the few callers (the demo) that must pass it on to a child process unchanged. */
export function processEnvironment(): NodeJS.ProcessEnv {
  return process.env;
}
