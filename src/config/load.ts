import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { envSchema, gatewayConfigSchema, type GatewayConfig } from './schema.js';

/*
 * Loading: the schema's variables taken from a process-like environment, the YAML file read,
 * both run through the pipeline of schema.ts, and its problems written one line each, named
 * after the variable or the file's key.
 */

export type LoadResult = { ok: true; config: GatewayConfig } | { ok: false; problems: string[] };

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out;
}

/** `KEY: message` for a variable, `<file>: a.b[2].c: message` for the file's keys. */
function problemLines(error: z.ZodError, configFile: string | undefined): string[] {
  const problems: string[] = [];
  for (const issue of error.issues) {
    const [source, ...path] = issue.path;
    const prefix = source === 'file' && configFile !== undefined ? `${configFile}: ` : '';
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) problems.push(`${prefix}${formatPath([...path, key])}: unknown key`);
      continue;
    }
    const where = formatPath(path);
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

/** Every set variable, for the `${VAR}` references of mcp.servers (see mcp.ts). */
function definedVars(env: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) if (value !== undefined && value !== '') out[key] = value;
  return out;
}

/**
 * Validate the environment and (when given) the YAML file together, and build the frozen
 * config the rest of the gateway receives. Never throws for bad input: every problem, of
 * shape or across keys, is one line naming the key, all in one run.
 */
export function loadConfig(
  rawEnv: Readonly<Record<string, string | undefined>>,
  options: { file?: string } = {},
): LoadResult {
  const env = pickEnv(rawEnv);
  const configFile = options.file ?? env.GATEWAY_CONFIG;
  // A file that cannot be read or parsed is reported, and the environment still checked.
  const yaml = configFile !== undefined ? readYaml(configFile) : ({ ok: true, value: {} } as const);
  const result = gatewayConfigSchema.safeParse({ env, file: yaml.ok ? yaml.value : {}, vars: definedVars(rawEnv), ...(configFile !== undefined ? { configFile } : {}) });
  const problems = [...(result.success ? [] : problemLines(result.error, configFile)), ...(yaml.ok ? [] : yaml.problems)];
  if (!result.success || problems.length > 0) return { ok: false, problems };
  return { ok: true, config: result.data };
}
