import type { IncomingMessage, ServerResponse } from 'node:http';
import helmet, { type HelmetOptions } from 'helmet';

/**
 * The gateway's security headers, computed once by helmet at boot.
 *
 * Why not @fastify/helmet: it runs `helmet(options)` again on every request (re-parsing the
 * CSP directives and rebuilding eleven middlewares), about 5% of the CPU of a cached
 * answer. Without CSP nonces every header helmet sets is the same for every request, so
 * helmet sets them once on a recording response here and the hook copies the list.
 */
export function securityHeaders(options: Readonly<HelmetOptions>): ReadonlyArray<readonly [string, string]> {
  const recorded = new Map<string, string>();
  const response = {
    setHeader(name: string, value: string | number | readonly string[]) {
      recorded.set(name, Array.isArray(value) ? value.join(', ') : String(value));
      return response;
    },
    removeHeader(name: string) {
      recorded.delete(name);
    },
  };
  let failure: unknown;
  helmet(options)({} as IncomingMessage, response as unknown as ServerResponse, (err?: unknown) => {
    failure = err;
  });
  if (failure !== undefined) throw failure instanceof Error ? failure : new Error(String(failure));
  return [...recorded];
}
