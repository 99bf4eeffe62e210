/**
 * Micro-benchmark of the canonical request target (src/routing/canonical-path.ts), which runs
 * on every request before routing (Fastify's rewriteUrl), and of the route check that follows
 * it for routes that have routes below them. Mean per call over batches, after a warm-up.
 *
 *   npx tsx bench/canonical-path.ts [--iterations N]
 */
import type { RouteConfig } from '../src/config/index.js';
import { canonicalTarget, PathGuard } from '../src/routing/canonical-path.js';

const iterations = Number(process.argv[process.argv.indexOf('--iterations') + 1]) || 500_000;

const route = (id: string, prefix: string): RouteConfig => ({ id, prefix, service: 'legacy', methods: null, auth: { required: true }, validation: 'strict', textFields: [], freeTextFields: [] });
const legacy = route('legacy', '/v1/legacyapp');
const guard = new PathGuard([route('legacy-admin', '/v1/legacyapp/admin'), legacy]);

const cases: { name: string; run: () => unknown }[] = [
  { name: 'plain path and query', run: () => canonicalTarget('/v1/knowledge/search?q=fog%20pricing&limit=10&lang=en') },
  { name: 'path with escapes (UTF-8, %20)', run: () => canonicalTarget('/v1/knowledge/documents/Q3%20report%20caf%c3%a9.pdf') },
  { name: 'absolute-form target', run: () => canonicalTarget('http://gateway.example/v1/twin/notes/42?x=1') },
  { name: 'refused (dot segment)', run: () => canonicalTarget('/v1/legacyapp/x/../admin') },
  { name: '1 KB path of escapes', run: () => canonicalTarget(`/v1/docs/${'%E6%97%A5'.repeat(114)}`) },
  { name: 'route check, route with a route below', run: () => guard.refusal({ url: '/v1/legacyapp/users/42', path: '/v1/legacyapp/users/42', encodedSlash: false, semicolon: false }, legacy) },
];

for (const c of cases) {
  for (let i = 0; i < 50_000; i++) c.run();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) c.run();
  const ns = Number(process.hrtime.bigint() - t0) / iterations;
  console.log(`${c.name.padEnd(42)} ${ns.toFixed(0).padStart(6)} ns/call`);
}
