import { describe, expect, it } from 'vitest';
import { securityHeaders } from '../../src/security/security-headers.js';

describe('securityHeaders', () => {
  it('records the headers helmet sets, with the options applied', () => {
    const headers = new Map(securityHeaders({ frameguard: { action: 'deny' }, hsts: { maxAge: 100 }, contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"] } } }));
    expect(headers.get('X-Frame-Options')).toBe('DENY');
    expect(headers.get('Strict-Transport-Security')).toBe('max-age=100; includeSubDomains');
    expect(headers.get('Content-Security-Policy')).toBe("default-src 'none'");
    expect(headers.get('X-Content-Type-Options')).toBe('nosniff');
    // helmet removes X-Powered-By instead of setting it.
    expect(headers.has('X-Powered-By')).toBe(false);
  });

  it('leaves out what is switched off', () => {
    const names = securityHeaders({ hsts: false, contentSecurityPolicy: false }).map(([name]) => name.toLowerCase());
    expect(names).not.toContain('strict-transport-security');
    expect(names).not.toContain('content-security-policy');
    expect(names).toContain('referrer-policy');
  });

  it('refuses invalid options at boot, as helmet does', () => {
    expect(() => securityHeaders({ contentSecurityPolicy: { directives: { defaultSrc: ["'none'"], 'bad;name': ['x'] } } })).toThrow();
  });
});
