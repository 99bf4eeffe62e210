import { describe, expect, it } from 'vitest';
import { parseWrk } from '../../bench/load.js';

// wrk 4.x's report with --latency, as `npm run bench` reads it (bench/load.ts).
const REPORT = `Running 10s test @ http://127.0.0.1:41234/v1/twin/bench
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     5.12ms    2.01ms  87.30ms   91.20%
    Req/Sec     9.85k   512.33    10.90k    70.00%
  Latency Distribution
     50%    4.80ms
     75%    5.60ms
     90%    6.90ms
     99%  850.00us
  98012 requests in 10.01s, 25.10MB read
  Socket errors: connect 0, read 2, write 1, timeout 3
  Non-2xx or 3xx responses: 7
Requests/sec:   9791.41
Transfer/sec:      2.51MB
`;

describe('parseWrk', () => {
  it('reads throughput, latency percentiles in ms whatever the unit, errors and non-2xx', () => {
    const r = parseWrk(REPORT, 10);
    expect(r.requests).toEqual({ average: 9791.41, total: 98012, sent: 98012 });
    expect(r.latency.p50).toBeCloseTo(4.8);
    expect(r.latency.p90).toBeCloseTo(6.9);
    expect(r.latency.p99).toBeCloseTo(0.85); // microseconds converted
    expect(r.latency.max).toBeCloseTo(87.3);
    expect(r.errors).toBe(3);
    expect(r.timeouts).toBe(3);
    expect(r.non2xx).toBe(7);
    expect(r.duration).toBeCloseTo(10.01);
  });

  it('counts no errors when wrk prints no error lines, and refuses output it cannot read', () => {
    const clean = REPORT.replace(/ {2}Socket errors.*\n/, '').replace(/ {2}Non-2xx.*\n/, '');
    const r = parseWrk(clean, 10);
    expect([r.errors, r.timeouts, r.non2xx]).toEqual([0, 0, 0]);
    expect(() => parseWrk('unable to connect to 127.0.0.1:1 Connection refused', 10)).toThrow(/unexpected wrk output/);
  });
});
