#!/usr/bin/env -S node --max-semi-space-size=4
// --max-semi-space-size=4 (MiB): proxied traffic keeps many short-lived objects alive across a
// young-generation GC, and with V8's default (larger) semi-space each scavenge paused the event
// loop for 10-20 ms under load; 4 MiB makes them ~1 ms at the same throughput and total GC time
// (measured with --trace-gc, see bench/README.md). V8 reads it only at start-up, so it is on the
// command line: here, in the npm scripts and in the Docker image (a test keeps them in step).
// Entry point of the `unified-gateway` command. The code is compiled to dist/ by `npm run build`
// (run by `npm ci` through the `prepare` script). npm scripts and npx put the project's own
// Node 24 (devDependency `node`) first on the PATH; a bare `node` may be older.
const major = Number(process.versions.node.split('.')[0]);
if (major < 22) {
  process.stderr.write(
    `unified-gateway needs Node.js 22 or later, this is ${process.version}.\n` +
      'Run it through npm (npx unified-gateway ..., npm start, npm run demo), which uses the project\'s Node 24.\n',
  );
  process.exit(1);
}
const { main } = await import('../dist/src/cli/main.js');
main(process.argv).catch((err) => {
  process.stderr.write(`unified-gateway: ${err?.stack ?? err}\n`);
  process.exit(1);
});
