import { describe, expect, it } from 'vitest';
import { fileSchema } from '../../src/config/schema.js';
import { createMetrics } from '../../src/metrics/registry.js';
import { canonicalIp, CidrSet, clientKey, isClientKey } from '../../src/ratelimit/client-key.js';
import { rateLimitHeaders, type LimitOutcome } from '../../src/ratelimit/limiter.js';
import { ThreatDetector, type ThreatConfig } from '../../src/ratelimit/threat.js';
import { MemoryStore } from '../../src/state/memory.js';

const quiet = { info() {}, warn() {}, debug() {} };

function detector(overrides: Record<string, unknown> = {}, log: { info(): void; warn(o: object, m: string): void; debug(): void } = quiet) {
  let now = 0;
  const clock = { advance: (ms: number) => (now += ms) };
  const store = new MemoryStore({ now: () => now, sweepIntervalMs: 0 });
  const config: ThreatConfig = fileSchema.parse({ rateLimit: { threat: overrides } }).rateLimit.threat;
  const metrics = createMetrics({ durationBuckets: [1], defaultMetrics: false });
  const threats = new ThreatDetector({ store, config, log, metrics, now: () => now });
  const count = async (level: string) =>
    (await metrics.threatLevelDetections.get()).values.find((v) => v.labels.level === level)?.value ?? 0;
  return { threats, store, clock, metrics, count };
}

