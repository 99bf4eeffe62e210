import { STATUS_CODES } from 'node:http';
import type { Readable, Writable } from 'node:stream';
import {
  isJSONRPCErrorResponse,
  isJSONRPCNotification,
  isJSONRPCRequest,
  isJSONRPCResultResponse,
  SdkHttpError,
  StreamableHTTPClientTransport,
  type JSONRPCMessage,
  type JSONRPCRequest,
  type RequestId,
  type Transport,
} from '@modelcontextprotocol/client';
// The stdio side is the 1.x SDK's transport: it keeps stdout writable after stdin ends, so the
// answers to requests a script wrote before closing stdin still go out (v2's closes on stdin end
// and refuses to send afterwards).
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { processEnvironment } from '../config/index.js';

/*
 * `unified-gateway mcp`: MCP over this process's stdin/stdout, relayed message by message to a
 * gateway's Streamable HTTP endpoint (/mcp), for assistants that only start stdio servers.
 * Both ends are the SDK's own transports (v2); the relay moves JSON-RPC messages between them
 * and speaks both protocol eras, as its stdio client does:
 *
 * - 2026-07-28 (a request carries the `_meta` envelope): each request is its own POST with
 *   the headers derived from it (MCP-Protocol-Version, Mcp-Method, Mcp-Name), no session;
 *   `notifications/cancelled` from the client closes that request's response stream (the HTTP
 *   cancellation of this revision) instead of being posted; `subscriptions/listen` streams
 *   flow to stdout until cancelled.
 * - 2025 (`initialize`): the session id and negotiated MCP-Protocol-Version on every request.
 *   When the gateway no longer knows the session (404: it restarted without Redis, or the
 *   session expired), the relay opens a new one with the client's own initialize, replays
 *   `notifications/initialized` and the client's resource subscriptions, and sends the
 *   request again: the stdio client never sees the difference.
 *
 * An HTTP failure becomes a JSON-RPC error so the stdio client is never left waiting. stdout
 * is the protocol channel: every diagnostic goes to stderr.
 */

/** Exit code for a usage problem (bad --url, conflicting credentials). */
export const USAGE_EXIT = 2;
/** JSON-RPC error code for "the gateway could not be asked" (implementation-defined server error). */
export const GATEWAY_ERROR_CODE = -32000;
/** How long shutdown waits for the gateway to end the session before giving up on it. */
const TERMINATE_TIMEOUT_MS = 2000;
/** How long the end of stdin waits for answers to requests already forwarded. */
const DRAIN_TIMEOUT_MS = 5000;
/** How long re-opening a session waits for each answer. */
const REOPEN_TIMEOUT_MS = 10_000;
/** Longest reason quoted in an error line (a gateway error page should not flood the log). */
const MAX_REASON_CHARS = 300;

export interface McpBridgeOptions {
  /** The gateway, e.g. http://host:8000 (/mcp is appended when there is no path). */
  readonly url: string;
  /** Sent as X-API-Key (falls back to GATEWAY_API_KEY). */
  readonly apiKey?: string | undefined;
  /** Sent as Authorization: Bearer (falls back to GATEWAY_TOKEN). */
  readonly token?: string | undefined;
  /** Defaults to the process environment (read through src/config); injectable for tests. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly stdin?: Readable;
  readonly stdout?: Writable;
  readonly stderr?: Writable;
}

type Credentials = { readonly apiKey?: string; readonly token?: string };

/** The /mcp endpoint for `raw`, or a one-line problem. */
export function parseGatewayUrl(raw: string): URL | string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return `--url must be an http(s) URL such as http://localhost:8000, got "${raw}"`;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `--url must be an http or https URL, got protocol "${url.protocol}"`;
  // fetch refuses URLs with credentials, and they would end up in logs: use the flags instead.
  if (url.username !== '' || url.password !== '') return '--url must not contain a user name or password (use --api-key or --token)';
  if (url.pathname === '/' || url.pathname === '') url.pathname = '/mcp';
  return url;
}

