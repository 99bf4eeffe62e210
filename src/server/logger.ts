import { LogController, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import type { GatewayConfig } from '../config/index.js';
import './route-config.js';

/**
 * Structured JSON logs (pino). Anything that could carry a credential is redacted by path,
 * as a second line of defence: the gateway never logs request headers on purpose.
 */
export function loggerOptions(config: Pick<GatewayConfig, 'logLevel'>): FastifyServerOptions['logger'] {
  return {
    level: config.logLevel,
    base: { service: 'unified-gateway' },
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
      censor: '[redacted]',
    },
  };
}

/**
 * One access-log line per request, written when the response completes (Fastify's default
 * writes two: "incoming" and "completed"). It names the request, never its headers.
 */
export class AccessLogController extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const principal = request.principal;
    const line = {
      method: request.method,
      url: request.url,
      status: reply.statusCode,
      ms: Math.round(reply.elapsedTime * 100) / 100,
      // Who, never with what credential: subject and key name only.
      ...(principal ? { sub: principal.subject } : {}),
    };
    if (error) reply.log.error({ ...line, err: error }, 'request errored');
    else reply.log.info(line, 'request completed');
  }
}