describe('ThreatDetector', () => {
  it('raises the level with the score and lowers it as the score decays', async () => {
    const { threats, clock, count } = detector({ halfLifeSeconds: 60 });
    expect(threats.levelOf('192.0.2.1')).toBe('low');
    for (let i = 0; i < 4; i++) await threats.apply('192.0.2.1', 'auth_failed'); // 32
    expect(threats.levelOf('192.0.2.1')).toBe('medium');
    for (let i = 0; i < 4; i++) await threats.apply('192.0.2.1', 'auth_failed'); // 64
    expect(threats.levelOf('192.0.2.1')).toBe('high');
    clock.advance(60_000); // 32
    expect(threats.levelOf('192.0.2.1')).toBe('medium');
    clock.advance(60_000); // 16
    expect(threats.levelOf('192.0.2.1')).toBe('low');
    // Each upward change is counted once, by level.
    expect(await count('medium')).toBe(1);
    expect(await count('high')).toBe(1);
    expect(await count('critical')).toBe(0);
  });

  it('counts distinct missing paths only; the same path again adds nothing', async () => {
    const { threats } = detector();
    for (let i = 0; i < 50; i++) await threats.apply('192.0.2.2', 'not_found', '/favicon.ico');
    expect(threats.levelOf('192.0.2.2')).toBe('low');
    for (let i = 0; i < 10; i++) await threats.apply('192.0.2.2', 'not_found', `/admin/${i}`);
    expect(threats.levelOf('192.0.2.2')).toBe('medium');
  });

  it('blocks at critical for growing durations on repeat, and brings the client back at high', async () => {
    const { threats, clock, metrics } = detector({ blockSeconds: 60, maxBlockSeconds: 200 });
    const durations: number[] = [];
    for (let round = 0; round < 3; round++) {
      while (threats.blocked('192.0.2.3') === undefined) await threats.apply('192.0.2.3', 'input_rejected');
      const block = threats.blocked('192.0.2.3')!;
      durations.push(block.info.durationSeconds);
      expect(block.retryAfterSeconds).toBe(block.info.durationSeconds);
      expect(block.info).toMatchObject({ client: '192.0.2.3', reason: 'input_rejected', strikes: round + 1 });
      expect(threats.levelOf('192.0.2.3')).toBe('high');
      clock.advance(block.info.durationSeconds * 1000);
      expect(threats.blocked('192.0.2.3')).toBeUndefined();
    }
    expect(durations).toEqual([60, 120, 200]);
    threats.sweep();
    expect((await metrics.blockedClients.get()).values[0]?.value).toBe(0);
    // After the last block (200 s of a 300 s half-life from the "high" threshold): still suspicious.
    expect(threats.levelOf('192.0.2.3')).toBe('medium');
  });

  it('lists, unblocks (forgiving score and strikes) and blocks by hand', async () => {
    const { threats } = detector();
    for (let i = 0; i < 4; i++) await threats.apply('192.0.2.4', 'input_rejected');
    await threats.apply('192.0.2.4', 'input_rejected');
    expect((await threats.listBlocked()).map((b) => b.info.client)).toEqual(['192.0.2.4']);
    expect(await threats.unblock('192.0.2.4')).toBe(true);
    expect(await threats.unblock('192.0.2.4')).toBe(false);
    expect(threats.blocked('192.0.2.4')).toBeUndefined();
    expect(threats.levelOf('192.0.2.4')).toBe('low');
    // Strikes forgotten: the next automatic block is a first one.
    for (let i = 0; i < 5; i++) await threats.apply('192.0.2.4', 'input_rejected');
    expect(threats.blocked('192.0.2.4')?.info.strikes).toBe(1);
    const manual = await threats.block('2001:db8:5:6::1', 30, 'abuse');
    expect(manual).toMatchObject({ client: '2001:db8:5:6::/64', reason: 'admin: abuse', strikes: 0, durationSeconds: 30 });
    expect(threats.blocked('2001:db8:5:6::/64')?.retryAfterSeconds).toBe(30);
  });

  it('record() normalises the client and never throws; disabled detection records nothing', async () => {
    const { threats } = detector();
    for (let i = 0; i < 5; i++) threats.record('::ffff:192.0.2.5', 'input_rejected');
    await threats.settled();
    expect(threats.blocked('192.0.2.5')).toBeDefined();
    const off = detector({ enabled: false });
    for (let i = 0; i < 10; i++) off.threats.record('192.0.2.6', 'input_rejected');
    await off.threats.settled();
    expect(off.threats.levelOf('192.0.2.6')).toBe('low');
  });

  it('takes a block published by another replica', async () => {
    const { threats, store } = detector();
    await threats.start();
    store.deliver('threat.block', { info: { client: '192.0.2.7', reason: 'not_found', strikes: 1, blockedAt: 0, durationSeconds: 60 }, ttlMs: 60_000 }, false);
    expect(threats.blocked('192.0.2.7')?.retryAfterSeconds).toBe(60);
    store.deliver('threat.unblock', { client: '192.0.2.7', at: 1 }, false);
    expect(threats.blocked('192.0.2.7')).toBeUndefined();
    store.deliver('threat.level', { client: '192.0.2.8', score: 70 }, false);
    expect(threats.levelOf('192.0.2.8')).toBe('high');
    await threats.close();
  });

  it('orders blocks and unblocks by when they were made: late messages never undo a newer change', async () => {
    const warnings: string[] = [];
    const { threats, store } = detector({}, { ...quiet, warn: (_o, m) => void warnings.push(m) });
    await threats.start();
    const block = (blockedAt: number) => ({ info: { client: '192.0.2.9', reason: 'not_found', strikes: 1, blockedAt, durationSeconds: 60 }, ttlMs: 60_000 });
    store.deliver('threat.block', block(1000), false);
    store.deliver('threat.unblock', { client: '192.0.2.9', at: 2000 }, false);
    store.deliver('threat.block', block(1000), false); // the first block again, arriving late
    expect(threats.blocked('192.0.2.9')).toBeUndefined();
    store.deliver('threat.block', block(3000), false); // blocked again after the unblock
    store.deliver('threat.unblock', { client: '192.0.2.9', at: 2000 }, false); // the old unblock, replayed
    expect(threats.blocked('192.0.2.9')?.info.blockedAt).toBe(3000);
    store.deliver('threat.block', block(2500), false); // an older block does not replace the newer one
    expect(threats.blocked('192.0.2.9')?.info.blockedAt).toBe(3000);
    // malformed messages are ignored, and said so
    store.deliver('threat.unblock', { client: '192.0.2.9' }, false);
    store.deliver('threat.block', { info: { client: '192.0.2.10', blockedAt: 'now' }, ttlMs: 60_000 }, false);
    store.deliver('threat.level', { client: '192.0.2.11', score: 'high' }, false);
    expect(threats.blocked('192.0.2.9')?.info.blockedAt).toBe(3000);
    expect(threats.blocked('192.0.2.10')).toBeUndefined();
    expect(threats.levelOf('192.0.2.11')).toBe('low');
    expect(warnings.filter((w) => w.includes('malformed'))).toHaveLength(3);
    await threats.close();
  });
});