/** Flags win over the environment as a whole, so a key in the env never mixes with a token on the command line. */
export function pickCredentials(flags: Credentials, env: Readonly<Record<string, string | undefined>>): Credentials | string {
  const clean = (v: string | undefined) => (v === undefined || v.trim() === '' ? undefined : v.trim());
  const fromFlags = { apiKey: clean(flags.apiKey), token: clean(flags.token) };
  const fromEnv = { apiKey: clean(env.GATEWAY_API_KEY), token: clean(env.GATEWAY_TOKEN) };
  const chosen = fromFlags.apiKey !== undefined || fromFlags.token !== undefined ? fromFlags : fromEnv;
  if (chosen.apiKey !== undefined && chosen.token !== undefined) {
    return chosen === fromFlags ? 'give --api-key or --token, not both' : 'GATEWAY_API_KEY and GATEWAY_TOKEN are both set: unset one';
  }
  for (const v of [chosen.apiKey, chosen.token]) {
    // Never echo the value: it is a secret.
    if (v !== undefined && /[\r\n\0]/.test(v)) return 'the API key or token contains a line break or NUL character';
  }
  return {
    ...(chosen.apiKey !== undefined ? { apiKey: chosen.apiKey } : {}),
    ...(chosen.token !== undefined ? { token: chosen.token } : {}),
  };
}

export function authHeaders(credentials: Credentials): Record<string, string> {
  const headers: Record<string, string> = {};
  if (credentials.apiKey !== undefined) headers['x-api-key'] = credentials.apiKey;
  if (credentials.token !== undefined) headers.authorization = `Bearer ${credentials.token}`;
  return headers;
}

/** One short line saying why a side failed: the HTTP status and the gateway's own message, or the network cause. */
export function describeError(err: unknown): string {
  let text: string;
  if (err instanceof SdkHttpError) {
    const body = typeof err.data.text === 'string' ? err.data.text : err.message.replace(/^Error POSTing to endpoint: /, '');
    const detail = bodyMessage(body);
    const status = err.status > 0 ? `HTTP ${err.status} ${STATUS_CODES[err.status] ?? ''}`.trim() : undefined;
    text = status === undefined ? detail : detail === '' ? status : `${status}: ${detail}`;
  } else if (err instanceof Error) {
    // fetch says only "fetch failed"; the reason (ECONNREFUSED, DNS...) is in the cause.
    const cause = err.cause instanceof Error ? err.cause.message : undefined;
    text = cause !== undefined && cause !== err.message ? `${err.message}: ${cause}` : err.message;
  } else {
    text = String(err);
  }
  text = text.replace(/\s+/g, ' ').trim();
  return text.length > MAX_REASON_CHARS ? `${text.slice(0, MAX_REASON_CHARS)}...` : text;
}

/** The message inside a gateway (JSON-RPC) error body, with its catalogue code; else the body itself. */
function bodyMessage(body: string): string {
  try {
    const parsed = JSON.parse(body) as { error?: { code?: unknown; message?: unknown; data?: { code?: unknown } } };
    const e = parsed.error;
    if (e !== undefined && typeof e.message === 'string') {
      const code = typeof e.data?.code === 'string' ? e.data.code : typeof e.code === 'string' ? e.code : undefined;
      return code !== undefined ? `${code}: ${e.message}` : e.message;
    }
  } catch {
    // not JSON: use the text
  }
  return body;
}

/** The HTTP side as the relay needs it (the SDK transport, or a stand-in in tests). */
export type RemoteTransport = Transport & {
  readonly sessionId?: string | undefined;
  terminateSession(): Promise<void>;
  setProtocolVersion?(version: string): void;
  send(message: JSONRPCMessage, options?: { requestSignal?: AbortSignal; onRequestStreamEnd?: () => void }): Promise<void>;
};

/** The protocol version a 2026-07-28 request names in its envelope (undefined: a 2025 message). */
function envelopeVersion(message: JSONRPCMessage): string | undefined {
  if (!isJSONRPCRequest(message)) return undefined;
  const version = (message.params?._meta as Record<string, unknown> | undefined)?.['io.modelcontextprotocol/protocolVersion'];
  return typeof version === 'string' ? version : undefined;
}

/** Ids of the relay's own requests (re-initialization): their answers are not the client's. */
const RELAY_ID_PREFIX = 'unified-gateway-relay:';

/**
 * Moves messages between a local transport (stdio) and a remote one (Streamable HTTP). The
 * first close of either side, or `close()`, ends the session on the gateway and closes both.
 */
