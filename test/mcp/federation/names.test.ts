import { UriTemplate } from '@modelcontextprotocol/server';
import { describe, expect, it } from 'vitest';
import { FederationCatalogue } from '../../../mcp/federation/catalogue.js';
import { defaultPrefix, exposeName, exposeUri, unwrapUri, upstreamName, type Namespace } from '../../../mcp/federation/names.js';
import { ToolPolicy } from '../../../mcp/federation/policy.js';
import type { Principal } from '../../../src/auth/principal.js';

const memory: Namespace = { server: 'memory', prefix: defaultPrefix('memory') };
const plain: Namespace = { server: 'fixture', prefix: '' };

const principal = (...scopes: Principal['scopes']): Pick<Principal, 'scopes'> => ({ scopes });

describe('tool and prompt names', () => {
  it.each([
    ['create_entities', memory, 'memory__create_entities'],
    ['a__b', memory, 'memory__a__b'],
    ['test_simple_text', plain, 'test_simple_text'],
    ['x.y-z', { server: 's-1', prefix: 'S1.' }, 'S1.x.y-z'],
  ])('%s in %j is offered as %s and maps back', (name, ns, exposed) => {
    expect(exposeName(ns, name)).toBe(exposed);
    expect(upstreamName(ns, exposed)).toBe(name);
  });

  it('a name outside the namespace, or the bare prefix, is not the server’s', () => {
    expect(upstreamName(memory, 'github__create_issue')).toBeNull();
    expect(upstreamName(memory, 'memory__')).toBeNull();
    expect(upstreamName(memory, 'list_routes')).toBeNull();
  });
});

describe('resource URIs', () => {
  it.each([
    'test://static-text',
    'file:///data/memory.json',
    'https://example.com/a/b?c=d#e',
    'urn:isbn:0451450523',
    'x.y+z-1:opaque',
    'test://a.b.c/ugw.other.x:y',
  ])('%s wraps into the gateway scheme and unwraps to itself', (uri) => {
    const exposed = exposeUri(memory, uri)!;
    expect(exposed.startsWith('ugw.memory.')).toBe(true);
    expect(/^[a-z][a-z0-9+.-]*:/i.test(exposed)).toBe(true);
    expect(unwrapUri(exposed)).toEqual({ server: 'memory', uri });
  });

  it('an empty prefix leaves URIs as the upstream wrote them', () => {
    expect(exposeUri(plain, 'test://static-text')).toBe('test://static-text');
  });

  it('refuses what is not an absolute URI, and does not unwrap foreign or malformed URIs', () => {
    expect(exposeUri(memory, 'relative/path')).toBeNull();
    expect(exposeUri(memory, '')).toBeNull();
    expect(unwrapUri('gateway://routes')).toBeNull();
    expect(unwrapUri('ugw.memory')).toBeNull();
    expect(unwrapUri('ugw..test://x')).toBeNull();
    expect(unwrapUri('ugw.UPPER.test://x')).toBeNull();
    expect(unwrapUri('ugw.memory.no-scheme')).toBeNull();
  });

  it.each([
    ['test://template/{id}/data', { id: '123' }],
    ['test://template/{id}/data', { id: 'a/b c%' }],
    ['file:///{+path}', { path: 'dir/file name.txt' }],
    ['https://example.com/search{?q,lang}', { q: 'a&b', lang: 'fr' }],
  ])('template %s expands, wrapped, to the wrapped expansion of the original (%j)', (template, vars) => {
    const wrapped = exposeUri(memory, template)!;
    const expandedWrapped = new UriTemplate(wrapped).expand(vars);
    const expandedOriginal = new UriTemplate(template).expand(vars);
    expect(unwrapUri(expandedWrapped)).toEqual({ server: 'memory', uri: expandedOriginal });
  });
});

describe('tool policy', () => {
  const ro = { name: 'read_graph', annotations: { readOnlyHint: true } };
  const rw = { name: 'create_entities', annotations: { readOnlyHint: false } };
  const bare = { name: 'echo' };

  it('defaults: read for readOnlyHint true, write otherwise (also without annotations)', () => {
    const p = new ToolPolicy();
    expect(p.scopeOf(ro)).toBe('read');
    expect(p.scopeOf(rw)).toBe('write');
    expect(p.scopeOf(bare)).toBe('write');
  });

  it('scope globs win over the hint, first match in the order written', () => {
    const p = new ToolPolicy({ scopes: { 'delete_*': 'admin', '*_graph': 'write', 'read_*': 'read' } });
    expect(p.scopeOf({ name: 'delete_entities' })).toBe('admin');
    expect(p.scopeOf(ro)).toBe('write');
    expect(p.scopeOf({ name: 'read_x', annotations: { readOnlyHint: false } })).toBe('read');
  });

  it('allow and deny globs; deny wins', () => {
    const p = new ToolPolicy({ allow: ['read_*', 'search_*', 'open_nodes'], deny: ['search_secret*'] });
    expect(p.offered('read_graph')).toBe(true);
    expect(p.offered('open_nodes')).toBe(true);
    expect(p.offered('search_nodes')).toBe(true);
    expect(p.offered('search_secrets')).toBe(false);
    expect(p.offered('create_entities')).toBe(false);
    expect(new ToolPolicy({ deny: ['*'] }).offered('x')).toBe(false);
    expect(new ToolPolicy({ allow: [] }).offered('x')).toBe(true);
  });

  it('who may call: scopes are ordered; no principal (auth off) reaches read and write but never admin', () => {
    const p = new ToolPolicy({ scopes: { 'delete_*': 'admin' } });
    const del = { name: 'delete_entities' };
    expect(p.mayCall(principal('read'), ro)).toBe(true);
    expect(p.mayCall(principal('read'), rw)).toBe(false);
    expect(p.mayCall(principal('write'), rw)).toBe(true);
    expect(p.mayCall(principal('write'), del)).toBe(false);
    expect(p.mayCall(principal('admin'), del)).toBe(true);
    expect(p.mayCall(principal(), ro)).toBe(false);
    expect(p.mayCall(null, rw)).toBe(true);
    expect(p.mayCall(null, del)).toBe(false);
    expect(new ToolPolicy({ deny: ['read_*'] }).mayCall(principal('admin'), ro)).toBe(false);
  });
});

