/**
 * The error catalogue: every error the gateway itself answers with has a stable code
 * `GW_<AREA>_<WHAT>`, an HTTP status and a default message. Responses always have the shape
 * `{ "error": { "code", "message", "requestId" } }` (see `errorBody`).
 *
 * A test checks that codes are unique, well formed, and each one is documented in the
 * error table in docs/errors.md, so adding an entry here means adding a row there.
 */
export const ERROR_CATALOGUE = {
  GW_ROUTE_NOT_FOUND: { status: 404, message: 'No route matches this method and path' },
  GW_ROUTE_METHOD_NOT_ALLOWED: { status: 405, message: 'This route does not accept this method' },
  GW_SERVICE_DISABLED: { status: 404, message: 'The service behind this route is disabled on this gateway' },
  GW_UPSTREAM_UNAVAILABLE: { status: 502, message: 'The upstream service could not be reached' },
  GW_UPSTREAM_BAD_RESPONSE: { status: 502, message: 'The upstream service sent an invalid response' },
  GW_UPSTREAM_TIMEOUT: { status: 504, message: 'The upstream service did not answer in time' },
  GW_REQUEST_INVALID: { status: 400, message: 'The request is malformed' },
  GW_REQUEST_BODY_TOO_LARGE: { status: 413, message: 'The request body is larger than the gateway accepts' },
  GW_REQUEST_ABORTED: { status: 499, message: 'The client closed the request before it completed' },
  GW_REQUEST_TIMEOUT: { status: 408, message: 'The request was not received in time' },
  GW_REQUEST_HEADERS_TOO_LARGE: { status: 431, message: 'The request has too many or too large headers' },
  // --- the canonical request path (src/routing/canonical-path.ts) ---
  GW_REQUEST_PATH_INVALID: { status: 400, message: 'The request path is not in a form the gateway accepts' },
  // --- request bodies the gateway inspects (src/security/body-inspection.ts) ---
  GW_REQUEST_UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'The body is in a content coding or character set the gateway cannot inspect' },
  GW_AUTH_MISSING_CREDENTIALS: { status: 401, message: 'This route needs a bearer token or an API key' },
  GW_AUTH_INVALID_CREDENTIALS: { status: 401, message: 'The token or API key is not valid' },
  GW_AUTH_INSUFFICIENT_SCOPE: { status: 403, message: 'The credentials lack the scope this request needs' },
  GW_AUTH_MFA_REQUIRED: { status: 403, message: 'This route needs a token obtained with a second factor' },
  GW_AUTH_TOTP_REQUIRED: { status: 401, message: 'This principal is enrolled in TOTP: send a current code' },
  GW_AUTH_TOTP_INVALID: { status: 401, message: 'The TOTP code is wrong or was already used' },
  GW_AUTH_TOTP_LOCKED: { status: 429, message: 'Too many wrong TOTP codes for this key; retry after the time in Retry-After' },
  GW_AUTH_UNAVAILABLE: { status: 503, message: 'The token could not be checked now (key set unreachable); retry' },
  GW_SECURITY_INPUT_REJECTED: { status: 403, message: 'The request contains input that looks like an attack' },
  GW_SECURITY_REQUEST_SMUGGLING: { status: 400, message: 'Conflicting or malformed message framing headers' },
  GW_SECURITY_CLIENT_BLOCKED: { status: 403, message: 'This client is blocked for a while after suspicious activity' },
  GW_SECURITY_INPUT_TOO_LARGE: { status: 413, message: 'The request has more text than the gateway inspects (limits.inspectValueBytes, limits.inspectRequestBytes)' },
  GW_RATE_LIMITED: { status: 429, message: 'Too many requests; retry after the time in Retry-After' },
  GW_ADMIN_CLIENT_NOT_BLOCKED: { status: 404, message: 'This client is not blocked' },
  GW_ADMIN_SPLIT_NOT_FOUND: { status: 404, message: 'This route has no traffic split' },
  // --- ML routing (src/routing) ---
  GW_ROUTING_AMBIGUOUS: { status: 300, message: 'The routing model could not tell which service should answer' },
  GW_ROUTING_UNKNOWN_SERVICE: { status: 400, message: 'The named service is not one this gateway routes to' },
  GW_ADMIN_MODEL_NOT_FOUND: { status: 404, message: 'No routing model with this id' },
  GW_ADMIN_MODEL_INVALID: { status: 422, message: 'The routing model cannot be used by this gateway' },
  // --- MCP server (mcp/server): on /mcp every error is a JSON-RPC error body ---
  GW_MCP_SESSION_NOT_FOUND: { status: 404, message: 'No MCP session with this Mcp-Session-Id; start a new one with initialize' },
  GW_MCP_SESSION_REQUIRED: { status: 400, message: 'A 2025 MCP request needs the Mcp-Session-Id of a session (initialize first), or send 2026-07-28 requests with their _meta envelope' },
  GW_MCP_TOO_MANY_STREAMS: { status: 503, message: 'Too many open MCP streams; retry later' },
  GW_MCP_ORIGIN_FORBIDDEN: { status: 403, message: 'This Origin may not call /mcp' },
  GW_MCP_HOST_FORBIDDEN: { status: 403, message: 'This Host may not be used to call /mcp' },
  GW_MCP_BATCH_UNSUPPORTED: { status: 400, message: 'JSON-RPC batches are not accepted (removed from MCP in 2025-06-18): send one message per POST' },
  GW_MCP_PROTOCOL_VERSION_MISMATCH: { status: 400, message: 'MCP-Protocol-Version does not match the version this session negotiated' },
  GW_MCP_NOT_ACCEPTABLE: { status: 406, message: 'The MCP GET stream needs Accept: text/event-stream' },
  GW_MCP_METHOD_NOT_ALLOWED: { status: 405, message: 'Only POST is served without an Mcp-Session-Id (GET and DELETE belong to 2025 sessions)' },
  GW_GATEWAY_SHUTTING_DOWN: { status: 503, message: 'The gateway is shutting down; retry on another replica' },
  // --- resilience (src/resilience) ---
  GW_SERVICE_UNAVAILABLE: { status: 503, message: 'The service is failing and its circuit breaker is open; retry after the time in Retry-After' },
  GW_GATEWAY_OVERLOADED: { status: 503, message: 'The gateway has too many requests in flight; retry after the time in Retry-After' },
  // --- WebSockets (src/ws), answered before the upgrade ---
  GW_WS_NOT_ENABLED: { status: 400, message: 'This route does not accept WebSocket upgrades' },
  GW_WS_ORIGIN_FORBIDDEN: { status: 403, message: 'This Origin may not open WebSockets on the gateway (not in the CORS origins)' },
  GW_WS_UPSTREAM_REFUSED: { status: 502, message: 'The upstream service refused the WebSocket upgrade' },
  GW_AUTH_TICKET_INVALID: { status: 401, message: 'The WebSocket ticket is unknown, expired or already used; get a new one from POST /auth/ws-ticket' },
  // --- migration (src/migration) ---
  GW_LEGACY_GONE: { status: 410, message: 'This legacy endpoint is retired: call its new path' },
  GW_ADMIN_MIGRATION_NOT_FOUND: { status: 404, message: 'No migration with this id or route' },
  GW_ADMIN_MIGRATION_CONFLICT: { status: 409, message: 'The migration is not in a state that allows this' },
  GW_ADMIN_MIGRATION_UNAVAILABLE: { status: 503, message: 'Migrations are not available while the shared state store does not answer' },
  GW_INTERNAL_ERROR: { status: 500, message: 'Internal gateway error' },
  // --- upstream MCP servers (mcp/clients) ---
  GW_ADMIN_MCP_SERVER_NOT_FOUND: { status: 404, message: 'No upstream MCP server with this name (mcp.servers)' },
  GW_ADMIN_MCP_SERVER_DISABLED: { status: 409, message: 'This upstream MCP server is disabled in the configuration' },
  // --- federation on /mcp (mcp/federation): tool errors (isError results) start with these codes ---
  GW_MCP_TOOL_RATE_LIMITED: { status: 429, message: 'Too many calls of this federated MCP tool by this caller (mcp.servers.<name>.rateLimit)' },
  GW_MCP_UPSTREAM_FAILED: { status: 502, message: 'The upstream MCP server of a federated tool is unavailable or failed the call' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

/** A typed exception carrying its catalogue code; thrown anywhere, rendered by the error handler. */
export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly statusCode: number;
  /** Extra response headers (e.g. Retry-After) that belong with this error. */
  readonly headers: Readonly<Record<string, string>>;

  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown; headers?: Record<string, string> }) {
    super(message ?? ERROR_CATALOGUE[code].message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GatewayError';
    this.code = code;
    this.statusCode = ERROR_CATALOGUE[code].status;
    this.headers = options?.headers ?? {};
  }
}

export interface ErrorBody {
  error: { code: ErrorCode; message: string; requestId: string };
}

export function errorBody(code: ErrorCode, requestId: string, message?: string): ErrorBody {
  return { error: { code, message: message ?? ERROR_CATALOGUE[code].message, requestId } };
}
