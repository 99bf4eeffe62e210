import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanup, onCleanup, ROOT, startGateway, type GatewayProcess } from '../helpers/gateway.js';

/*
 * The official MCP conformance suite (@modelcontextprotocol/conformance) against /mcp of one
 * gateway started with MCP_REQUIRE_AUTH=false (the suite's client sends no credentials).
 * Each version x scenario runs the suite's CLI as a child process and must exit 0 with every
 * check SUCCESS. Both the newest release (the devDependency) and 0.1.11 (the npm alias
 * mcp-conformance-0.1.11) run. Only the scenarios that apply to this server are listed: the
 * others need the suite's fixture tools/prompts/resources (test_simple_text, test://static-text,
 * ...) that a real server does not have.
 */

const SCENARIOS = [
  'server-initialize',
  'ping',
  'tools-list',
  'resources-list',
  'prompts-list',
  'logging-set-level',
  'server-sse-multiple-streams',
  'dns-rebinding-protection',
  'resources-subscribe',
  'resources-unsubscribe',
] as const;

interface SuiteVersion {
  readonly version: string;
  /** The CLI's entry point (the package's `bin`). */
  readonly bin: string;
}

function suite(packageDir: string): SuiteVersion {
  const dir = join(ROOT, 'node_modules', packageDir);
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string; bin: string | Record<string, string> };
  const bin = typeof pkg.bin === 'string' ? pkg.bin : pkg.bin.conformance!;
  return { version: pkg.version, bin: join(dir, bin) };
}

const SUITES: readonly SuiteVersion[] = [suite('@modelcontextprotocol/conformance'), suite('mcp-conformance-0.1.11')];

/** One check of the suite's checks.json. */
interface ConformanceCheck {
  readonly id: string;
  readonly name: string;
  readonly description: string;
  readonly status: 'SUCCESS' | 'FAILURE' | 'WARNING' | 'SKIPPED' | 'INFO';
  readonly errorMessage?: string;
}

interface ScenarioRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly timedOut: boolean;
  /** stdout and stderr, colours stripped. */
  readonly output: string;
  readonly checks: readonly ConformanceCheck[] | undefined;
}

const SCENARIO_TIMEOUT_MS = 30_000;

const stripAnsi = (text: string) => text.replace(/\x1b\[[0-9;]*m/g, '');

/**
 * `conformance server --url <mcp> --scenario <s> -o <dir>`, run with this Node in a temp dir
 * (its results, `<dir>/server-<scenario>-<time>/checks.json`, never land in the repo).
 */
async function runScenario(suiteVersion: SuiteVersion, mcpUrl: string, scenario: string): Promise<ScenarioRun> {
  const work = mkdtempSync(join(tmpdir(), 'ugw-conformance-'));
  onCleanup(() => rmSync(work, { recursive: true, force: true }));
  const outDir = join(work, 'results');
  const child = spawn(process.execPath, [suiteVersion.bin, 'server', '--url', mcpUrl, '--scenario', scenario, '-o', outDir], {
    cwd: work,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: work, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (output += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (output += d));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, SCENARIO_TIMEOUT_MS);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once('close', (c, s) => resolve([c, s])));
  clearTimeout(timer);

  let checks: ConformanceCheck[] | undefined;
  try {
    const runs = readdirSync(outDir).filter((d) => d.startsWith(`server-${scenario}-`));
    if (runs.length === 1) checks = JSON.parse(readFileSync(join(outDir, runs[0]!, 'checks.json'), 'utf8')) as ConformanceCheck[];
  } catch {
    // no results: reported below with the CLI's output
  }
  return { code, signal, timedOut, output: stripAnsi(output).trim(), checks };
}

/** Why a run did not pass (empty when it did), readable in the assertion message. */
function problems(run: ScenarioRun): string[] {
  const out: string[] = [];
  if (run.timedOut) out.push(`timed out after ${SCENARIO_TIMEOUT_MS} ms`);
  if (run.code !== 0) out.push(`exit code ${run.code ?? run.signal}`);
  if (run.checks === undefined) out.push('no checks.json written');
  else if (run.checks.length === 0) out.push('checks.json has no checks');
  else {
    for (const c of run.checks) {
      if (c.status !== 'SUCCESS') out.push(`${c.status} [${c.id}] ${c.description}${c.errorMessage ? `: ${c.errorMessage}` : ''}`);
    }
  }
  return out;
}

let gw: GatewayProcess;

beforeAll(async () => {
  gw = await startGateway({ env: { MCP_REQUIRE_AUTH: 'false' } });
});
afterAll(cleanup);

describe.each(SUITES)('MCP conformance suite $version against /mcp (MCP_REQUIRE_AUTH=false)', (suiteVersion) => {
  it.each(SCENARIOS)(
    '%s passes',
    async (scenario) => {
      // 127.0.0.1, not the gateway's listen address: dns-rebinding-protection needs a localhost URL.
      const run = await runScenario(suiteVersion, `http://127.0.0.1:${gw.port}/mcp`, scenario);
      const failed = problems(run);
      expect(failed, `conformance ${suiteVersion.version} ${scenario} did not pass:\n  ${failed.join('\n  ')}\n--- CLI output\n${run.output}`).toEqual([]);
    },
    SCENARIO_TIMEOUT_MS + 10_000,
  );
});
