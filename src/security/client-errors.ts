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

/**
 * Requests Node's HTTP parser refuses (conflicting Content-Length/Transfer-Encoding,
 * oversized headers, garbage) never reach Fastify; answer them in the catalogue's shape
 * and close the connection, as Node itself would.
 */
export function createClientErrorHandler() {
  // Fastify binds the handler to the instance, so `this.log` is the gateway's logger.
  return function clientErrorHandler(this: { log: FastifyBaseLogger }, err: NodeJS.ErrnoException, socket: Socket): void {
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    const code = clientErrorCode(err);
    const status = ERROR_CATALOGUE[code].status;
    const body = JSON.stringify(errorBody(code, randomUUID()));
    this.log.debug({ code, parserError: err.code }, 'request refused by the HTTP parser');
    if (socket.writable) {
      socket.end(
        `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
          `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    } else {
      socket.destroy(err);
    }
  };
}
