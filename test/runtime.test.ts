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
});
