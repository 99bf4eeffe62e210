import cluster from 'node:cluster';
import { pino } from 'pino';
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
export function loggerOptions(config: Pick<GatewayConfig, 'logLevel'> & Partial<Pick<GatewayConfig, 'logging'>>): pino.LoggerOptions {
  const redactUrl = queryRedactor(config.logging?.redactQueryParams);
  return {
    level: config.logLevel,
    // Under WORKER_THREADS each worker's lines say which process wrote them (src/server/cluster.ts).
    base: cluster.isWorker ? { service: 'unified-gateway', pid: process.pid } : { service: 'unified-gateway' },
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

let stdoutDestination: pino.DestinationStream | undefined;

/**
 * Where the gateway's log lines go: stdout through one buffered sonic-boom per process.
 * pino's default destination writes every line with its own write(2): under load one syscall
 * per request on the event loop (issue 18's profile: about 3% of the busy CPU, the access
 * log's line being most of it). Here lines are buffered and written together once 8 KiB are
 * there, and at the latest every LOG_FLUSH_INTERVAL_MS (an unref'd timer), so an idle gateway's
 * lines still show within a tenth of a second; what is buffered is written synchronously when
 * the process exits (also on process.exit()). The writes themselves stay synchronous (no
 * thread-pool hop per write, and a stdout that cannot keep up slows the gateway down instead
 * of growing a buffer). A SIGKILL loses at most the last tenth of a second of lines.
 */
export function logDestination(): pino.DestinationStream {
  if (stdoutDestination !== undefined) return stdoutDestination;
  const dest = pino.destination({ dest: 1, sync: true, minLength: LOG_BUFFER_CHARS });
  const flush = () => {
    try {
      dest.flushSync();
    } catch {
      // stdout closed (EPIPE) or not ready: nothing to write to
    }
  };
  setInterval(flush, LOG_FLUSH_INTERVAL_MS).unref();
  process.on('exit', flush);
  stdoutDestination = dest;
  return dest;
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
