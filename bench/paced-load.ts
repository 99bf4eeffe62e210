/**
 * Child-process entry of `pacedLoad` (bench/load.ts): a paced open-loop load at a fixed rate,
 * printed as one JSON line. Usage: tsx bench/paced-load.ts URL RATE SECONDS HEADERS_JSON
 */
import { probe } from './load.js';

const [url, rate, seconds, headers] = process.argv.slice(2);
if (url === undefined || rate === undefined || seconds === undefined) {
  process.stderr.write('usage: paced-load URL RATE SECONDS [HEADERS_JSON]\n');
  process.exit(2);
}
// Connections enough for the rate at a few ms of latency, as autocannon's -c 50 would give.
const result = await probe(url, Number(rate), Number(seconds), {
  headers: headers ? (JSON.parse(headers) as Record<string, string>) : {},
  connections: 50,
});
process.stdout.write(`${JSON.stringify(result)}\n`);
