import { loadConfig, type LoadResult } from './load.js';

export * from './load.js';
export * from './schema.js';

/** The one place the gateway reads `process.env`: everything else receives the parsed config. */
export function loadConfigFromProcess(options: { file?: string } = {}): LoadResult {
  return loadConfig(process.env, options);
}

/** The raw environment, for the few callers (the demo) that must pass it on to a child process unchanged. */
export function processEnvironment(): NodeJS.ProcessEnv {
  return process.env;
}
