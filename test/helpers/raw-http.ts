import { connect } from 'node:net';
import type { HttpResult } from './http.js';

/**
 * One HTTP/1.1 request written byte for byte on a fresh TCP connection: the request target
 * goes out exactly as given (`/./`, `%2f`, `\`, absolute-form, `*`), which neither fetch nor
 * node:http promise. The answer is read to the end of the connection (Connection: close).
 */
export function rawRequest(
  baseUrl: string,
  target: string,
  options: { method?: string; headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<HttpResult> {
  const { hostname, port } = new URL(baseUrl);
  const headers = { host: `${hostname}:${port}`, ...options.headers, connection: 'close' };
  const head = `${options.method ?? 'GET'} ${target} HTTP/1.1\r\n${Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n`;
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    socket.setTimeout(options.timeoutMs ?? 10_000, () => socket.destroy(new Error(`raw request ${target} timed out`)));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => {
      try {
        resolve(parseResponse(Buffer.concat(chunks)));
      } catch (err) {
        reject(err);
      }
    });
    socket.write(Buffer.from(head, 'latin1'));
  });
}

function parseResponse(data: Buffer): HttpResult {
  const end = data.indexOf('\r\n\r\n');
  if (end === -1) throw new Error(`no complete response: ${JSON.stringify(data.toString('latin1').slice(0, 200))}`);
  const [statusLine = '', ...lines] = data.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0);
  const headers: Record<string, string | string[]> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    const prior = headers[name];
    if (name === 'set-cookie') headers[name] = [...((prior as string[] | undefined) ?? []), value];
    else headers[name] = prior === undefined ? value : `${prior as string}, ${value}`;
  }
  let body = data.subarray(end + 4);
  if (String(headers['transfer-encoding'] ?? '').toLowerCase().includes('chunked')) body = dechunk(body);
  const text = body.toString('utf8');
  return {
    status,
    headers,
    text,
    json() {
      try {
        return JSON.parse(text);
      } catch {
        throw new Error(`not JSON (status ${status}): ${text.slice(0, 500)}`);
      }
    },
  };
}

function dechunk(body: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = body.indexOf('\r\n', at);
    if (lineEnd === -1) break;
    const size = parseInt(body.subarray(at, lineEnd).toString('latin1'), 16);
    if (!Number.isFinite(size) || size === 0) break;
    parts.push(body.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
  return Buffer.concat(parts);
}