describe('client keys', () => {
  it('keeps IPv4, unwraps IPv4-mapped IPv6 and keys IPv6 by /64', () => {
    expect(clientKey('192.0.2.1')).toBe('192.0.2.1');
    expect(clientKey('::ffff:192.0.2.1')).toBe('192.0.2.1');
    expect(clientKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(clientKey('2001:0db8:0001:0002:aaaa:bbbb:cccc:dddd')).toBe('2001:db8:1:2::/64');
    expect(clientKey('2001:db8:1:2::ffff:1.2.3.4')).toBe('2001:db8:1:2::/64');
    expect(clientKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(clientKey('::1')).toBe('::1');
  });

  it('gives every spelling of one address the same key, and different addresses different keys', () => {
    const spellings: Record<string, string[]> = {
      '127.0.0.1': ['127.0.0.1', '::ffff:127.0.0.1', '::FFFF:127.0.0.1', '::ffff:7f00:1', '0:0:0:0:0:ffff:7f00:1', '0000:0000:0000:0000:0000:FFFF:7F00:0001', ' 127.0.0.1 '],
      '192.0.2.55': ['192.0.2.55', '::ffff:192.0.2.55', '::ffff:c000:237', '0:0:0:0:0:ffff:c000:237', '::ffff:C000:0237'],
      '::1': ['::1', '0:0:0:0:0:0:0:1', '0000:0000:0000:0000:0000:0000:0000:0001', '::0:1'],
      '::': ['::', '0:0:0:0:0:0:0:0'],
      '2001:db8:1:2::/64': ['2001:db8:1:2::1', '2001:DB8:1:2::FFFF', '2001:0db8:0001:0002:0000:0000:0000:0001', '2001:db8:1:2:0:0:0:1', '2001:db8:1:2::ffff:1.2.3.4'],
    };
    for (const [key, forms] of Object.entries(spellings)) {
      for (const form of forms) expect(clientKey(form), form).toBe(key);
      expect(isClientKey(key)).toBe(true);
    }
    // Loopback, IPv4-mapped addresses and other IPv4 hosts never share a bucket (the ::/64 of old).
    const distinct = new Set(['::1', '::ffff:127.0.0.1', '::ffff:7f00:2', '::ffff:c000:237', '::2', '::'].map(clientKey));
    expect(distinct.size).toBe(6);
  });

  it('canonicalises admin input: addresses and /64 keys in any spelling; refuses the rest', () => {
    expect(clientKey('2001:0DB8:0001:0002::/64')).toBe('2001:db8:1:2::/64');
    expect(clientKey('2001:db8:1:2:0:0:0:0/64')).toBe('2001:db8:1:2::/64');
    expect(canonicalIp('0:0:0:0:0:ffff:7f00:1')).toBe('127.0.0.1');
    expect(canonicalIp('2001:0db8:0:0:0:0:0:1')).toBe('2001:db8::1');
    for (const bad of ['0:0:0:0::/64', '::/64', '2001:db8::/48', '127.1', '0x7f.0.0.1', '01.2.3.4', '1', 'not-an-ip', '', '1.2.3.4/32']) {
      expect(isClientKey(clientKey(bad)), bad).toBe(false);
    }
    // Keys are already canonical; other spellings are not keys until canonicalised.
    expect(isClientKey('::ffff:127.0.0.1')).toBe(false);
    expect(isClientKey('127.0.0.1')).toBe(true);
  });

  it('matches CIDRs for IPv4, IPv6 and IPv4-mapped addresses', () => {
    const set = new CidrSet(['10.0.0.0/8', '192.0.2.7', '2001:db8::/32']);
    expect(set.has('10.200.1.1')).toBe(true);
    expect(set.has('::ffff:10.1.1.1')).toBe(true);
    expect(set.has('192.0.2.7')).toBe(true);
    expect(set.has('192.0.2.8')).toBe(false);
    expect(set.has('2001:db8:ffff::1')).toBe(true);
    expect(set.has('2001:db9::1')).toBe(false);
    expect(set.has('::ffff:a01:101')).toBe(true);
    expect(set.has('0:0:0:0:0:ffff:a01:101')).toBe(true);
    expect(set.has('2001:DB8:FFFF:0:0:0:0:1')).toBe(true);
    expect(set.has('not-an-ip')).toBe(false);
    expect(new CidrSet([]).has('10.0.0.1')).toBe(false);
  });
});

describe('rate-limit headers', () => {
  const outcome = (policy: string, limit: number, remaining: number, resetMs: number, windowSeconds = 60): LimitOutcome => ({
    policy,
    windowSeconds,
    decision: { allowed: remaining > 0, limit, remaining, resetMs, shared: true },
  });

  it('lists every policy and reports the tightest, in draft-10 structured-field form', () => {
    expect(rateLimitHeaders([outcome('ip', 1000, 990, 59_500), outcome('principal', 100, 7, 12_001, 30)])).toEqual({
      'ratelimit-policy': '"ip";q=1000;w=60, "principal";q=100;w=30',
      ratelimit: '"principal";r=7;t=13',
      'x-ratelimit-limit': '100',
      'x-ratelimit-remaining': '7',
      'x-ratelimit-reset': '13',
    });
    expect(rateLimitHeaders([])).toEqual({});
  });
});
