import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { buildGateway, type Gateway } from '../../src/server/app.js';
import { ROOT } from '../helpers/gateway.js';

/*
 * The Grafana dashboards (docker/grafana/dashboards: overview, Security, Business
 * Intelligence) and the migration alerts against a live gateway: every metric name their
 * PromQL uses is one a running gateway's /metrics exposes (histograms with their _bucket,
 * _sum and _count series), so a renamed metric cannot leave a panel silently empty.
 */

type Json = any;
const DASHBOARDS = join(ROOT, 'docker', 'grafana', 'dashboards');
const KEY = 'dashboards-test-key-0123456789abcdef';

/** Metric names in a PromQL expression: identifiers followed by a selector, a range or an operator, minus functions and keywords. */
function metricNames(expr: string): string[] {
  const withoutStrings = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""').replace(/\{[^}]*\}/g, '{}');
  return [...withoutStrings.matchAll(/\b((?:gateway|process|nodejs)_[a-zA-Z0-9_]+)\b/g)].map((m) => m[1]!);
}

const files = readdirSync(DASHBOARDS).filter((f) => f.endsWith('.json'));
const dashboards: Array<{ file: string; json: Json }> = files.map((file) => ({ file, json: JSON.parse(readFileSync(join(DASHBOARDS, file), 'utf8')) }));
const panelsOf = (d: Json): Json[] => d.panels.flatMap((p: Json) => [p, ...(p.panels ?? [])]);
const exprsOf = (d: Json): string[] => [
  ...panelsOf(d).flatMap((p) => (p.targets ?? []).map((t: Json) => String(t.expr))),
  ...(d.templating?.list ?? []).flatMap((v: Json) => (typeof v.query === 'object' ? [String(v.query.query)] : typeof v.query === 'string' && v.type === 'query' ? [v.query] : [])),
];

let gateway: Gateway;
let exposed: Set<string>;
beforeAll(async () => {
  const result = loadConfig({ GATEWAY_HOST: '127.0.0.1', GATEWAY_PORT: '0', API_KEY: KEY });
  if (!result.ok) throw new Error(result.problems.join('\n'));
  gateway = await buildGateway(result.config, { logger: pino({ level: 'silent' }) });
  const url = await gateway.listen();
  const text = await (await fetch(`${url}/metrics`, { headers: { 'x-api-key': KEY } })).text();
  exposed = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    exposed.add(m[1]!);
    if (m[2] === 'histogram') for (const s of ['_bucket', '_sum', '_count']) exposed.add(`${m[1]}${s}`);
    if (m[2] === 'summary') for (const s of ['_sum', '_count']) exposed.add(`${m[1]}${s}`);
  }
});
afterAll(async () => gateway?.close());

describe('Grafana dashboards against a live /metrics', () => {
  it('has the overview, Security and Business Intelligence dashboards, with distinct uids and panel ids', () => {
    expect(files.sort()).toEqual(['business-intelligence.json', 'security.json', 'unified-gateway.json']);
    expect(new Set(dashboards.map((d) => d.json.uid)).size).toBe(3);
    for (const { file, json } of dashboards) {
      const ids = panelsOf(json).map((p) => p.id);
      expect(new Set(ids).size, file).toBe(ids.length);
    }
  });

  for (const { file, json } of dashboards) {
    it(`${file}: every metric its PromQL names is exposed by a running gateway`, () => {
      const exprs = exprsOf(json);
      expect(exprs.length).toBeGreaterThan(5);
      const missing = exprs.flatMap((e) => metricNames(e).filter((n) => !exposed.has(n)).map((n) => `${n} in ${e}`));
      expect(missing).toEqual([]);
    });
  }

  it('Security covers detections by level, blocks, rate-limit hits, auth failures by reason and input rejections by rule', () => {
    const used = new Set(exprsOf(dashboards.find((d) => d.file === 'security.json')!.json).flatMap(metricNames));
    for (const m of ['gateway_threat_level_detections', 'gateway_threat_actions_total', 'gateway_blocked_clients', 'gateway_rate_limit_requests_total', 'gateway_auth_failures_total', 'gateway_input_rejections_total']) {
      expect(used, m).toContain(m);
    }
  });

  it('Business Intelligence covers use by route and caller class, routing mix and confidence, legacy use and migration progress', () => {
    const used = new Set(exprsOf(dashboards.find((d) => d.file === 'business-intelligence.json')!.json).flatMap(metricNames));
    for (const m of ['gateway_requests_total', 'gateway_caller_requests_total', 'gateway_routing_decisions', 'gateway_routing_confidence_bucket', 'gateway_legacy_requests_total', 'gateway_migration_canary_percent']) {
      expect(used, m).toContain(m);
    }
  });

  it('the migration alerts of rules.yml use exposed metrics', () => {
    const rules = parseYaml(readFileSync(join(ROOT, 'docker', 'prometheus', 'rules.yml'), 'utf8'));
    const group = rules.groups.find((g: Json) => g.name === 'unified-gateway.migration');
    expect(group.rules.map((r: Json) => r.alert)).toEqual(['GatewayMigrationRolledBack', 'GatewayMigrationGateFailing']);
    const missing = group.rules.flatMap((r: Json) => metricNames(String(r.expr)).filter((n) => !exposed.has(n)));
    expect(missing).toEqual([]);
  });
});