describe('catalogue', () => {
  const tool = (name: string, extra: Record<string, unknown> = {}) => ({ name, inputSchema: { type: 'object' as const }, ...extra });
  const catalogue = new FederationCatalogue(
    [
      {
        ...memory,
        policy: { deny: ['delete_*'] },
        tools: [
          tool('read_graph', {
            title: 'Read graph',
            annotations: { readOnlyHint: true, openWorldHint: false },
            outputSchema: { type: 'object', properties: { n: { type: 'number' } } },
            _meta: { 'x/y': 1 },
          }),
          tool('create_entities'),
          tool('delete_entities'),
        ],
        resources: [{ uri: 'file:///graph.json', name: 'graph' }],
        resourceTemplates: [{ uriTemplate: 'memory://entity/{name}', name: 'entity' }],
        prompts: [{ name: 'summarise', title: 'Summarise' }],
      },
      {
        ...plain,
        tools: [tool('test_simple_text'), tool('list_routes'), tool('memory__read_graph')],
        resources: [{ uri: 'test://static-text', name: 'static' }, { uri: 'gateway://routes', name: 'clash' }],
        prompts: [{ name: 'diagnose_service' }, { name: 'test_simple_prompt' }],
      },
    ],
    { tools: ['list_routes'], prompts: ['diagnose_service'], resources: ['gateway://routes'] },
  );

  it('offers tools renamed, with title, annotations, output schema and _meta kept', () => {
    const t = catalogue.tools.get('memory__read_graph')!;
    expect(t).toMatchObject({ server: 'memory', upstream: 'read_graph' });
    expect(t.tool).toEqual({
      name: 'memory__read_graph',
      title: 'Read graph',
      inputSchema: { type: 'object' },
      annotations: { readOnlyHint: true, openWorldHint: false },
      outputSchema: { type: 'object', properties: { n: { type: 'number' } } },
      _meta: { 'x/y': 1 },
    });
    expect(catalogue.tools.get('test_simple_text')).toMatchObject({ server: 'fixture', upstream: 'test_simple_text' });
  });

  it('leaves out denied tools and names taken by the gateway or an earlier server, and reports the clashes', () => {
    expect([...catalogue.tools.keys()].sort()).toEqual(['memory__create_entities', 'memory__read_graph', 'test_simple_text']);
    expect(catalogue.conflicts).toEqual(
      expect.arrayContaining([
        { server: 'fixture', kind: 'tool', name: 'list_routes' },
        { server: 'fixture', kind: 'tool', name: 'memory__read_graph' },
        { server: 'fixture', kind: 'prompt', name: 'diagnose_service' },
        { server: 'fixture', kind: 'resource', name: 'gateway://routes' },
      ]),
    );
  });

  it('lists a principal only the tools it may call', () => {
    expect(catalogue.toolsFor(principal('read')).map((t) => t.tool.name)).toEqual(['memory__read_graph']);
    expect(catalogue.toolsFor(principal('write')).map((t) => t.tool.name).sort()).toEqual(['memory__create_entities', 'memory__read_graph', 'test_simple_text']);
  });

  it('routes resource URIs back to their server', () => {
    expect(catalogue.resources.has('ugw.memory.file:///graph.json')).toBe(true);
    expect(catalogue.templates.get('ugw.memory.memory://entity/{name}')?.upstream).toBe('memory://entity/{name}');
    expect(catalogue.resourceRoute('ugw.memory.file:///graph.json')).toEqual({ server: 'memory', uri: 'file:///graph.json' });
    expect(catalogue.resourceRoute('ugw.memory.memory://entity/ada')).toEqual({ server: 'memory', uri: 'memory://entity/ada' });
    expect(catalogue.resourceRoute('test://static-text')).toEqual({ server: 'fixture', uri: 'test://static-text' });
    expect(catalogue.resourceRoute('test://template/1/data')).toEqual({ server: 'fixture', uri: 'test://template/1/data' });
    // An unknown server, or a plain server's name in the wrapped form, is nobody's.
    expect(catalogue.resourceRoute('ugw.github.https://x')).toBeNull();
    expect(catalogue.resourceRoute('ugw.fixture.test://static-text')).toBeNull();
    expect(new FederationCatalogue([{ ...memory, tools: [] }]).resourceRoute('test://x')).toBeNull();
  });

  it('routes prompts by their offered name', () => {
    expect(catalogue.prompt('memory__summarise')).toMatchObject({ server: 'memory', upstream: 'summarise', prompt: { name: 'memory__summarise', title: 'Summarise' } });
    expect(catalogue.prompt('test_simple_prompt')?.server).toBe('fixture');
    expect(catalogue.prompt('diagnose_service')).toBeUndefined();
  });
});
