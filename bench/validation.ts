/**
 * Micro-benchmark of input validation (issue: "validation adds under 50 µs per typical
 * request"): the detectors run on typical requests in-process, timed over many iterations
 * after a warm-up, and reported as mean and p99 of per-request batches.
 *
 *   npx tsx bench/validation.ts [--iterations N]
 */
import { inspectRequest, type InspectInput, type InspectOptions } from '../src/security/detect/index.js';

const iterations = Number(process.argv[process.argv.indexOf('--iterations') + 1]) || 200_000;

const headers = {
  host: 'gateway.example.org',
  'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36',
  referer: 'https://app.example.org/chat/42',
  accept: 'application/json',
  'content-type': 'application/json',
  authorization: 'Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl',
  'x-client-version': '2.14.1',
};

const cases: { name: string; input: InspectInput; options: InspectOptions }[] = [
  {
    name: 'GET with query string',
    input: { path: '/v1/knowledge/search', query: 'q=fog%20pricing%20in%20eu-west&limit=10&lang=en', headers },
    options: { mode: 'strict' },
  },
  {
    name: 'POST JSON, one sentence (/v1/query, text fields)',
    input: {
      path: '/v1/query',
      query: '',
      headers,
      body: { query: "What's the status of my fog job 8812, and can you drop me a note when it finishes?", options: { stream: false, topK: 5 } },
    },
    options: { mode: 'strict', textFields: new Set(['query', 'prompt', 'message']) },
  },
  {
    name: 'POST JSON, nested note (strict)',
    input: {
      path: '/v1/twin/notes',
      query: '',
      headers,
      body: {
        title: 'Plan for Q3 (draft)',
        text: 'Select the best option from the table; I <3 this idea. O\'Reilly book -> ch. 4 & 5.',
        tags: ['planning', 'r&d'],
        reminder: { at: '2026-12-01T09:00:00Z', repeat: null },
      },
    },
    options: { mode: 'strict' },
  },
];

function measure(c: (typeof cases)[number]): { meanUs: number; p99Us: number } {
  for (let i = 0; i < 20_000; i++) inspectRequest(c.input, c.options);
  // Batches of 100 calls: per-call timing is below the clock's resolution.
  const batches: number[] = [];
  for (let done = 0; done < iterations; done += 100) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < 100; i++) {
      if (inspectRequest(c.input, c.options) !== null) throw new Error(`benign request rejected: ${c.name}`);
    }
    batches.push(Number(process.hrtime.bigint() - t0) / 100 / 1000);
  }
  batches.sort((a, b) => a - b);
  const mean = batches.reduce((a, b) => a + b, 0) / batches.length;
  return { meanUs: mean, p99Us: batches[Math.floor(batches.length * 0.99)]! };
}

console.log(`input validation, ${iterations} requests per case, node ${process.version}`);
console.log(`${'case'.padEnd(50)} ${'mean µs'.padStart(8)} ${'p99 µs'.padStart(8)}`);
let worst = 0;
for (const c of cases) {
  const r = measure(c);
  worst = Math.max(worst, r.p99Us);
  console.log(`${c.name.padEnd(50)} ${r.meanUs.toFixed(2).padStart(8)} ${r.p99Us.toFixed(2).padStart(8)}`);
}
console.log(`target: under 50 µs per typical request -> ${worst < 50 ? 'PASS' : 'FAIL'} (worst p99 ${worst.toFixed(2)} µs)`);
