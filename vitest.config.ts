import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // e2e suites start real processes on loopback, each on ports the OS picks (port 0); files
    // run in parallel workers, tests inside a file in order.
    pool: 'forks',
    // Two files at a time: most e2e time is spent waiting on the processes a file starts, so a
    // second worker uses the other core (quiet 2-core machine: 11 min with one, under 6 with two).
    maxWorkers: 2,
  },
});
