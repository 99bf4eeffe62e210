import { WebSocket } from 'ws';
import type { ClientRequest, IncomingMessage } from 'node:http';
import { GatewayError } from '../errors.js';
import { classifyUpstreamError } from '../proxy/exchange.js';
import { FailedResponse, isBreakerOpen, Uncounted, type UpstreamBreaker } from '../resilience/index.js';

/*
 * The upstream side of a proxied WebSocket, opened BEFORE the client's upgrade is answered:
 * an upstream that refuses the upgrade (any status but 101), cannot be reached or does not
 * answer within the handshake deadline gives the client an HTTP error in the catalogue's
 * shape (502 / 504) instead of an upgrade that closes at once. Each attempt goes through the
 * host's circuit breaker like an HTTP request: refusals with 5xx, unreachable hosts and
 * timeouts count as failures; an open breaker answers 503 without trying.
 *
 * `ws` directly (not @fastify/websocket, which is the server side): a client socket with
 * our own handshake deadline and access to the refusing response's status.
 */

export interface UpstreamTarget {
  /** ws:// or wss:// URL with the path and query to open. */
  readonly url: string;
  readonly protocols: readonly string[];
  readonly headers: Readonly<Record<string, string | string[]>>;
  readonly timeoutMs: number;
  readonly maxPayload: number;
}

/** The upstream answered the upgrade with this status instead of 101. */
class Refused extends Error {
  constructor(readonly status: number) {
    super(`upstream answered the upgrade with ${status}`);
  }
}

const HANDSHAKE_TIMEOUT = Symbol('ws handshake timeout');

function open(target: UpstreamTarget, signal: AbortSignal): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(target.url, [...target.protocols], {
      headers: { ...target.headers } as Record<string, string>,
      maxPayload: target.maxPayload,
      perMessageDeflate: false,
      followRedirects: false,
    });
    const timer = setTimeout(() => {
      ws.terminate();
      reject(HANDSHAKE_TIMEOUT);
    }, target.timeoutMs);
    const onAbort = () => {
      ws.terminate();
      reject(new Uncounted(new GatewayError('GW_REQUEST_ABORTED')));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    const settle = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      ws.removeAllListeners('unexpected-response');
    };
    ws.once('open', () => {
      settle();
      // Nothing is read until the client's side is upgraded and the relay listens (a greeting
      // sent at once by the upstream would otherwise be emitted to no one).
      ws.pause();
      resolve(ws);
    });
    ws.on('unexpected-response', (req: ClientRequest, res: IncomingMessage) => {
      settle();
      res.resume();
      req.destroy();
      const refused = new Refused(res.statusCode ?? 0);
      // A 4xx is the request's business (path, auth of the upstream), not a failing host.
      reject((res.statusCode ?? 500) >= 500 ? new FailedResponse(refused) : new Uncounted(refused));
    });
    // Kept for the socket's life: an error between 'open' and the relay taking over is
    // answered by the 'close' that follows it (the relay checks the state it starts in).
    ws.on('error', (err) => {
      settle();
      ws.terminate();
      reject(err);
    });
  });
}

/**
 * Why no upstream socket: the error the client gets before its upgrade, and the `status`
 * label of gateway_service_requests (as the HTTP path counts: the upstream's status,
 * `timeout`, `unreachable`, `circuit_open`, `aborted`, `error`).
 */
export class UpstreamOpenFailure {
  constructor(
    readonly error: GatewayError,
    readonly status: string,
  ) {}
}

/** Open the upstream WebSocket through `breaker`. */
export async function openUpstream(target: UpstreamTarget, breaker: UpstreamBreaker | undefined, signal: AbortSignal): Promise<WebSocket | UpstreamOpenFailure> {
  try {
    return breaker === undefined ? await open(target, signal) : await breaker.fire(open, target, signal);
  } catch (thrown) {
    const err: unknown = thrown instanceof FailedResponse ? thrown.response : thrown instanceof Uncounted ? thrown.error : thrown;
    if (breaker !== undefined && isBreakerOpen(thrown)) return new UpstreamOpenFailure(breaker.unavailable(), 'circuit_open');
    if (err === HANDSHAKE_TIMEOUT) return new UpstreamOpenFailure(new GatewayError('GW_UPSTREAM_TIMEOUT', 'The upstream did not accept the WebSocket upgrade in time'), 'timeout');
    if (err instanceof Refused) return new UpstreamOpenFailure(new GatewayError('GW_WS_UPSTREAM_REFUSED', `The upstream refused the WebSocket upgrade (${err.status})`), String(err.status));
    if (err instanceof GatewayError) return new UpstreamOpenFailure(err, err.code === 'GW_REQUEST_ABORTED' ? 'aborted' : 'error');
    const { error, label } = classifyUpstreamError(err);
    return new UpstreamOpenFailure(error, label);
  }
}