export class McpRelay {
  readonly #local: Transport;
  readonly #remote: RemoteTransport;
  readonly #log: (line: string) => void;
  /** Errors already written by onerror (the SDK reports a failed send there and also throws it). */
  readonly #reported = new WeakSet<object>();
  /**
   * Initialize requests in flight, with what releases the messages behind them: their result
   * carries the session id and protocol version every later 2025 request needs.
   */
  readonly #initializing = new Map<RequestId, () => void>();
  /** 2025 messages that expect no reply are delivered in order with what follows (e.g. initialized before tools/list). */
  #barrier: Promise<void> = Promise.resolve();
  /** Requests from the stdio client still waiting for their answer (listen streams excluded: they never end by themselves). */
  readonly #pending = new Set<RequestId>();
  /** 2026-07-28 requests in flight: cancelling one closes its response stream. */
  readonly #modern = new Map<RequestId, AbortController>();
  /** The client's 2025 handshake and subscriptions, replayed on a new session after a 404. */
  #initialize: JSONRPCRequest | undefined;
  #initialized = false;
  readonly #subscriptions = new Set<string>();
  /** The re-initialization under way (several requests may meet the 404 at once). */
  #reopening: Promise<void> | undefined;
  /** Answers to the relay's own requests. */
  readonly #own = new Map<RequestId, (message: JSONRPCMessage) => void>();
  #ownIds = 0;
  #onIdle: (() => void) | undefined;
  #closing: Promise<number> | undefined;
  #resolveClosed!: (code: number) => void;
  /** Resolves with the exit code once both sides are closed. */
  readonly closed = new Promise<number>((resolve) => (this.#resolveClosed = resolve));

  constructor(local: Transport, remote: RemoteTransport, log: (line: string) => void) {
    this.#local = local;
    this.#remote = remote;
    this.#log = log;
  }

  async start(): Promise<void> {
    this.#local.onmessage = (message: JSONRPCMessage) => void this.#toRemote(message);
    this.#remote.onmessage = (message: JSONRPCMessage) => this.#toLocal(message);
    this.#local.onerror = (err) => this.#report('stdio', err);
    this.#remote.onerror = (err) => this.#report('gateway', err);
    // A side closing by itself (not through close()) is a failure: exit 1.
    this.#local.onclose = () => void this.close(1);
    this.#remote.onclose = () => void this.close(1);
    // HTTP first: stdin may deliver a message as soon as it is read.
    await this.#remote.start();
    await this.#local.start();
  }

  /** End the gateway session (best effort, bounded) and close both sides; idempotent. */
  close(exitCode = 0): Promise<number> {
    this.#closing ??= this.#shutdown(exitCode);
    return this.#closing;
  }

  /**
   * Stdin ended: the client is done writing, not necessarily reading (`echo ... | unified-gateway
   * mcp`). Deliver the answers still due (bounded), then close.
   */
  async finish(timeoutMs = DRAIN_TIMEOUT_MS): Promise<number> {
    if (this.#pending.size > 0 && !this.#closing) await withTimeout(new Promise<void>((resolve) => (this.#onIdle = resolve)), timeoutMs);
    return this.close(0);
  }

  async #shutdown(exitCode: number): Promise<number> {
    // Failures from here on are expected (aborted streams, a gateway already gone): not worth a
    // line. The close callbacks go too: close() below calls them synchronously, before #closing is set.
    for (const side of [this.#remote, this.#local]) {
      side.onerror = undefined;
      side.onclose = undefined;
    }
    for (const controller of this.#modern.values()) controller.abort();
    if (this.#remote.sessionId !== undefined) await withTimeout(this.#remote.terminateSession(), TERMINATE_TIMEOUT_MS);
    await Promise.allSettled([this.#remote.close(), this.#local.close()]);
    this.#resolveClosed(exitCode);
    return exitCode;
  }

  async #toRemote(message: JSONRPCMessage): Promise<void> {
    if (this.#closing) return;
    if (envelopeVersion(message) !== undefined) return this.#toRemoteModern(message as JSONRPCRequest);
    if (isJSONRPCNotification(message) && message.method === 'notifications/cancelled') {
      const id = (message.params as { requestId?: RequestId } | undefined)?.requestId;
      // A 2026-07-28 request is cancelled by closing its response stream, not with a notification.
      const modern = id !== undefined ? this.#modern.get(id) : undefined;
      if (modern !== undefined && id !== undefined) {
        modern.abort();
        this.#modern.delete(id);
        this.#answered(id);
        return;
      }
      // A cancelled request gets no answer: do not wait for one when stdin ends.
      if (id !== undefined) this.#answered(id);
    }
    if (isJSONRPCRequest(message)) {
      this.#pending.add(message.id);
      if (message.method === 'initialize') {
        this.#initializing.set(message.id, () => {});
        this.#initialize = message;
      }
      this.#remember(message);
    } else if (isJSONRPCNotification(message) && message.method === 'notifications/initialized') {
      this.#initialized = true;
    }
    // The barrier is moved synchronously, in arrival order; requests run concurrently with each other.
    const sent = this.#barrier.then(() => this.#sendLegacy(message));
    if (!isJSONRPCRequest(message)) this.#barrier = sent.catch(() => {});
    else if (this.#initializing.has(message.id)) {
      // Nothing goes out before the initialize answer (a client that writes ahead, like a
      // shell pipe, would otherwise send requests without the session id).
      const id = message.id;
      const answered = new Promise<void>((resolve) => this.#initializing.set(id, resolve));
      this.#barrier = sent.then(
        () => answered,
        () => {},
      );
    }
    try {
      await sent;
    } catch (err) {
      this.#failed(message, err);
    }
  }

  /** A 2026-07-28 request: its own POST, cancellable, no session. */
  async #toRemoteModern(message: JSONRPCRequest): Promise<void> {
    const controller = new AbortController();
    this.#modern.set(message.id, controller);
    // A listen stream lasts until cancelled: the end of stdin does not wait for it.
    if (message.method !== 'subscriptions/listen') this.#pending.add(message.id);
    try {
      await this.#remote.send(message, { requestSignal: controller.signal, onRequestStreamEnd: () => this.#modern.delete(message.id) });
    } catch (err) {
      this.#modern.delete(message.id);
      if (!controller.signal.aborted) this.#failed(message, err);
    }
  }

  /** A 2025 message on the session; a session the gateway no longer knows is opened again, once, and the message sent again. */
  async #sendLegacy(message: JSONRPCMessage): Promise<void> {
    const session = this.#remote.sessionId;
    try {
      await this.#remote.send(message);
    } catch (err) {
      const lost = err instanceof SdkHttpError && err.status === 404 && session !== undefined && this.#initialize !== undefined;
      if (!lost || (isJSONRPCRequest(message) && message.method === 'initialize')) throw err;
      // Another request may have opened the new session meanwhile: then only send again.
      if (this.#remote.sessionId === session) await this.#reopen();
      await this.#remote.send(message);
    }
  }

  /** A new session with the client's own initialize, `initialized` and subscriptions (their answers are the relay's). */
  #reopen(): Promise<void> {
    this.#reopening ??= (async () => {
      this.#log('the gateway no longer knows the session (404): opening a new one');
      const init = this.#initialize!;
      const answer = await this.#ownRequest(init.method, init.params);
      const version = isJSONRPCResultResponse(answer) ? (answer.result as { protocolVersion?: unknown }).protocolVersion : undefined;
      if (typeof version === 'string') this.#remote.setProtocolVersion?.(version);
      if (isJSONRPCErrorResponse(answer)) throw new Error(`re-initialize refused: ${answer.error.message}`);
      if (this.#initialized) await this.#remote.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
      for (const uri of this.#subscriptions) await this.#ownRequest('resources/subscribe', { uri });
    })().finally(() => (this.#reopening = undefined));
    return this.#reopening;
  }

  async #ownRequest(method: string, params: JSONRPCRequest['params']): Promise<JSONRPCMessage> {
    const id = `${RELAY_ID_PREFIX}${++this.#ownIds}`;
    const answer = new Promise<JSONRPCMessage>((resolve) => this.#own.set(id, resolve));
    await this.#remote.send({ jsonrpc: '2.0', id, method, ...(params !== undefined ? { params } : {}) });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer to ${method} within ${REOPEN_TIMEOUT_MS} ms`)), REOPEN_TIMEOUT_MS)));
    try {
      return await Promise.race([answer, timeout]);
    } finally {
      clearTimeout(timer);
      this.#own.delete(id);
    }
  }

  /** The client's subscriptions, to replay on a new session. */
  #remember(request: JSONRPCRequest): void {
    const uri = (request.params as { uri?: unknown } | undefined)?.uri;
    if (typeof uri !== 'string') return;
    if (request.method === 'resources/subscribe') this.#subscriptions.add(uri);
    else if (request.method === 'resources/unsubscribe') this.#subscriptions.delete(uri);
  }

  #toLocal(message: JSONRPCMessage): void {
    const answerId = isJSONRPCResultResponse(message) || isJSONRPCErrorResponse(message) ? message.id : undefined;
    const own = answerId !== undefined ? this.#own.get(answerId) : undefined;
    if (answerId !== undefined && own !== undefined) {
      this.#own.delete(answerId);
      own(message);
      return;
    }
    const release = answerId !== undefined ? this.#initializing.get(answerId) : undefined;
    if (answerId !== undefined && release !== undefined) {
      this.#initializing.delete(answerId);
      // Later requests must carry MCP-Protocol-Version, as the SDK client sets it.
      const version = isJSONRPCResultResponse(message) ? (message.result as { protocolVersion?: unknown }).protocolVersion : undefined;
      if (typeof version === 'string') this.#remote.setProtocolVersion?.(version);
      release();
    }
    if (this.#closing) return;
    const answered = answerId;
    this.#local
      .send(message)
      .catch((err: unknown) => this.#report('stdio', err))
      .finally(() => answered !== undefined && this.#answered(answered));
  }

  #answered(id: RequestId): void {
    this.#pending.delete(id);
    if (this.#pending.size === 0) this.#onIdle?.();
  }

  /** A message the gateway did not take: a request gets a JSON-RPC error, so the client is not left waiting. */
  #failed(message: JSONRPCMessage, err: unknown): void {
    if (this.#closing) return;
    if (!(typeof err === 'object' && err !== null && this.#reported.has(err))) this.#report('gateway', err);
    if (!isJSONRPCRequest(message)) return;
    this.#initializing.get(message.id)?.();
    this.#initializing.delete(message.id);
    const reply: JSONRPCMessage = {
      jsonrpc: '2.0',
      id: message.id,
      error: { code: GATEWAY_ERROR_CODE, message: `gateway: ${describeError(err)}` },
    };
    this.#local
      .send(reply)
      .catch((e: unknown) => this.#report('stdio', e))
      .finally(() => this.#answered(message.id));
  }

  #report(side: 'stdio' | 'gateway', err: unknown): void {
    if (typeof err === 'object' && err !== null) this.#reported.add(err);
    this.#log(`${side} error: ${describeError(err)}`);
  }
}

async function withTimeout(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)));
  try {
    await Promise.race([work.catch(() => {}), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Run the bridge until stdin ends, a signal arrives or either side closes. Resolves with the
 * exit code: 0 for a normal end, 1 when a side failed, USAGE_EXIT for bad options.
 */
export async function runMcpBridge(opts: McpBridgeOptions): Promise<number> {
  const stdin = opts.stdin ?? process.stdin;
  const stdout = opts.stdout ?? process.stdout;
  const stderr = opts.stderr ?? process.stderr;
  const log = (line: string) => void stderr.write(`unified-gateway mcp: ${line}\n`);

  const url = parseGatewayUrl(opts.url);
  if (typeof url === 'string') return usage(log, url);
  const credentials = pickCredentials(opts, opts.env ?? processEnvironment());
  if (typeof credentials === 'string') return usage(log, credentials);

  const remote = new StreamableHTTPClientTransport(url, { requestInit: { headers: authHeaders(credentials) } });
  const relay = new McpRelay(new StdioServerTransport(stdin, stdout), remote, log);

  const stop = () => void relay.close(0);
  const stdinEnded = () => void relay.finish();
  // The client went away: writing more would only raise EPIPE.
  const stdoutFailed = () => void relay.close(1);
  stdin.once('end', stdinEnded);
  stdout.on('error', stdoutFailed);
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    await relay.start();
    const auth = credentials.apiKey !== undefined ? 'API key' : credentials.token !== undefined ? 'bearer token' : 'no credentials';
    log(`relaying stdio to ${url.origin}${url.pathname} (${auth})`);
    return await relay.closed;
  } finally {
    stdin.off('end', stdinEnded);
    stdout.off('error', stdoutFailed);
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

function usage(log: (line: string) => void, problem: string): number {
  log(problem);
  return USAGE_EXIT;
}
