import { Command } from 'commander';
import { loadConfigFromProcess, type LoadResult } from '../config/index.js';
import { runDemo } from './demo.js';
import { runUntilSignal } from '../server/run.js';

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
    .version('0.1.0');

  program
    .command('serve')
    .description('run the gateway from the environment (and GATEWAY_CONFIG when set)')
    .option('-c, --config <file>', 'YAML config file (overrides GATEWAY_CONFIG)')
    .action(async (opts: { config?: string }) => {
      const result = loadConfigFromProcess(opts.config ? { file: opts.config } : {});
      exitOnProblems(result);
      await runUntilSignal(result.config);
    });

  program
    .command('demo')
    .description('start stand-ins for the five services on 8001-8005 and the gateway in front of them')
    .action(async () => {
      await runDemo();
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

  return program;
}

export async function main(argv: readonly string[]): Promise<void> {
  await buildCli().parseAsync([...argv]);
}
