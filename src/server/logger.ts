import cluster from 'node:cluster';
import { writeSync } from 'node:fs';
import type { LoggerOptions } from 'pino';
import { LogController, type FastifyReply, type FastifyRequest } from 'fastify';
import { DEFAULT_REDACTED_QUERY_PARAMS, type GatewayConfig } from '../config/index.js';
import '../auth/principal.js';

const REDACTED = '[redacted]';

/** A parameter name as matched: lower case, without the separators and brackets clients vary. */
function normalise(name: string): string {
  return name.toLowerCase().replace(/[-_.[\]\s]/g, '');
}

/**
 * A function that returns `url` with the values of secret query parameters replaced by
 * `[redacted]` (names and order kept). A parameter is secret when its name — percent-decoded,
 * lower-cased, without `-`, `_`, `.`, `[`, `]` — equals one of `names` (normalised the same
 * way) or ends with one: "token" covers `access_token`, `id_token`, `refresh_token`,
 * `X-Amz-Security-Token`, `user[token]`. Parameters are separated by `&` or `;`; a value runs
 * to the next separator (`=` inside it included). A URL without `?` is returned as is.
 */
export function queryRedactor(names: readonly string[] = DEFAULT_REDACTED_QUERY_PARAMS): (url: string) => string {
  const entries = [...new Set(names.map(normalise).filter((n) => n !== ''))];
  const secret = (rawName: string): boolean => {
    let name = rawName.replace(/\+/g, ' ');
    try {
      name = decodeURIComponent(name);
    } catch {
      // malformed escapes: match on the raw name
    }
    const n = normalise(name);
    return entries.some((e) => n === e || n.endsWith(e));
  };
  return (url: string): string => {
    const q = url.indexOf('?');
    if (q < 0) return url;
    let changed = false;
    // `&` and `;` both separate parameters (some servers accept either); the separators are kept.
    const parts = url.slice(q + 1).split(/([&;])/).map((pair) => {
      const eq = pair.indexOf('=');
      if (eq < 0) return pair;
      if (!secret(pair.slice(0, eq))) return pair;
      changed = true;
      return `${pair.slice(0, eq + 1)}${REDACTED}`;
    });
    if (!changed) return url;
    return `${url.slice(0, q + 1)}${parts.join('')}`;
  };
}

/**
 * Structured JSON logs (pino). Anything that could carry a credential is redacted by path,
 * as a second line of defence: the gateway never logs request headers on purpose. Where
 * Fastify itself logs a request (`req`: errors, failed writeHead), its URL is redacted as in
 * the access log.
 */
export function loggerOptions(config: Pick<GatewayConfig, 'logLevel'> & Partial<Pick<GatewayConfig, 'logging'>>): LoggerOptions {
  const redactUrl = queryRedactor(config.logging?.redactQueryParams);
  return {
    level: config.logLevel,
    // `name` (pino's field for the program) rather than `service`, which lines use for the backend
    // service they are about: one key each, where a JSON reader would keep only the last of two.
    // Under WORKER_THREADS each worker's lines say which process wrote them (src/server/cluster.ts).
    base: cluster.isWorker ? { name: 'unified-gateway', pid: process.pid } : { name: 'unified-gateway' },
    serializers: {
      req: (req: { method?: string; url?: string; ip?: string; socket?: { remotePort?: number } }) => ({
        method: req.method,
        url: typeof req.url === 'string' ? redactUrl(req.url) : undefined,
        remoteAddress: req.ip,
        remotePort: req.socket?.remotePort,
      }),
    },
    redact: {
      paths: [
        'req.headers.authorization',
        'req.headers.cookie',
        'req.headers["x-api-key"]',
        'headers.authorization',
        'headers.cookie',
        'headers["x-api-key"]',
        'token',
        'apiKey',
        'secret',
        'password',
      ],
      censor: REDACTED,
    },
  };
}

/** How long a log line may wait in the buffer before it is written anyway. */
export const LOG_FLUSH_INTERVAL_MS = 100;
/** Lines are written once this many characters are buffered (or on the interval above). */
const LOG_BUFFER_CHARS = 8 * 1024;
/** A 1 ms pause while stdout is full (a non-blocking pipe answering EAGAIN). */
const PAUSE = new Int32Array(new SharedArrayBuffer(4));

