/*
 * Reversible names of federated things (mcp.servers.<name> offered on /mcp next to the
 * gateway's own tools, resources and prompts):
 *
 * - tools and prompts: `<prefix><name>`, the prefix being the server's `toolPrefix` (default
 *   `<server>__`). A prefix may be empty: the server's names are then offered as they are
 *   (the conformance fixture is federated that way).
 * - resource URIs and URI templates: `ugw.<server>.<original URI>`. Prefixing the scheme
 *   (RFC 3986 allows letters, digits, `+`, `-`, `.` in it) keeps the rest of the URI as the
 *   upstream wrote it, so a template (`test://template/{id}/data`) still expands exactly as
 *   the upstream's own would: an agent fills the variables of the offered template and the
 *   result unwraps to the URI the upstream expects, whatever characters the values hold
 *   (encoding the whole original URI into a path segment would break that). Server names
 *   are lowercase letters, digits and `-`, never `.`, so the first `.` after the server ends
 *   it. With an empty prefix, URIs pass unchanged too.
 *
 * The gateway's own names (and `gateway://`) are reserved: a federated name that collides
 * with one of them, or with an earlier server's, is left out (and reported), never shadowed.
 */

/** Scheme prefix of namespaced resource URIs. */
export const URI_SCHEME_PREFIX = 'ugw.';

/** mcp.servers.<name>: lowercase letters, digits and `-` (the config enforces it). */
export const SERVER_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** An absolute URI (or URI template) starts with a scheme. */
const SCHEME = /^[a-zA-Z][a-zA-Z0-9+.-]*:/;

/** The default prefix of a server's tools and prompts. */
export function defaultPrefix(server: string): string {
  return `${server}__`;
}

/** How one server's names are offered. */
export interface Namespace {
  readonly server: string;
  /** Tool and prompt prefix ('' = names as they are, URIs unwrapped). */
  readonly prefix: string;
}

/** The offered name of an upstream tool or prompt. */
export function exposeName(ns: Namespace, name: string): string {
  return ns.prefix + name;
}

/** The upstream name behind an offered one, or null when it is not in this namespace. */
export function upstreamName(ns: Namespace, exposed: string): string | null {
  if (!exposed.startsWith(ns.prefix)) return null;
  const name = exposed.slice(ns.prefix.length);
  return name === '' ? null : name;
}

/** Whether `ns` rewrites resource URIs (a non-empty prefix). */
export function wrapsUris(ns: Namespace): boolean {
  return ns.prefix !== '';
}

/** The offered URI (or URI template) of an upstream resource; null when it is not an absolute URI. */
export function exposeUri(ns: Namespace, uri: string): string | null {
  if (!SCHEME.test(uri)) return null;
  return wrapsUris(ns) ? `${URI_SCHEME_PREFIX}${ns.server}.${uri}` : uri;
}

/** The server and upstream URI behind a namespaced URI (null: not a namespaced URI). */
export function unwrapUri(exposed: string): { server: string; uri: string } | null {
  if (!exposed.startsWith(URI_SCHEME_PREFIX)) return null;
  const rest = exposed.slice(URI_SCHEME_PREFIX.length);
  const dot = rest.indexOf('.');
  if (dot <= 0) return null;
  const server = rest.slice(0, dot);
  const uri = rest.slice(dot + 1);
  if (!SERVER_NAME.test(server) || !SCHEME.test(uri)) return null;
  return { server, uri };
}
