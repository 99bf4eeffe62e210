/*
 * The supervisor between the gateway and a stdio MCP server: `node watchdog.js <command> <args...>`.
 *
 * Why it exists: a stdio server is meant to exit when its stdin closes, but many do not (a
 * pending timer, an open handle, a grandchild of their own), and when the gateway is killed
 * with SIGKILL nothing runs in it to kill its children: they would be left as orphans.
 * Linux's PR_SET_PDEATHSIG is not reachable from Node, so this tiny process does it by hand:
 * it starts the server with the same stdin/stdout/stderr (no copying of the MCP stream), and
 * ends it (SIGTERM, then SIGKILL after KILL_AFTER_MS) when its own parent changes (the gateway
 * died and it was re-parented: checked every POLL_MS), or when it is asked to stop (SIGTERM,
 * SIGINT, SIGHUP: the gateway closing the transport). It exits with the server's exit code.
 *
 * Self-contained on purpose (only node: built-ins, erasable TypeScript): it runs from dist/ as
 * JavaScript and, in tests, straight from this .ts file with Node's type stripping.
 */
import { spawn } from 'node:child_process';

const POLL_MS = 200;
const KILL_AFTER_MS = 1000;

const [command, ...args] = process.argv.slice(2);
if (command === undefined) {
  process.stderr.write('watchdog: usage: watchdog <command> [args...]\n');
  process.exit(2);
}

const parent = process.ppid;
const child = spawn(command, args, { stdio: 'inherit' });
let stopping = false;

function stop(): void {
  if (stopping) return;
  stopping = true;
  if (child.exitCode !== null || child.signalCode !== null) process.exit(0);
  child.kill('SIGTERM');
  setTimeout(() => {
    child.kill('SIGKILL');
    process.exit(1);
  }, KILL_AFTER_MS).unref();
}

child.on('error', (err: Error) => {
  process.stderr.write(`watchdog: cannot start ${command}: ${err.message}\n`);
  process.exit(127);
});
child.on('exit', (code: number | null, signal: string | null) => {
  process.exit(code ?? (signal !== null ? 128 : 1));
});
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, stop);
setInterval(() => {
  if (process.ppid !== parent) stop();
}, POLL_MS).unref();