/**
 * Log lines buffered in memory and written to a file descriptor together, synchronously.
 * By hand rather than sonic-boom's `minLength`: sonic-boom measures the byte length of its
 * whole pending buffer on every line (flattening it), which cost more than the write(2) per
 * line it saves (the allocation profile showed ~4 KB per request).
 */
export class BufferedLines {
  #parts: string[] = [];
  #chars = 0;
  #closed = false;

  constructor(
    readonly fd: number,
    readonly limitChars: number = LOG_BUFFER_CHARS,
  ) {}

  write(line: string): boolean {
    if (this.#closed) return true;
    this.#parts.push(line);
    this.#chars += line.length;
    if (this.#chars >= this.limitChars) this.flushSync();
    return true;
  }

  /** pino's logger.flush() calls this. */
  flush(cb?: (err?: Error) => void): void {
    this.flushSync();
    cb?.();
  }

  flushSync(): void {
    if (this.#chars === 0) return;
    const bytes = Buffer.from(this.#parts.join(''), 'utf8');
    this.#parts = [];
    this.#chars = 0;
    let offset = 0;
    while (offset < bytes.length && !this.#closed) {
      try {
        offset += writeSync(this.fd, bytes, offset);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        // A full pipe: wait for the reader, as a synchronous write would have.
        if (code === 'EAGAIN' || code === 'EBUSY') Atomics.wait(PAUSE, 0, 0, 1);
        // The reader is gone (EPIPE) or the descriptor unusable: logging stops, serving does not.
        else this.#closed = true;
      }
    }
  }
}

let stdoutLines: BufferedLines | undefined;

/**
 * Where the gateway's log lines go: stdout, through one buffer per process. pino's default
 * destination writes every line with its own write(2): under load one syscall per request on
 * the event loop (issue 18's profile: about 3% of the busy CPU, the access log's line being
 * most of it). Here lines are written together once 8 KiB are waiting, and at the latest every
 * LOG_FLUSH_INTERVAL_MS (an unref'd timer), so an idle gateway's lines still show within a
 * tenth of a second; what is buffered is written when the process exits (also on
 * process.exit()). The writes stay synchronous (a stdout that cannot keep up slows the gateway
 * down instead of growing a buffer). A SIGKILL loses at most the last tenth of a second.
 */
export function logDestination(): BufferedLines {
  if (stdoutLines !== undefined) return stdoutLines;
  const lines = new BufferedLines(1);
  setInterval(() => lines.flushSync(), LOG_FLUSH_INTERVAL_MS).unref();
  process.on('exit', () => lines.flushSync());
  stdoutLines = lines;
  return lines;
}

/**
 * One access-log line per request, written when the response completes (Fastify's default
 * writes two: "incoming" and "completed"). It names the request, never its headers, and its
 * URL with the values of secret query parameters (`?access_token=`, `?api_key=`,
 * `X-Amz-Signature`, ...) replaced by `[redacted]` (`logging.redactQueryParams`).
 */
export class AccessLogController extends LogController {
  readonly #redactUrl: (url: string) => string;

  constructor(logging?: Pick<GatewayConfig['logging'], 'redactQueryParams'>) {
    super();
    this.#redactUrl = queryRedactor(logging?.redactQueryParams);
  }

  /** The URL as the logs show it. */
  redactUrl(url: string): string {
    return this.#redactUrl(url);
  }

  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const principal = request.principal;
    const line = {
      method: request.method,
      url: this.#redactUrl(request.url),
      status: reply.statusCode,
      ms: Math.round(reply.elapsedTime * 100) / 100,
      // Who, never with what credential: subject and key name only.
      ...(principal ? { sub: principal.subject } : {}),
    };
    if (error) reply.log.error({ ...line, err: error }, 'request errored');
    else reply.log.info(line, 'request completed');
  }

  override routeNotFound(request: FastifyRequest): void {
    request.log.info({ method: request.method, url: this.#redactUrl(request.url) }, 'route not found');
  }
}
