/**
 * The bare Node proxy the gateway is compared with (`npm run bench`, the "bare-proxy" column):
 * Fastify with @fastify/http-proxy in front of the stand-in, nothing else (no auth, no limits,
 * no validation, no metrics, no access log). It prints its URL once it listens.
 * Usage: node --import tsx bench/bare-proxy.ts UPSTREAM_URL
 */
import proxy from '@fastify/http-proxy';
import Fastify from 'fastify';

const upstream = process.argv[2];
if (upstream === undefined) {
  process.stderr.write('usage: bare-proxy UPSTREAM_URL\n');
  process.exit(2);
}
const app = Fastify({ logger: false });
// The same pool size as the gateway's default CONNECTION_POOL_SIZE.
await app.register(proxy, { upstream, undici: { connections: 100, pipelining: 1 } });
const url = await app.listen({ host: '127.0.0.1', port: 0 });
process.stdout.write(`listening on ${url}\n`);
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => void app.close().then(() => process.exit(0)));
