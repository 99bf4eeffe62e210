import { E2E_API_KEY } from './gateway.js';
import { request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';

export interface HttpResult {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly text: string;
  /** The body parsed as JSON (throws with the text when it is not). */
  json<T = any>(): T;
}

/**
 * One request over a fresh connection with node:http, which (unlike fetch) sends any header
 * as given, Connection and TE included. `body` may be a string or Buffer.
 */
export function call(
  url: string,
  options: { method?: string; headers?: OutgoingHttpHeaders; body?: string | Buffer; timeoutMs?: number; anonymous?: boolean } = {},
): Promise<HttpResult> {
  const headers: OutgoingHttpHeaders = { ...options.headers };
  // Authenticated as the e2e admin key unless the test sends its own credentials or none.
  if (!options.anonymous && headers.authorization === undefined && headers['x-api-key'] === undefined) headers['x-api-key'] = E2E_API_KEY;
  // node:http sends a DELETE/OPTIONS body with neither length nor chunking unless told.
  if (options.body !== undefined && headers['content-length'] === undefined && headers['transfer-encoding'] === undefined) {
    headers['content-length'] = Buffer.byteLength(options.body);
  }
  return new Promise((resolve, reject) => {
    // The request-target goes out exactly as written: a WHATWG URL would resolve `..` and
    // re-encode characters, and the gateway must see what an attacker can really send.
    const target = /^(https?):\/\/([^/:]+)(?::(\d+))?(\/.*)?$/.exec(url);
    if (target === null) throw new Error(`call(): not an absolute http URL: ${url}`);
    const [, , host, port, path = '/'] = target;
    const req = httpRequest({ host, port: port ?? 80, path, method: options.method ?? 'GET', headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          text,
          json() {
            try {
              return JSON.parse(text);
            } catch {
              throw new Error(`not JSON (status ${res.statusCode}): ${text.slice(0, 500)}`);
            }
          },
        });
      });
    });
    req.setTimeout(options.timeoutMs ?? 10_000, () => req.destroy(new Error(`request to ${url} timed out`)));
    req.on('error', reject);
    req.end(options.body);
  });
}
