import { describe, expect, it } from 'vitest';
import { mcpHostPolicy } from '../../../mcp/server/auth.js';

/* Which Host names /mcp answers to (DNS-rebinding protection, with Origin). */

const config = (environment: string, mcp: { allowedHosts?: string[]; resourceUrl?: string } = {}, host = '127.0.0.1') =>
  ({ environment, server: { host }, mcp }) as unknown as Parameters<typeof mcpHostPolicy>[0];

describe('mcpHostPolicy', () => {
  it('outside production: localhost names and the listen address, any port; nothing else', () => {
    const allowed = mcpHostPolicy(config('development', {}, '10.1.2.3'))!;
    for (const host of ['localhost', 'localhost:8000', '127.0.0.1:1', '[::1]:8000', '10.1.2.3:8000']) expect(allowed(host), host).toBe(true);
    for (const host of ['evil.example', 'localhost.evil.example', '127.0.0.1.evil.example', '10.1.2.4', undefined, '']) expect(allowed(host), String(host)).toBe(false);
  });

  it('a wildcard listen address adds no name; an IPv6 listen address is bracketed', () => {
    expect(mcpHostPolicy(config('development', {}, '0.0.0.0'))!('0.0.0.0:8000')).toBe(false);
    expect(mcpHostPolicy(config('development', {}, '::'))!('[::]:8000')).toBe(false);
    expect(mcpHostPolicy(config('development', {}, 'fd00::5'))!('[fd00::5]:8000')).toBe(true);
  });

  it('in production: the host of mcp.resourceUrl only, or no check at all when nothing says the public name', () => {
    const allowed = mcpHostPolicy(config('production', { resourceUrl: 'https://gw.example.org/mcp' }))!;
    expect(allowed('gw.example.org')).toBe(true);
    expect(allowed('localhost:8000')).toBe(false);
    expect(mcpHostPolicy(config('production'))).toBeNull();
  });

  it('mcp.allowedHosts replaces the defaults in every environment', () => {
    const allowed = mcpHostPolicy(config('development', { allowedHosts: ['gw.example.org'], resourceUrl: 'https://other.example/mcp' }))!;
    expect(allowed('gw.example.org:443')).toBe(true);
    expect(allowed('localhost')).toBe(false);
    expect(allowed('other.example')).toBe(false);
  });
});
