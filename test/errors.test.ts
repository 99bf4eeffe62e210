import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CATALOGUE, errorBody, GatewayError, type ErrorCode } from '../src/errors.js';

const readme = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');
/** Rows of the README's error table: | `CODE` | status | meaning | */
const documented = new Map(
  [...readme.matchAll(/^\|\s*`(GW_[A-Z_]+)`\s*\|\s*(\d{3})\s*\|/gm)].map((m) => [m[1]!, Number(m[2])]),
);
const codes = Object.keys(ERROR_CATALOGUE) as ErrorCode[];

describe('error catalogue', () => {
  it('uses GW_<AREA>_<WHAT> codes with HTTP error statuses', () => {
    for (const code of codes) {
      expect(code).toMatch(/^GW_[A-Z]+_[A-Z_]+$/);
      const { status, message } = ERROR_CATALOGUE[code];
      // 300 Multiple Choices is the one non-error status: the routing model's "which of these?" answer.
      expect(status >= 400 || (code === 'GW_ROUTING_AMBIGUOUS' && status === 300)).toBe(true);
      expect(status).toBeLessThan(600);
      expect(message.length).toBeGreaterThan(10);
    }
    expect(new Set(codes).size).toBe(codes.length);
  });

  it('documents every code in the error table of docs/errors.md with the same status, and nothing else', () => {
    for (const code of codes) expect(documented.get(code), `${code} in docs/errors.md`).toBe(ERROR_CATALOGUE[code].status);
    expect([...documented.keys()].sort()).toEqual([...codes].sort());
  });

  it('renders one shape', () => {
    const err = new GatewayError('GW_UPSTREAM_TIMEOUT', undefined, { headers: { 'retry-after': '2' } });
    expect(err.statusCode).toBe(504);
    expect(err.headers).toEqual({ 'retry-after': '2' });
    expect(errorBody(err.code, 'r1', err.message)).toEqual({
      error: { code: 'GW_UPSTREAM_TIMEOUT', message: ERROR_CATALOGUE.GW_UPSTREAM_TIMEOUT.message, requestId: 'r1' },
    });
  });
});
