import { Command } from 'commander';
import { GATEWAY_VERSION } from '../version.js';
import { loadConfigFromProcess, type LoadResult } from '../config/index.js';
import { DEMO_SERVICES, startStandIn } from '../demo/stand-in.js';
import { runDemo } from './demo.js';
import { serve } from '../server/cluster.js';
import { registerModelCommands } from './model.js';
import type { McpProbeOptions } from './mcp-probe.js';
import { ModelFileError } from '../routing/model/model.js';

function exitOnProblems(result: LoadResult): asserts result is Extract<LoadResult, { ok: true }> {
  if (!result.ok) {
    process.stderr.write(`configuration problems (${result.problems.length}):\n`);
    for (const p of result.problems) process.stderr.write(`  ${p}\n`);
    process.exit(1);
  }
}

export function buildCli(): Command {
  const program = new Command('unified-gateway')
    .description('Unified Gateway for the AI Village services')
    .showHelpAfterError()
    // Each command's options after its name (commander honours a subcommand's positional
    // options only when its parents' are too): `mcp probe --url` is the probe's --url.
    .enablePositionalOptions()
    .version(GATEWAY_VERSION);

  program
    .command('serve')
    .description('run the gateway from the environment (and GATEWAY_CONFIG when set)')
    .option('-c, --config <file>', 'YAML config file (overrides GATEWAY_CONFIG)')
    .action(async (opts: { config?: string }) => {
      const result = loadConfigFromProcess(opts.config ? { file: opts.config } : {});
      exitOnProblems(result);
      try {
        await serve(result.config);
      } catch (err) {
        // A routing model that cannot be used: one message, like a config problem.
        if (!(err instanceof ModelFileError)) throw err;
        process.stderr.write(`routing model problem: ${err.message}\n`);
        process.exit(1);
      }
    });

  program
    .command('demo')
    .description('start stand-ins for the five services on 8001-8005 and the gateway in front of them')
    .action(async () => {
      await runDemo();
    });

  program
    .command('stand-in')
    .description('run one stand-in backend service (what the demo starts five of), for compose files and benchmarks')
    .argument('<name>', 'service name it answers as, e.g. twin')
    .option('-p, --port <port>', 'port to listen on (default: the demo port of a known service, else 0)')
    .option('-H, --host <host>', 'address to bind', '127.0.0.1')
    .action(async (name: string, opts: { port?: string; host: string }) => {
      const known = (DEMO_SERVICES as Record<string, { port: number; description: string }>)[name];
      const port = opts.port !== undefined ? Number(opts.port) : (known?.port ?? 0);
      if (!Number.isInteger(port) || port < 0 || port > 65535) {
        process.stderr.write(`stand-in: --port must be a port number, got "${opts.port}"\n`);
        process.exit(1);
      }
      const standIn = await startStandIn({ name, port, host: opts.host, ...(known ? { description: known.description } : {}) });
      process.stdout.write(`${name} stand-in listening on ${standIn.url}\n`);
      const stop = () => void standIn.close().then(() => process.exit(0));
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    });

  const config = program.command('config').description('configuration tools');
  config
    .command('check')
    .description('validate the environment and the YAML file; prints "ok" or one line per problem')
    .option('-f, --file <file>', 'YAML config file (default: GATEWAY_CONFIG)')
    .action((opts: { file?: string }) => {
      const result = loadConfigFromProcess(opts.file ? { file: opts.file } : {});
      if (result.ok) {
        process.stdout.write('ok\n');
        return;
      }
      for (const p of result.problems) process.stdout.write(`${p}\n`);
      process.exitCode = 1;
    });

  const mcp = program
    .command('mcp')
    // Options after `probe` are the probe's (its --url is not the bridge's).
    .enablePositionalOptions()
    .description('speak MCP on stdin/stdout and relay it to a gateway\'s /mcp endpoint (for assistants that only start stdio servers)')
    // Not a commander requiredOption: `mcp probe` (below) has its own --url, and commander
    // would ask the parent's of it too; the action checks it.
    .option('--url <url>', '(required) the gateway, e.g. http://localhost:8000 (/mcp is added when the URL has no path)')
    .option('--api-key <key>', 'API key, sent as X-API-Key (or set GATEWAY_API_KEY)')
    .option('--token <token>', 'bearer token, sent as Authorization: Bearer (or set GATEWAY_TOKEN)')
    .addHelpText(
      'after',
      '\nSecrets on the command line are visible to other local users (ps): prefer the environment\n' +
        'variables GATEWAY_API_KEY or GATEWAY_TOKEN. Options win over the environment.\n' +
        'stdout carries only MCP messages; diagnostics go to stderr. Exit codes: 0 when stdin ends\n' +
        'or on SIGINT/SIGTERM, 1 when a side fails, 2 for bad options.',
    )
    .action(async (opts: { url?: string; apiKey?: string; token?: string }) => {
      if (opts.url === undefined) {
        process.stderr.write("unified-gateway mcp: --url is required (the gateway, e.g. http://localhost:8000); see 'unified-gateway mcp --help'\n");
        process.exitCode = 2;
        return;
      }
      // The MCP client and SDK 1.x modules load with the command that uses them, not with `serve`.
      const { runMcpBridge } = await import('./mcp-bridge.js');
      process.exitCode = await runMcpBridge({ ...opts, url: opts.url });
      // Exit by itself once stdout is flushed; force it if something (a socket) still holds the loop.
      setTimeout(() => process.exit(), 500).unref();
    });
  const collect = (value: string, previous: string[] = []) => [...previous, value];
  mcp
    .command('probe')
    .description('connect to an MCP server with the gateway\'s client code, list its tools, resources and prompts, and optionally call a tool')
    .option('--url <url>', 'a Streamable HTTP MCP server')
    .option('--command <program>', 'a stdio MCP server to start (with --arg for each argument)')
    .option('--arg <arg>', 'an argument of --command (repeatable)', collect)
    .option('--header <header>', '"Name: value" sent on every HTTP request (repeatable)', collect)
    .option('--bearer-env <VAR>', 'send the value of this environment variable as Authorization: Bearer')
    .option('--protocol <revision>', 'auto (default), 2026-07-28 or 2025-11-25')
    .option('--call <tool>', 'call this tool after listing (repeatable: in order, in one session)', collect)
    .option('--args <json>', 'arguments of the --call at the same position, as a JSON object', collect)
    .option('--timeout <ms>', 'deadline of connecting and of each request (default 30000)')
    .option('--json', 'print one JSON document instead of text')
    .addHelpText('after', '\nExit codes: 0 ok, 1 cannot connect or list, 2 bad options, 3 the call failed or returned a tool error.')
    .action(async (opts: McpProbeOptions) => {
      const { runMcpProbe } = await import('./mcp-probe.js');
      process.exitCode = await runMcpProbe(opts);
      setTimeout(() => process.exit(), 500).unref();
    });

  registerModelCommands(program);
  return program;
}

export async function main(argv: readonly string[]): Promise<void> {
  await buildCli().parseAsync([...argv]);
}
