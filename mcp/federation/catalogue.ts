import type { Prompt, Resource, ResourceTemplateType, Tool } from '@modelcontextprotocol/server';
import { exposeName, exposeUri, unwrapUri, wrapsUris, type Namespace } from './names.js';
import { ToolPolicy, type ToolPolicyConfig } from './policy.js';

/*
 * What the federation offers on /mcp, built from the upstream servers' own lists (pure: the
 * registrar that feeds McpServer instances and the tests use the same function). Everything
 * an upstream said of a tool (title, description, input and output schemas, annotations,
 * icons, _meta) is kept; only the name changes. Names already taken (the gateway's own, or an
 * earlier server's, in config order) are left out and reported in `conflicts`.
 */

/** One upstream server as the federation sees it (its ready connection's lists). */
export interface UpstreamCatalogue extends Namespace {
  readonly policy?: ToolPolicyConfig | undefined;
  readonly tools: readonly Tool[];
  readonly resources?: readonly Resource[] | undefined;
  readonly resourceTemplates?: readonly ResourceTemplateType[] | undefined;
  readonly prompts?: readonly Prompt[] | undefined;
}

export interface FederatedTool {
  readonly server: string;
  /** The upstream's own name. */
  readonly upstream: string;
  /** The tool as offered (renamed; everything else as the upstream declared it). */
  readonly tool: Tool;
  readonly policy: ToolPolicy;
}

export interface FederatedPrompt {
  readonly server: string;
  readonly upstream: string;
  readonly prompt: Prompt;
}

export interface FederatedResource {
  readonly server: string;
  readonly upstream: string;
  readonly resource: Resource;
}

export interface FederatedTemplate {
  readonly server: string;
  readonly upstream: string;
  readonly template: ResourceTemplateType;
}

export interface Conflict {
  readonly server: string;
  readonly kind: 'tool' | 'prompt' | 'resource' | 'resourceTemplate';
  readonly name: string;
}

export interface Reserved {
  readonly tools?: Iterable<string>;
  readonly prompts?: Iterable<string>;
  readonly resources?: Iterable<string>;
}

export class FederationCatalogue {
  readonly tools = new Map<string, FederatedTool>();
  readonly prompts = new Map<string, FederatedPrompt>();
  readonly resources = new Map<string, FederatedResource>();
  readonly templates = new Map<string, FederatedTemplate>();
  readonly conflicts: Conflict[] = [];
  /** Servers whose URIs pass unchanged (empty prefix), in config order. */
  readonly #plainUriServers: string[] = [];
  readonly #servers = new Set<string>();

  constructor(upstreams: readonly UpstreamCatalogue[], reserved: Reserved = {}) {
    const takenTools = new Set(reserved.tools ?? []);
    const takenPrompts = new Set(reserved.prompts ?? []);
    const takenUris = new Set(reserved.resources ?? []);
    for (const up of upstreams) {
      this.#servers.add(up.server);
      if (!wrapsUris(up)) this.#plainUriServers.push(up.server);
      const policy = new ToolPolicy(up.policy);
      for (const tool of up.tools) {
        if (!policy.offered(tool.name)) continue;
        const name = exposeName(up, tool.name);
        if (takenTools.has(name)) {
          this.conflicts.push({ server: up.server, kind: 'tool', name });
          continue;
        }
        takenTools.add(name);
        this.tools.set(name, { server: up.server, upstream: tool.name, tool: { ...tool, name }, policy });
      }
      for (const prompt of up.prompts ?? []) {
        const name = exposeName(up, prompt.name);
        if (takenPrompts.has(name)) {
          this.conflicts.push({ server: up.server, kind: 'prompt', name });
          continue;
        }
        takenPrompts.add(name);
        this.prompts.set(name, { server: up.server, upstream: prompt.name, prompt: { ...prompt, name } });
      }
      for (const resource of up.resources ?? []) {
        const uri = exposeUri(up, resource.uri);
        if (uri === null) continue;
        if (takenUris.has(uri)) {
          this.conflicts.push({ server: up.server, kind: 'resource', name: uri });
          continue;
        }
        takenUris.add(uri);
        this.resources.set(uri, { server: up.server, upstream: resource.uri, resource: { ...resource, uri } });
      }
      for (const template of up.resourceTemplates ?? []) {
        const uriTemplate = exposeUri(up, template.uriTemplate);
        if (uriTemplate === null) continue;
        if (this.templates.has(uriTemplate)) {
          this.conflicts.push({ server: up.server, kind: 'resourceTemplate', name: uriTemplate });
          continue;
        }
        this.templates.set(uriTemplate, { server: up.server, upstream: template.uriTemplate, template: { ...template, uriTemplate } });
      }
    }
  }

  /** The offered tools `principal` may call (tools/list). */
  toolsFor(principal: Parameters<ToolPolicy['mayCall']>[0]): FederatedTool[] {
    return [...this.tools.values()].filter((t) => t.policy.mayCall(principal, { name: t.upstream, annotations: t.tool.annotations }));
  }

  /** The server and upstream name of an offered prompt name. */
  prompt(name: string): FederatedPrompt | undefined {
    return this.prompts.get(name);
  }

  /**
   * Where a resource URI read by an agent goes: a namespaced URI names its server; a listed
   * plain URI its owner; any other URI goes to the first server whose URIs pass unchanged
   * (templated and unlisted resources of such a server; the upstream answers not-found
   * itself). Null: no federated server owns it.
   */
  resourceRoute(uri: string): { server: string; uri: string } | null {
    const wrapped = unwrapUri(uri);
    if (wrapped !== null) return this.#servers.has(wrapped.server) && !this.#plainUriServers.includes(wrapped.server) ? wrapped : null;
    const listed = this.resources.get(uri);
    if (listed !== undefined) return { server: listed.server, uri: listed.upstream };
    const plain = this.#plainUriServers[0];
    return plain === undefined ? null : { server: plain, uri };
  }

}
