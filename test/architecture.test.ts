import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/*
 * The import graph of src/ and mcp/ (DESIGN.md: "Avoid import cycles and lower layers importing
 * the server assembly"). Imports are read with a regex on the `import … from '…'`, `import '…'`,
 * `export … from '…'` and `import('…')` forms, relative paths resolved (.js -> .ts, a folder
 * -> its index.ts); type-only imports count too, since they tie the modules' designs together.
 */

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const IMPORT = /(?:^|[\s;])(?:import|export)\s[^'"`;]*?\bfrom\s*['"](\.{1,2}\/[^'"]+)['"]|(?:^|[\s;])import\s*['"](\.{1,2}\/[^'"]+)['"]|\bimport\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sourceFiles(path));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

function withoutComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
}

/** Each file (relative to the repository) and the files it imports. */
export function importGraph(roots: readonly string[]): Map<string, Set<string>> {
  const graph = new Map<string, Set<string>>();
  for (const file of roots.flatMap((r) => sourceFiles(join(ROOT, r)))) {
    const targets = new Set<string>();
    for (const m of withoutComments(readFileSync(file, 'utf8')).matchAll(IMPORT)) {
      const spec = m[1] ?? m[2] ?? m[3]!;
      let target = resolve(dirname(file), spec).replace(/\.js$/, '.ts');
      if (!existsSync(target) && existsSync(join(target.replace(/\.ts$/, ''), 'index.ts'))) target = join(target.replace(/\.ts$/, ''), 'index.ts');
      targets.add(relative(ROOT, target));
    }
    graph.set(relative(ROOT, file), targets);
  }
  return graph;
}

/** Strongly connected components with more than one node, or a node importing itself (Tarjan). */
export function cycles(graph: ReadonlyMap<string, ReadonlySet<string>>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  let next = 0;
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next += 1;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || graph.get(v)?.has(v) === true) found.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

/** A file's area: its folder under src/ or mcp/ (src/proxy, mcp/server), or the top-level file itself. */
function areaOf(file: string): string {
  const parts = file.split('/');
  return parts.length > 2 ? `${parts[0]}/${parts[1]}` : file;
}

/** The graph of areas, and for each edge the file imports behind it. */
function areaGraph(graph: ReadonlyMap<string, ReadonlySet<string>>): { areas: Map<string, Set<string>>; why: Map<string, string[]> } {
  const areas = new Map<string, Set<string>>();
  const why = new Map<string, string[]>();
  for (const [file, targets] of graph) {
    const from = areaOf(file);
    if (!areas.has(from)) areas.set(from, new Set());
    for (const target of targets) {
      const to = areaOf(target);
      if (to === from) continue;
      areas.get(from)!.add(to);
      const key = `${from} -> ${to}`;
      why.set(key, [...(why.get(key) ?? []), `${file} -> ${target}`]);
    }
  }
  return { areas, why };
}

const graph = importGraph(['src', 'mcp']);

describe('import graph of src/ and mcp/', () => {
  it('reads the imports it should (sanity: the graph is not empty and resolves to real files)', () => {
    expect(graph.size).toBeGreaterThan(50);
    expect(graph.get('src/proxy/request-path.ts')).toContain('src/proxy/exchange.ts');
    expect(graph.get('src/routing/auto-routing.ts')).toContain('src/routing/auto-route.ts');
    const missing = [...graph.values()].flatMap((targets) => [...targets]).filter((t) => !existsSync(join(ROOT, t)));
    expect(missing).toEqual([]);
  });

  it('has no import cycle between files', () => {
    expect(cycles(graph)).toEqual([]);
  });

  it('has no cycle between areas (src/proxy, src/cache, src/resilience, src/routing, mcp/server, ...)', () => {
    const { areas, why } = areaGraph(graph);
    const found = cycles(areas).map((component) =>
      component.flatMap((a) => component.filter((b) => areas.get(a)!.has(b)).map((b) => `${a} -> ${b}: ${why.get(`${a} -> ${b}`)!.join(', ')}`)),
    );
    expect(found).toEqual([]);
  });

  it('lower layers never import the server assembly (src/server): only src/cli does', () => {
    const offending = [...graph].flatMap(([file, targets]) =>
      file.startsWith('src/server/') || file.startsWith('src/cli/') ? [] : [...targets].filter((t) => t.startsWith('src/server/')).map((t) => `${file} -> ${t}`),
    );
    expect(offending).toEqual([]);
  });

  it('detects a cycle when there is one (the checker itself)', () => {
    const sample = new Map([
      ['a', new Set(['b'])],
      ['b', new Set(['c'])],
      ['c', new Set(['a'])],
      ['d', new Set(['d'])],
      ['e', new Set(['a'])],
    ]);
    expect(cycles(sample)).toEqual([['a', 'b', 'c'], ['d']]);
  });
});
