import { describe, expect, it } from 'vitest';
import { Readable } from 'node:stream';
import { loadConfig } from '../../src/config/index.js';
import { DEFAULT_RETRY_CONFIG, RetryBudget, RetryPolicy, type RetryConfig } from '../../src/resilience/index.js';

const config = (over: Partial<RetryConfig> = {}): RetryConfig => ({ ...DEFAULT_RETRY_CONFIG, ...over });

describe('RetryBudget', () => {
  it('allows retries up to the share of requests, with a floor', () => {
    let now = 0;
    const budget = new RetryBudget({ budgetPercent: 20, budgetMinRetries: 2, budgetWindowMs: 10_000 }, () => now);
    expect(budget.tryRetry()).toBe(true);
    expect(budget.tryRetry()).toBe(true);
    expect(budget.tryRetry()).toBe(false); // floor of 2 used, no requests yet
    for (let i = 0; i < 50; i++) budget.recordRequest();
    let granted = 0;
    while (budget.tryRetry()) granted += 1;
    expect(granted).toBe(8); // 20 % of 50 = 10 in all
    expect(budget.retries).toBe(10);
    now = 5_000;
    expect(budget.tryRetry()).toBe(false); // same window
    now = 10_500; // the first bucket has rolled out of the window
    expect(budget.requests).toBe(0);
    expect(budget.retries).toBe(0);
    expect(budget.tryRetry()).toBe(true);
  });

  it('rolls buckets out one by one', () => {
    let now = 0;
    const budget = new RetryBudget({ budgetPercent: 100, budgetMinRetries: 0, budgetWindowMs: 1000 }, () => now);
    for (let t = 0; t < 1000; t += 100) {
      now = t;
      budget.recordRequest();
    }
    expect(budget.requests).toBe(10);
    now = 1050;
    expect(budget.requests).toBe(9);
    now = 1550;
    expect(budget.requests).toBe(4);
    now = 100_000;
    expect(budget.requests).toBe(0);
  });
});

describe('RetryPolicy', () => {
  const headers = {};
  it('retries idempotent methods and keyed requests with resendable bodies only', () => {
    const policy = new RetryPolicy(config({ budgetMinRetries: 1000 }));
    for (const m of ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']) expect(policy.decide(m, headers, null, 1)).toBe('retry');
    expect(policy.decide('POST', headers, null, 1)).toBe('no');
    expect(policy.decide('PATCH', headers, Buffer.from('{}'), 1)).toBe('no');
    expect(policy.decide('POST', { 'idempotency-key': 'a' }, Buffer.from('{}'), 1)).toBe('retry');
    expect(policy.decide('PUT', headers, Readable.from(['x']), 1)).toBe('no');
    expect(policy.decide('GET', headers, null, 2)).toBe('retry');
    expect(policy.decide('GET', headers, null, 3)).toBe('no'); // maxRetries 2
  });

  it('reports a refused retry as budget_exhausted', () => {
    const policy = new RetryPolicy(config({ budgetMinRetries: 0 }));
    expect(policy.decide('GET', headers, null, 1)).toBe('budget_exhausted');
  });

  it('backs off exponentially with jitter, capped', () => {
    const policy = new RetryPolicy(config({ baseDelayMs: 100, maxDelayMs: 300 }));
    expect(policy.delayMs(1, 0)).toBe(50);
    expect(policy.delayMs(1, 1)).toBe(100);
    expect(policy.delayMs(2, 0.5)).toBe(150);
    expect(policy.delayMs(3, 1)).toBe(300);
    expect(policy.delayMs(10, 1)).toBe(300);
    for (let i = 0; i < 100; i++) {
      const d = policy.delayMs(2);
      expect(d).toBeGreaterThanOrEqual(100);
      expect(d).toBeLessThanOrEqual(200);
    }
    expect(policy.retriesStatus(503)).toBe(true);
    expect(policy.retriesStatus(500)).toBe(false);
  });
});

describe('config: services.<name>.retries and maxInFlight', () => {
  it('are read from the YAML, defaulted, and capped by REQUEST_QUEUE_SIZE', async () => {
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'ugw-retry-'));
    try {
      const file = join(dir, 'g.yaml');
      writeFileSync(file, 'services:\n  twin:\n    maxInFlight: 5000\n    retries:\n      maxRetries: 0\n  fog:\n    maxInFlight: 7\n');
      const result = loadConfig({ REQUEST_QUEUE_SIZE: '100' }, { file });
      if (!result.ok) throw new Error(result.problems.join('\n'));
      const { services } = result.config;
      expect(services.twin?.maxInFlight).toBe(100);
      expect(services.twin?.retries).toMatchObject({ maxRetries: 0, budgetPercent: 20, onStatuses: [502, 503, 504] });
      expect(services.fog?.maxInFlight).toBe(7);
      expect(services.fog?.retries).toEqual(DEFAULT_RETRY_CONFIG);
      expect(services.knowledge?.retries).toBeUndefined(); // not in the file: the same defaults apply
      expect(services.knowledge?.maxInFlight).toBe(100);
      writeFileSync(file, 'services:\n  twin:\n    retries:\n      onStatuses: [404]\n');
      const bad = loadConfig({}, { file });
      expect(bad.ok).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
