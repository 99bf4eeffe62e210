/**
 * Micro-benchmark of input validation (issue: "validation adds under 50 µs per typical
 * request"): the detectors run on typical requests in-process, timed over many iterations
 * after a warm-up, and reported as mean and p99 of per-request batches.
 *
 *   npx tsx bench/validation.ts [--iterations N]
 *
 * With `--adversarial`, it times every detector on the adversarial shapes of
 * test/security/adversarial.ts at 100 KB and 1 MB instead (issue 11: linear time). Each
 * (detector, shape) runs in a worker thread that is terminated after `--cap-seconds` (default
 * 30), so a backtracking detector is reported as "> cap" instead of blocking for minutes.
 *
 *   npx tsx bench/validation.ts --adversarial [--cap-seconds 30] [--sizes 100000,1000000]
 *     [--targets <regex>] [--shapes <regex>] [--all]   (--all: every row, not only each detector's worst)
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { inspectRequest, type InspectInput, type InspectOptions } from '../src/security/detect/index.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i === -1 ? undefined : process.argv[i + 1];
}

const iterations = Number(arg('--iterations')) || 200_000;

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

function typical(): void {
  console.log(`input validation, ${iterations} requests per case, node ${process.version}`);
  console.log(`${'case'.padEnd(50)} ${'mean µs'.padStart(8)} ${'p99 µs'.padStart(8)}`);
  let worst = 0;
  for (const c of cases) {
    const r = measure(c);
    worst = Math.max(worst, r.p99Us);
    console.log(`${c.name.padEnd(50)} ${r.meanUs.toFixed(2).padStart(8)} ${r.p99Us.toFixed(2).padStart(8)}`);
  }
  console.log(`target: under 50 µs per typical request -> ${worst < 50 ? 'PASS' : 'FAIL'} (worst p99 ${worst.toFixed(2)} µs)`);
}

// ---- adversarial inputs (linear time) ----------------------------------------------------------

interface Job {
  readonly target: string;
  readonly shape: string;
  readonly sizes: readonly number[];
}

/** Worker side: times one (target, shape) at each size and posts each figure as soon as it has it. */
async function runJob(job: Job): Promise<void> {
  const { SHAPES, TARGETS, timeCall } = await import('../test/security/adversarial.js');
  const fn = TARGETS[job.target] as (s: string) => unknown;
  const make = SHAPES[job.shape] as (n: number) => string;
  timeCall(fn, make(10_000), 20); // warm-up
  for (const size of job.sizes) {
    const input = make(size);
    parentPort?.postMessage({ size, ms: timeCall(fn, input, 5) });
  }
}

function runInWorker(job: Job, capMs: number): Promise<Map<number, number>> {
  return new Promise((resolve, reject) => {
    const results = new Map<number, number>();
    const worker = new Worker(new URL(import.meta.url), { workerData: job });
    const timer = setTimeout(() => void worker.terminate(), capMs);
    worker.on('message', (m: { size: number; ms: number }) => results.set(m.size, m.ms));
    worker.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    worker.on('exit', () => {
      clearTimeout(timer);
      resolve(results);
    });
  });
}

const fmt = (ms: number | undefined, capS: number) =>
  ms === undefined ? `> ${capS} s` : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms < 10 ? 2 : 1)} ms`;

async function adversarial(): Promise<void> {
  const { SHAPES, TARGETS } = await import('../test/security/adversarial.js');
  const capS = Number(arg('--cap-seconds')) || 30;
  const sizes = (arg('--sizes') ?? '100000,1000000').split(',').map(Number);
  const targetRe = new RegExp(arg('--targets') ?? '');
  const shapeRe = new RegExp(arg('--shapes') ?? '');
  const all = process.argv.includes('--all');
  console.log(`detectors on adversarial inputs, best of 5 calls (fewer past 1 s), cap ${capS} s per (detector, shape), node ${process.version}`);
  const head = `${'detector'.padEnd(30)} ${'shape'.padEnd(22)} ${sizes.map((s) => `${s / 1000} KB`.padStart(10)).join(' ')}  ratio`;
  console.log(head);
  for (const target of Object.keys(TARGETS).filter((t) => targetRe.test(t))) {
    let worst: { shape: string; r: Map<number, number> } | undefined;
    for (const shape of Object.keys(SHAPES).filter((s) => shapeRe.test(s))) {
      const r = await runInWorker({ target, shape, sizes }, capS * 1000);
      const last = r.get(sizes[sizes.length - 1] as number) ?? Number.POSITIVE_INFINITY;
      const worstLast = worst === undefined ? -1 : (worst.r.get(sizes[sizes.length - 1] as number) ?? Number.POSITIVE_INFINITY);
      if (worst === undefined || last > worstLast) worst = { shape, r };
      if (all) console.log(line(target, shape, r));
    }
    if (!all && worst !== undefined) console.log(line(target, worst.shape, worst.r));
  }

  function line(target: string, shape: string, r: Map<number, number>): string {
    const first = r.get(sizes[0] as number);
    const last = r.get(sizes[sizes.length - 1] as number);
    const ratio = first !== undefined && last !== undefined ? `${(last / first).toFixed(1)}x` : '-';
    return `${target.padEnd(30)} ${shape.padEnd(22)} ${sizes.map((s) => fmt(r.get(s), capS).padStart(10)).join(' ')}  ${ratio}`;
  }
}

if (!isMainThread) await runJob(workerData as Job);
else if (process.argv.includes('--adversarial')) await adversarial();
else typical();
