import { Writable } from 'node:stream';
import Fastify from 'fastify';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { DEFAULT_REDACTED_QUERY_PARAMS } from '../../src/config/index.js';
import { AccessLogController, BufferedLines, loggerOptions, queryRedactor } from '../../src/server/logger.js';

describe('access log: query redaction', () => {
  const redact = queryRedactor();

  it('replaces the values of well-known secret parameters, keeps the rest as sent', () => {
    const cases: Array<[string, string]> = [
      ['/v1/x?access_token=eyJabc.def.ghi&q=hello', '/v1/x?access_token=[redacted]&q=hello'],
      ['/v1/x?q=hello&token=abc', '/v1/x?q=hello&token=[redacted]'],
      ['/cb?code=4/0AX4Xf&state=xyz', '/cb?code=[redacted]&state=xyz'],
      ['/f?X-Amz-Algorithm=AWS4&X-Amz-Credential=AKIA/2026&X-Amz-Signature=deadbeef&X-Amz-Security-Token=FQo', '/f?X-Amz-Algorithm=AWS4&X-Amz-Credential=[redacted]&X-Amz-Signature=[redacted]&X-Amz-Security-Token=[redacted]'],
      ['/x?id_token=a&refresh_token=b&api_key=c&apikey=d&key=e&secret=f&client_secret=g&password=h&passwd=i&sig=j&signature=k&auth=l', '/x?id_token=[redacted]&refresh_token=[redacted]&api_key=[redacted]&apikey=[redacted]&key=[redacted]&secret=[redacted]&client_secret=[redacted]&password=[redacted]&passwd=[redacted]&sig=[redacted]&signature=[redacted]&auth=[redacted]'],
      // Any case and separator; brackets; percent-encoded names; `;` separators; `=` inside a value.
      ['/x?Access-Token=a&ACCESSTOKEN=b&sessionToken=c&user[password]=d&access%5Ftoken=e', '/x?Access-Token=[redacted]&ACCESSTOKEN=[redacted]&sessionToken=[redacted]&user[password]=[redacted]&access%5Ftoken=[redacted]'],
      ['/x?a=1;token=abc==;b=2', '/x?a=1;token=[redacted];b=2'],
      ['/x?jwt=a.b.c=d&x=1', '/x?jwt=[redacted]&x=1'],
      ['/x?token', '/x?token'],
      ['/x?q=token&tokens=1', '/x?q=token&tokens=1'],
      ['/no-query', '/no-query'],
      ['/x?bad%ZZtoken=1', '/x?bad%ZZtoken=[redacted]'],
    ];
    for (const [input, expected] of cases) expect(redact(input), input).toBe(expected);
  });

  it('takes a configured list instead of the defaults', () => {
    const custom = queryRedactor(['ssn']);
    expect(custom('/x?ssn=123&token=abc&user_ssn=9')).toBe('/x?ssn=[redacted]&token=abc&user_ssn=[redacted]');
    expect(DEFAULT_REDACTED_QUERY_PARAMS).toContain('token');
  });

  it('is linear: a 1 MB query costs about ten times a 100 KB one (quadratic would be a hundred)', () => {
    const long = (n: number) => `/x?${'a'.repeat(n)}`;
    const many = (n: number) => `/x?${'token=1&'.repeat(n / 8)}`;
    expect(redact(long(1_000_000))).toBe(long(1_000_000));
    expect(redact(many(1_000_000)).startsWith('/x?token=[redacted]&token=[redacted]')).toBe(true);
    // Ratios of the fastest of several interleaved runs: a busy machine slows runs, it does not speed one up.
    for (const shape of [long, many]) {
      const small = shape(100_000);
      const large = shape(1_000_000);
      let fastSmall = Infinity;
      let fastLarge = Infinity;
      for (let i = 0; i < 7; i++) {
        let t = performance.now();
        redact(small);
        fastSmall = Math.min(fastSmall, performance.now() - t);
        t = performance.now();
        redact(large);
        fastLarge = Math.min(fastLarge, performance.now() - t);
      }
      expect(fastLarge / Math.max(fastSmall, 0.05)).toBeLessThan(30);
    }
  });

  it('the access-log line and Fastify’s own request logs carry the redacted URL', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const stream = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString('utf8').split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
        done();
      },
    });
    const options = loggerOptions({ logLevel: 'info', logging: { redactQueryParams: [...DEFAULT_REDACTED_QUERY_PARAMS] } }) as Record<string, unknown>;
    const app = Fastify({ loggerInstance: pino(options, stream), logController: new AccessLogController() });
    app.get('/ok', async () => ({ ok: true }));
    app.get('/boom', async () => {
      throw new Error('boom');
    });
    await app.inject({ url: '/ok?access_token=SECRET-ONE&q=1' });
    await app.inject({ url: '/boom?api_key=SECRET-TWO' });
    await app.close();
    const all = JSON.stringify(lines);
    expect(all).not.toContain('SECRET-ONE');
    expect(all).not.toContain('SECRET-TWO');
    expect(lines.find((l) => l.msg === 'request completed')?.url).toBe('/ok?access_token=[redacted]&q=1');
    expect(lines.some((l) => JSON.stringify(l).includes('/boom?api_key=[redacted]'))).toBe(true);
  });
});

describe('log line fields', () => {
  it('names the program in `name`, so a line about a backend service has one `service` key', () => {
    const raw: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _enc, done) {
        raw.push(...chunk.toString('utf8').split('\n').filter((l) => l.trim() !== ''));
        done();
      },
    });
    const log = pino(loggerOptions({ logLevel: 'info' }) as Record<string, unknown>, stream);
    log.info({ service: 'twin', from: 'up', to: 'down' }, 'service health changed');
    log.flush();
    expect(raw).toHaveLength(1);
    // JSON.parse keeps the last of two equal keys: count them in the text.
    expect(raw[0]!.match(/"service":/g)).toHaveLength(1);
    expect(JSON.parse(raw[0]!)).toMatchObject({ name: 'unified-gateway', service: 'twin', msg: 'service health changed' });
  });
});

describe('log destination: buffered lines', () => {
  it('writes lines together once the buffer is full or when flushed, whole and in order', async () => {
    const { mkdtempSync, openSync, readFileSync, closeSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const file = join(mkdtempSync(join(tmpdir(), 'ugw-log-')), 'out.log');
    const fd = openSync(file, 'w');
    const lines = new BufferedLines(fd, 100);
    lines.write('{"a":1}\n');
    lines.write('{"b":"é"}\n');
    expect(readFileSync(file, 'utf8')).toBe(''); // under the limit: buffered
    const long = `{"c":"${'x'.repeat(120)}"}\n`;
    lines.write(long);
    expect(readFileSync(file, 'utf8')).toBe(`{"a":1}\n{"b":"é"}\n${long}`); // over it: all written at once
    lines.write('{"d":4}\n');
    lines.flushSync();
    lines.flushSync(); // nothing left: no-op
    expect(readFileSync(file, 'utf8')).toBe(`{"a":1}\n{"b":"é"}\n${long}{"d":4}\n`);
    closeSync(fd);
  });

  it('stops writing, without throwing, when its descriptor is unusable', () => {
    const lines = new BufferedLines(987_654, 1);
    expect(() => lines.write('{"a":1}\n')).not.toThrow();
    expect(() => lines.write('{"b":2}\n')).not.toThrow();
  });
});
