import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/gateway.js';

/*
 * `.ci/security-audit.ts` against a local registry speaking npm's bulk-advisory wire format
 * (POST /-/npm/v1/security/advisories/bulk: `{ name: [versions] }` in, `{ name: [advisory] }`
 * out): the real `npm audit` builds the request from this project's tree.
 */

interface FakeAdvisory {
  readonly id: number;
  readonly url: string;
  readonly title: string;
  readonly severity: 'low' | 'moderate' | 'high' | 'critical';
  readonly vulnerable_versions: string;
}

let server: Server;
let registry = '';
let advisories: Record<string, FakeAdvisory[]> = {};
let refuse = false;
let lastAsked: Record<string, string[]> = {};
const dir = mkdtempSync(join(tmpdir(), 'ugw-audit-'));

function advisory(severity: FakeAdvisory['severity'], ghsa = 'GHSA-2222-3333-4444'): FakeAdvisory {
  return { id: 1001, url: `https://github.com/advisories/${ghsa}`, title: 'Test advisory', severity, vulnerable_versions: '<999.0.0' };
}

function runAudit(...args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn('npx', ['tsx', '.ci/security-audit.ts', ...args], {
      cwd: ROOT,
      // a cache of its own per run: npm caches advisory answers, and each test serves others
      env: { ...process.env, npm_config_cache: mkdtempSync(join(dir, 'cache-')), npm_config_registry: registry, npm_config_audit: 'true', npm_config_update_notifier: 'false' },
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code, out }));
  });
}

function allowList(entries: unknown[]): string {
  const file = join(dir, `allow-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify({ advisories: entries }));
  return file;
}

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/-/npm/v1/security/advisories/bulk') {
        if (refuse) {
          res.writeHead(405, { allow: 'GET,HEAD' }).end();
          return;
        }
        const body = Buffer.concat(chunks);
        const text = req.headers['content-encoding'] === 'gzip' ? gunzipSync(body).toString('utf8') : body.toString('utf8');
        lastAsked = JSON.parse(text) as Record<string, string[]>;
        const answer = Object.fromEntries(Object.entries(advisories).filter(([name]) => name in lastAsked));
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
        return;
      }
      res.writeHead(404, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  registry = `http://127.0.0.1:${address.port}/`;
});

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  rmSync(dir, { recursive: true, force: true });
});

describe('security audit of production dependencies', () => {
  it('asks about production dependencies only', async () => {
    advisories = {};
    refuse = false;
    const { code, out } = await runAudit();
    expect(out).toContain('0 advisories at high or above');
    expect(code).toBe(0);
    expect(Object.keys(lastAsked)).toContain('fastify');
    expect(Object.keys(lastAsked)).not.toContain('vitest');
  });

  it('fails on a high advisory in a production dependency and names it', async () => {
    advisories = { fastify: [advisory('high')] };
    const { code, out } = await runAudit();
    expect(out).toMatch(/high\s+fastify GHSA-2222-3333-4444 .* OPEN/);
    expect(code).toBe(1);
  });

  it('fails on a critical one too, passes a moderate one at the default level', async () => {
    advisories = { undici: [advisory('critical')] };
    expect((await runAudit()).code).toBe(1);
    advisories = { undici: [advisory('moderate')] };
    const moderate = await runAudit();
    expect(moderate.out).toContain('0 advisories at high or above');
    expect(moderate.code).toBe(0);
    expect((await runAudit('--level=moderate')).code).toBe(1);
  });

  it('accepts an allow-listed advisory until its expiry date', async () => {
    advisories = { fastify: [advisory('high')] };
    const reason = 'The vulnerable code path (a test-only option) is never enabled by the gateway';
    const accepted = await runAudit(`--allow-list=${allowList([{ id: 'GHSA-2222-3333-4444', package: 'fastify', reason, expires: '2999-01-01' }])}`);
    expect(accepted.out).toContain('accepted until 2999-01-01');
    expect(accepted.code).toBe(0);
    const lapsed = await runAudit(`--allow-list=${allowList([{ id: 'GHSA-2222-3333-4444', package: 'fastify', reason, expires: '2020-01-01' }])}`);
    expect(lapsed.code).toBe(1);
  });

  it('refuses an allow-list entry without a real reason', async () => {
    const { code, out } = await runAudit(`--allow-list=${allowList([{ id: 'GHSA-2222-3333-4444', package: 'fastify', reason: 'ok', expires: '2999-01-01' }])}`);
    expect(out).toContain('reason');
    expect(code).toBe(2);
  });

  it('fails closed when the advisory service cannot be asked, unless told to warn', async () => {
    refuse = true;
    const closed = await runAudit();
    expect(closed.out).toContain('could not be asked');
    expect(closed.code).toBe(3);
    const warned = await runAudit('--unavailable=warn');
    expect(warned.out).toContain('WARNING no dependency audit was done');
    expect(warned.code).toBe(0);
    refuse = false;
  });
});
