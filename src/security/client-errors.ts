import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyBaseLogger } from 'fastify';
import { errorBody, type ErrorCode, ERROR_CATALOGUE } from '../errors.js';

/** Parser errors that mean the message framing is ambiguous: the request-smuggling family. */
const FRAMING_ERRORS = new Set([
  'HPE_INVALID_TRANSFER_ENCODING',
  'HPE_UNEXPECTED_CONTENT_LENGTH',
  'HPE_INVALID_CONTENT_LENGTH',
  'HPE_INVALID_CHUNK_SIZE',
  'HPE_CR_EXPECTED',
  'HPE_LF_EXPECTED',
]);

export function clientErrorCode(err: NodeJS.ErrnoException): ErrorCode {
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return 'GW_REQUEST_TIMEOUT';
  if (err.code === 'HPE_HEADER_OVERFLOW') return 'GW_REQUEST_HEADERS_TOO_LARGE';
  if (err.code !== undefined && FRAMING_ERRORS.has(err.code)) return 'GW_SECURITY_REQUEST_SMUGGLING';
  return 'GW_REQUEST_INVALID';
}

/** How long a refused connection may take to flush its answer before it is destroyed anyway. */
const CLOSE_LINGER_MS = 1000;

/**
 * Answers `code` in the catalogue's shape straight on the socket when no response of the
 * current request has started (a second status line would corrupt the stream), then closes
 * it for good: our side ends, and the socket is destroyed once the answer is flushed, or
 * after a short linger when the client does not read. The HTTP server is half-open, so
 * `end()` alone would let a client that never closes hold the connection forever.
 */
export function answerAndClose(socket: Socket, code: ErrorCode, responseStarted: boolean): void {
  if (socket.destroyed) return;
  if (responseStarted || !socket.writable) {
    socket.destroy();
    return;
  }
  const status = ERROR_CATALOGUE[code].status;
  const body = JSON.stringify(errorBody(code, randomUUID()));
  const linger = setTimeout(() => socket.destroy(), CLOSE_LINGER_MS);
  linger.unref();
  socket.once('close', () => clearTimeout(linger));
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    () => socket.destroy(),
  );
}

export interface ClientErrorHandlerOptions {
  /** True when a response to the socket's current request has begun (src/server/client-timeouts.ts). */
  readonly responseStarted?: (socket: Socket) => boolean;
  /** Told of each request Node's own timers cut (headersTimeout, requestTimeout). */
  readonly onTimeout?: (socket: Socket) => void;
}

/**
 * Requests Node's HTTP parser refuses (conflicting Content-Length/Transfer-Encoding,
 * oversized headers, garbage) or its timers cut (headers or whole request too slow) never
 * reach Fastify; answer them in the catalogue's shape and close the connection.
 */
export function createClientErrorHandler(options: ClientErrorHandlerOptions = {}) {
  // Fastify binds the handler to the instance, so `this.log` is the gateway's logger.
  return function clientErrorHandler(this: { log: FastifyBaseLogger }, err: NodeJS.ErrnoException, socket: Socket): void {
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    const code = clientErrorCode(err);
    if (code === 'GW_REQUEST_TIMEOUT') options.onTimeout?.(socket);
    this.log.debug({ code, parserError: err.code }, 'request refused by the HTTP parser');
    answerAndClose(socket, code, options.responseStarted?.(socket) ?? false);
  };
}
