import { describe, expect, it } from 'vitest';
import { AutoRouter, autoRoutes } from '../../../src/routing/auto-route.js';
import { RoutingModel } from '../../../src/routing/model/model.js';
import { modelFile, query } from './helpers.js';

// bias only: twin 2, agent-controller 0, knowledge 1.5, fog 0, p2p 0 -> twin ~0.50, knowledge ~0.30
const model = RoutingModel.fromJson(modelFile({ bias: [2, 0, 1.5, 0, 0] }));
const sure = RoutingModel.fromJson(modelFile({ bias: [0, 0, 0, 6, 0] }));

describe('auto-routing decision', () => {
  it('trusts the model at or above the threshold', () => {
    const router = new AutoRouter({ confidenceThreshold: 0.5, defaultService: 'knowledge', ambiguous: 'default' }, () => true);
    const d = router.decide(sure, query('x'));
    expect(d).toMatchObject({ reason: 'model', service: 'fog', model: 'rm-test', predicted: 'fog' });
    expect(d.confidence).toBeGreaterThan(0.9);
  });

  it('below the threshold: the default service, or 300 with the candidates', () => {
    const toDefault = new AutoRouter({ confidenceThreshold: 0.9, defaultService: 'knowledge', ambiguous: 'default' }, () => true);
    expect(toDefault.decide(model, query('x'))).toMatchObject({ reason: 'low-confidence', service: 'knowledge', predicted: 'twin' });
    const ask = new AutoRouter({ confidenceThreshold: 0.9, defaultService: 'knowledge', ambiguous: '300' }, () => true);
    const d = ask.decide(model, query('x'));
    expect(d.reason).toBe('ambiguous');
    if (d.reason !== 'ambiguous') throw new Error('unreachable');
    expect(d.service).toBeNull();
    expect(d.candidates.map((c) => c.service)).toEqual(['twin', 'knowledge', 'agent-controller']);
    expect(d.candidates[0]!.probability).toBeCloseTo(Math.exp(2) / (Math.exp(2) + Math.exp(1.5) + 3), 3);
  });

  it('never picks a switched-off service: probabilities are renormalised over the others', () => {
    const router = new AutoRouter({ confidenceThreshold: 0.5, defaultService: 'knowledge', ambiguous: 'default' }, (s) => s !== 'fog');
    const d = router.decide(sure, query('x'));
    expect(d.service).not.toBe('fog');
    expect(d.reason).toBe('low-confidence'); // the rest are equally likely: 0.25 each
    expect(d.confidence).toBeCloseTo(0.25, 6);
    const noneLeft = new AutoRouter({ confidenceThreshold: 0.5, defaultService: 'knowledge', ambiguous: 'default' }, () => false);
    expect(() => noneLeft.decide(sure, query('x'))).toThrow(/disabled/);
  });

  it('reports the model\'s own top label to the shadow hook before masking', () => {
    const router = new AutoRouter({ confidenceThreshold: 0.5, defaultService: 'knowledge', ambiguous: 'default' }, (s) => s !== 'fog');
    const seen: string[] = [];
    router.decide(sure, query('x'), (label) => seen.push(label));
    expect(seen).toEqual(['fog']);
  });

  it('declares the two routes: query needs read (asking is reading), upload write; text fields in text mode', () => {
    const [q, u] = autoRoutes();
    expect(q).toMatchObject({ prefix: '/v1/query', methods: ['POST'], auth: { required: true, scope: 'read' }, textFields: ['query', 'prompt', 'message'] });
    expect(u).toMatchObject({ prefix: '/v1/upload', methods: ['POST'], auth: { required: true, scope: 'write' } });
  });
});

describe('auto-routing setup', () => {
  it('leaves a path to a route configured for it (the operator\'s explicit choice wins)', async () => {
    const { writeFileSync, mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { loadConfig } = await import('../../../src/config/index.js');
    const { createAutoRouting } = await import('../../../src/routing/auto-routing.js');
    const file = join(mkdtempSync(join(tmpdir(), 'ugw-ar-')), 'g.yaml');
    writeFileSync(file, 'routes:\n  - { prefix: /v1/query, service: knowledge }\n');
    const loaded = loadConfig({}, { file });
    if (!loaded.ok) throw new Error(loaded.problems.join('\n'));
    const logged: unknown[] = [];
    const routing = createAutoRouting(loaded.config, { metrics: { routingShadowAgreement: { inc() {} } as never }, log: { info: (o) => logged.push(o), warn() {}, error() {} } });
    expect(routing.routes.map((r) => r.prefix)).toEqual(['/v1/upload']);
    expect(logged).toEqual([{ path: '/v1/query', service: 'knowledge' }]);
    await routing.close();
  });
});
