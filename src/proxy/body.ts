import { Transform, type TransformCallback, type Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { GatewayError } from '../errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** A JSON request body as received (buffered so it can be inspected and routed on). */
    rawJsonBody?: Buffer;
    /**
     * The body to forward once input validation has read it (src/security/body-inspection.ts):
     * the bytes as received, or a multipart body streaming through its inspector.
     */
    inspectedBody?: Buffer | Readable;
  }
}

/** application/json and application/<something>+json. */
const JSON_TYPE = /^application\/(?:[\w.-]+\+)?json\b/i;
const BODYLESS = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);

/**
 * Body handling for proxied routes: JSON bodies (small, bounded by limits.jsonBodyBytes)
 * are buffered so later stages can inspect them; every other body stays in request.raw
 * and streams to the upstream without being held in memory.
 */
export function registerProxyBodyParsers(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  // The JSON size limit is each route's `bodyLimit` (see jsonBodyLimit).
  app.addContentTypeParser(JSON_TYPE, { parseAs: 'buffer' }, (request, body: Buffer, done) => {
    request.rawJsonBody = body;
    done(null, undefined);
  });
  app.addContentTypeParser('*', (_request, _payload, done) => done(null, undefined));
}

/** Largest JSON body a route buffers: the JSON limit, or the route's own smaller body limit. */
export function jsonBodyLimit(jsonBodyBytes: number, routeBodyLimit: number | undefined): number {
  return Math.min(jsonBodyBytes, routeBodyLimit ?? Infinity);
}

/** Fails the stream once more than `limit` bytes went through (bodies sent without Content-Length). */
class ByteLimit extends Transform {
  #seen = 0;
  constructor(private readonly limit: number) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#seen += chunk.length;
    if (this.#seen > this.limit) cb(new GatewayError('GW_REQUEST_BODY_TOO_LARGE', `The body may be at most ${this.limit} bytes`));
    else cb(null, chunk);
  }
}

/** Whether the request has a body that goes upstream (chunked, or a Content-Length on a method that carries one). */
export function forwardsBody(request: FastifyRequest): boolean {
  const h = request.headers;
  if (h['transfer-encoding'] !== undefined) return true;
  const length = h['content-length'];
  return length !== undefined && length !== '0' && !BODYLESS.has(request.method);
}

/** What to send upstream as the body: the buffered (inspected) bytes, the stream, or nothing. */
export function upstreamBody(request: FastifyRequest, limit: number): Buffer | Readable | null {
  const inspected = request.inspectedBody;
  if (Buffer.isBuffer(inspected)) return inspected;
  if (request.rawJsonBody !== undefined) return request.rawJsonBody;
  if (!forwardsBody(request)) return null;
  const source = inspected ?? request.raw;
  if (request.headers['transfer-encoding'] !== undefined) {
    // A declared Content-Length was checked up front; a chunked body is counted as it flows.
    const limited = new ByteLimit(limit);
    source.on('error', (err) => limited.destroy(err));
    return source.pipe(limited);
  }
  return source;
}
