/*
 * What one request's server instance has to register. /mcp builds an McpServer per request
 * (both eras), and a request carries one JSON-RPC method: a tools/call reaches one tool, a
 * resources/read no prompt. Registering only that is most of the instance's cost saved on
 * the hot path (every tools/call), with the same answers: the capabilities are declared up
 * front, not derived from what is registered, and a method that is not narrowed here
 * (initialize, server/discover, ping, anything unknown) gets everything, as before.
 */

export interface RequestReach {
  readonly tools: boolean;
  readonly resources: boolean;
  readonly prompts: boolean;
  /** A tools/call: the one tool it names (undefined: every tool, when `tools`). */
  readonly tool?: string;
}

const EVERYTHING: RequestReach = { tools: true, resources: true, prompts: true };

/**
 * The reach of a request with `method` (and, for tools/call, the tool it names). `isTool`
 * says whether a name is offered at all: a call of an unknown name registers every tool so
 * that the answer is the SDK's own "tool not found", not "method not found".
 */
export function requestReach(method: string, toolName: string | undefined, isTool: (name: string) => boolean): RequestReach {
  if (method === 'tools/call') {
    return toolName !== undefined && isTool(toolName) ? { tools: true, resources: false, prompts: false, tool: toolName } : { tools: true, resources: false, prompts: false };
  }
  if (method === 'tools/list') return { tools: true, resources: false, prompts: false };
  // completion/complete completes a prompt's or a resource template's argument.
  if (method === 'completion/complete') return { tools: false, resources: true, prompts: true };
  if (method.startsWith('resources/')) return { tools: false, resources: true, prompts: false };
  if (method.startsWith('prompts/')) return { tools: false, resources: false, prompts: true };
  return EVERYTHING;
}

/** Whether a tool of this name is registered for a request of this reach. */
export function reachesTool(reach: RequestReach, name: string): boolean {
  return reach.tools && (reach.tool === undefined || reach.tool === name);
}
