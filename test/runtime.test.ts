import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

describe('runtime', () => {
  it('runs on the Node 24 that the project brings, not the system Node', () => {
    const major = Number(process.versions.node.split('.')[0]);
    expect(major).toBe(24);
  });

  it('declares engines.node >=22 and pins node@24 as a devDependency', () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      engines: { node: string };
      devDependencies: Record<string, string>;
    };
    expect(pkg.engines.node).toBe('>=22');
    expect(pkg.devDependencies.node).toMatch(/^\^?24\./);
  });

  it('runs the gateway with the same V8 flags everywhere it is started', () => {
    const flag = '--max-semi-space-size=4';
    const read = (path: string) => readFileSync(new URL(`../${path}`, import.meta.url), 'utf8');
    const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
    expect(read('bin/unified-gateway.js').split('\n')[0]).toBe(`#!/usr/bin/env -S node ${flag}`);
    expect(pkg.scripts.start).toContain(`node ${flag} bin/unified-gateway.js serve`);
    expect(pkg.scripts.demo).toContain(`node ${flag} bin/unified-gateway.js demo`);
    expect(read('docker/Dockerfile')).toContain(`CMD ["node", "${flag}", "bin/unified-gateway.js", "serve"]`);
    expect(read('bench/servers.ts')).toContain(`GATEWAY_NODE_FLAGS = ['${flag}']`);
  });

  it('reports the package version', async () => {
    const { GATEWAY_VERSION } = await import('../src/version.js');
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(GATEWAY_VERSION).toBe(pkg.version);
  });
});
