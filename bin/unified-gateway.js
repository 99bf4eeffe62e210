#!/usr/bin/env node
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
