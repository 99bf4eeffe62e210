import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { buildGateway, type Gateway } from '../../src/server/app.js';
import { connectionKey, globalConnectionCap, openFileLimit, trustedProxies } from '../../src/server/connection-guard.js';
import { waitFor } from '../helpers/gateway.js';
import { connected, slowClient, type SlowClient } from '../helpers/slow-client.js';

describe('connectionKey', () => {
  it('folds every spelling of an IPv4-mapped IPv6 address onto the IPv4 address', () => {
    for (const a of ['127.0.0.1', '::ffff:127.0.0.1', '::FFFF:127.0.0.1', '::ffff:7f00:1', '0:0:0:0:0:ffff:7f00:0001', '0000:0000:0000:0000:0000:ffff:127.0.0.1']) {
      expect(connectionKey(a), a).toBe('127.0.0.1');
    }
  });

  it('counts IPv6 per /64, whatever the spelling', () => {
    expect(connectionKey('2001:db8:1:2::9')).toBe('2001:db8:1:2::/64');
    expect(connectionKey('2001:0DB8:0001:0002:ffff:1:2:3')).toBe('2001:db8:1:2::/64');
    expect(connectionKey('2001:db8:1:3::9')).toBe('2001:db8:1:3::/64');
    expect(connectionKey('::1')).toBe('::1'); // ::/64 holds loopback and the unwrapped IPv4 forms: each address its own key
  });

  it('has no key for what is not an address', () => {
    expect(connectionKey(undefined)).toBeNull();
    expect(connectionKey('not-an-ip')).toBeNull();
  });
});

describe('trustedProxies', () => {
  it('matches the CIDRs and keywords of a trustProxy list, mapped addresses included', () => {
    const trusted = trustedProxies(['10.0.0.0/8', 'loopback']);
    expect(trusted('10.1.2.3')).toBe(true);
    expect(trusted('::ffff:10.1.2.3')).toBe(true);
    expect(trusted('127.0.0.9')).toBe(true);
    expect(trusted('::1')).toBe(true);
    expect(trusted('11.0.0.1')).toBe(false);
    expect(trusted('2001:db8::1')).toBe(false);
  });

  it('exempts nobody for true or false (no address is named)', () => {
    expect(trustedProxies(true)('10.0.0.1')).toBe(false);
    expect(trustedProxies(false)('10.0.0.1')).toBe(false);
  });
});

describe('global cap', () => {
  it('reads the soft open-file limit and keeps a quarter of it for everything else', () => {
    const limits = 'Limit                     Soft Limit           Hard Limit           Units\nMax open files            20000                40000                files\n';
    expect(openFileLimit(limits)).toBe(20_000);
    expect(openFileLimit('Max open files            unlimited            unlimited            files\n')).toBeNull();
    expect(globalConnectionCap({ maxConnections: undefined }, 20_000)).toBe(15_000);
    expect(globalConnectionCap({ maxConnections: 500 }, 20_000)).toBe(500);
    expect(globalConnectionCap({ maxConnections: undefined }, null)).toBeNull();
    expect(openFileLimit()).toBeGreaterThan(0); // this machine's /proc/self/limits
  });
});

describe('connection caps on a listening gateway', () => {
  const open: Gateway[] = [];
  const clients: SlowClient[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) c.socket.destroy();
    await Promise.all(open.splice(0).map((g) => g.close()));
  });

  async function listening(server: string): Promise<{ g: Gateway; port: number }> {
    const file = join(mkdtempSync(join(tmpdir(), 'gw-cg-')), 'gateway.yaml');
    writeFileSync(file, `server: ${server}\n`);
    const result = loadConfig({ GATEWAY_HOST: '127.0.0.1', GATEWAY_PORT: '0' }, { file });
    if (!result.ok) throw new Error(result.problems.join('\n'));
    const g = await buildGateway(result.config, { logger: pino({ level: 'silent' }), processMetrics: false });
    open.push(g);
    return { g, port: Number(new URL(await g.listen()).port) };
  }

  const refusedCount = async (g: Gateway, reason: string) =>
    (await g.metrics.registry.getSingleMetric('gateway_connections_refused_total')!.get()).values.find((v) => v.labels.reason === reason)?.value ?? 0;

  const openConnections = async (g: Gateway) => (await g.metrics.registry.getSingleMetric('gateway_client_connections')!.get()).values[0]!.value;

  /** A connection that has said nothing yet (the header timeout is long). */
  const idle = (port: number, localAddress: string) => {
    const c = slowClient({ port, localAddress, head: '' });
    clients.push(c);
    return c;
  };
  /** Proves a connection was accepted: a request on it is answered. */
  const answers = async (c: SlowClient) => {
    const body = new Promise<string>((resolve) => {
      let text = '';
      c.socket.on('data', (d: string) => {
        text += d;
        if (text.includes('{"status":"ok"}')) resolve(text);
      });
    });
    c.socket.write('GET /livez HTTP/1.1\r\nHost: gw\r\n\r\n');
    return body;
  };

  it('closes connections of one address past maxConnectionsPerIp at once, loopback included, and counts them', async () => {
    const { g, port } = await listening('{ maxConnectionsPerIp: 5 }');
    const first = Array.from({ length: 5 }, () => idle(port, '127.0.0.3'));
    await Promise.all(first.map(connected));
    for (const c of first) await expect(answers(c)).resolves.toMatch(/^HTTP\/1\.1 200/);
    const sixth = await idle(port, '127.0.0.3').done;
    expect(sixth.refused).toBe(true);
    expect(sixth.openMs).toBeLessThan(1000);
    expect(await refusedCount(g, 'per_ip')).toBe(1);

    // Another address is not affected.
    const other = idle(port, '127.0.0.4');
    await expect(answers(other)).resolves.toMatch(/^HTTP\/1\.1 200/);

    // A freed slot can be used again.
    const openNow = await openConnections(g);
    first[0]!.socket.destroy();
    await waitFor(async () => ((await openConnections(g)) === openNow - 1 ? true : undefined), 5000, 'the server to see the close');
    const again = idle(port, '127.0.0.3');
    await expect(answers(again)).resolves.toMatch(/^HTTP\/1\.1 200/);
    expect(await refusedCount(g, 'per_ip')).toBe(1);
  });

  it('does not cap the proxies named in trustProxy (every client comes through them)', async () => {
    const { g, port } = await listening('{ maxConnectionsPerIp: 2, trustProxy: [127.0.0.5] }');
    const proxied = Array.from({ length: 4 }, () => idle(port, '127.0.0.5'));
    for (const c of proxied) await expect(answers(c)).resolves.toMatch(/^HTTP\/1\.1 200/);
    expect(await refusedCount(g, 'per_ip')).toBe(0);
  });

  it('closes connections past maxConnections whatever their address, and counts them', async () => {
    const { g, port } = await listening('{ maxConnections: 3 }');
    const three = ['127.0.0.6', '127.0.0.7', '127.0.0.8'].map((a) => idle(port, a));
    for (const c of three) await expect(answers(c)).resolves.toMatch(/^HTTP\/1\.1 200/);
    const fourth = await idle(port, '127.0.0.9').done;
    expect(fourth.refused).toBe(true);
    expect(await refusedCount(g, 'global')).toBe(1);
  });
});
