import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RoutingConfig } from '../../../src/config/index.js';
import { promoteModel, readPointer } from '../../../src/routing/model/files.js';
import { MODEL_TOPIC, ModelNotAvailableError, RoutingModelManager, type ModelBroadcast } from '../../../src/routing/model/manager.js';
import { ModelFileError } from '../../../src/routing/model/model.js';
import { constantModelFile, modelFile, query, SERVICES, tempDir } from './helpers.js';

const silent = { info() {}, warn() {}, error() {} };
const settings: RoutingConfig = {
  enabled: true,
  services: SERVICES,
  confidenceThreshold: 0.5,
  defaultService: 'knowledge',
  ambiguous: 'default',
  watchPointer: false,
  shadowQueueSize: 4,
  validator: { model: 'facebook/bart-large-mnli' },
};

/** Replicas sharing one "store": messages reach the other replicas (self: false) and the sender (self: true). */
function sharedStore() {
  const values = new Map<string, string>();
  const handlers = new Set<{ owner: number; fn: (m: { data: unknown; self: boolean }) => void }>();
  let next = 0;
  return (): ModelBroadcast => {
    const owner = next++;
    return {
      async publish(topic, data) {
        const copy = JSON.parse(JSON.stringify(data));
        for (const h of handlers) queueMicrotask(() => h.fn({ data: copy, self: h.owner === owner }));
        void topic;
      },
      subscribe(topic, fn) {
        expect(topic).toBe(MODEL_TOPIC);
        const h = { owner, fn };
        handlers.add(h);
        return () => handlers.delete(h);
      },
      get: async (key) => values.get(key),
      set: async (key, value) => void values.set(key, value),
    };
  };
}

const until = async (check: () => boolean, what: string) => {
  for (let i = 0; i < 1000; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`timed out waiting for ${what}`);
};

/** A routing-models folder with these (label, id) models promoted in order (at `promotedAt`, default now). */
function folderWith(models: Array<[string, string]>, promotedAt?: Date): string {
  const dir = tempDir();
  const folder = join(dir, 'routing-models');
  for (const [label, id] of models) {
    const file = join(dir, `${id}.json`);
    writeFileSync(file, JSON.stringify(constantModelFile(label, id)));
    promoteModel(file, folder, promotedAt ? { now: promotedAt } : {});
  }
  return folder;
}

describe('routing model manager', () => {
  it('loads the model active.json points to; refuses a folder without one', () => {
    const folder = folderWith([['twin', 'rm-twin']]);
    const m = RoutingModelManager.load({ config: settings, dir: folder, log: silent });
    expect(m.active.id).toBe('rm-twin');
    expect(() => RoutingModelManager.load({ config: settings, dir: join(folder, 'empty'), log: silent })).toThrow(/no active model: promote one/);
  });

  it('refuses an active or shadow model whose labels are not the routing services', () => {
    const dir = tempDir();
    const odd = join(dir, 'odd.json');
    writeFileSync(odd, JSON.stringify(modelFile({ id: 'rm-odd', labels: ['twin', 'fog'] })));
    expect(() => RoutingModelManager.load({ config: { ...settings, model: odd }, dir, log: silent })).toThrow(ModelFileError);
    const folder = folderWith([['twin', 'rm-twin']]);
    expect(() => RoutingModelManager.load({ config: { ...settings, shadowModel: odd }, dir: folder, log: silent })).toThrow(/do not match the routing services/);
  });

  it('counts shadow agreement off the hot path, and resets when the shadow changes', async () => {
    const folder = folderWith([['fog', 'rm-fog'], ['twin', 'rm-twin']]);
    const counted: string[] = [];
    const m = RoutingModelManager.load({ config: settings, dir: folder, log: silent, shadowCounter: { inc: ({ result }) => counted.push(result) } });
    await m.start();
    await m.setShadow('rm-fog');
    m.shadowCompare(query('a'), 'twin');
    m.shadowCompare(query('b'), 'fog');
    expect(counted).toEqual([]); // nothing on the caller's stack
    await until(() => counted.length === 2, 'shadow scoring');
    expect(counted).toEqual(['disagree', 'agree']);
    for (let i = 0; i < 6; i++) m.shadowCompare(query('c'), 'fog'); // queue of 4: 2 dropped
    await until(() => counted.length === 8, 'the rest');
    expect(m.status().shadowAgreement).toMatchObject({ agree: 5, disagree: 1, dropped: 2, rate: 0.8333 });
    await m.setShadow(null);
    expect(m.status().shadow).toBeNull();
    m.shadowCompare(query('d'), 'fog');
    await new Promise((r) => setImmediate(r));
    expect(counted).toHaveLength(8);
    await m.close();
  });

  it('activates a model by id, promotes the shadow, persists to active.json, and says what it cannot find', async () => {
    const folder = folderWith([['fog', 'rm-fog'], ['p2p', 'rm-p2p'], ['twin', 'rm-twin']]);
    const m = RoutingModelManager.load({ config: settings, dir: folder, log: silent });
    await m.start();
    const r = await m.activate({ id: 'rm-fog' }, { persist: true });
    expect(m.active.id).toBe('rm-fog');
    expect(r.persisted).toBe(true);
    expect(readPointer(folder)?.id).toBe('rm-fog');
    await m.setShadow('rm-p2p');
    await m.activate('shadow');
    expect(m.active.id).toBe('rm-p2p');
    expect(m.shadow).toBeNull();
    await expect(m.activate({ id: 'rm-nope' })).rejects.toThrow(ModelNotAvailableError);
    await expect(m.activate('shadow')).rejects.toThrow(/no shadow model/);
    await m.close();
  });

  it('swaps every replica through the store, even one without the model file', async () => {
    const store = sharedStore();
    const folderA = folderWith([['twin', 'rm-twin'], ['fog', 'rm-fog']], new Date('2026-02-01T00:00:00Z'));
    const folderB = folderWith([['twin', 'rm-twin']], new Date('2026-02-02T00:00:00Z')); // B never had rm-fog on disk
    const a = RoutingModelManager.load({ config: settings, dir: folderA, log: silent, broadcast: store() });
    const b = RoutingModelManager.load({ config: settings, dir: folderB, log: silent, broadcast: store() });
    await a.start();
    expect(a.active.id).toBe('rm-fog'); // promoted last in its folder
    await b.start();
    // b's active.json was written after a's: the newest choice wins, and a follows it.
    await until(() => a.active.id === 'rm-twin', 'replica a to follow the newer pointer');
    expect(b.active.id).toBe('rm-twin');
    await a.activate({ id: 'rm-fog' });
    await until(() => b.active.id === 'rm-fog', 'replica b to follow');
    expect(b.status().active.source).toBe('store:rm-fog');
    await a.setShadow('rm-twin');
    await until(() => b.shadow?.id === 'rm-twin', 'replica b to follow the shadow');
    // A replica that starts later adopts the fleet's runtime choice.
    // (Its active.json comes with the image, promoted long before the runtime swap.)
    const c = RoutingModelManager.load({ config: settings, dir: folderWith([['twin', 'rm-twin']], new Date('2026-01-01T00:00:00Z')), log: silent, broadcast: store() });
    await c.start();
    expect(c.active.id).toBe('rm-fog');
    expect(c.shadow?.id).toBe('rm-twin');
    await Promise.all([a.close(), b.close(), c.close()]);
  });

  it('follows active.json when `model promote` or `rollback` rewrites it', async () => {
    const folder = folderWith([['twin', 'rm-twin']]);
    const m = RoutingModelManager.load({ config: { ...settings, watchPointer: true }, dir: folder, log: silent, pointerPollMs: 20 });
    await m.start();
    const file = join(folder, '..', 'fog.json');
    writeFileSync(file, JSON.stringify(constantModelFile('fog', 'rm-fog')));
    promoteModel(file, folder);
    await until(() => m.active.id === 'rm-fog', 'the pointer change to be picked up');
    await m.close();
  });
});

/** A clock the test moves by hand. */
function clock(start: string) {
  let t = Date.parse(start);
  return { now: () => new Date(t), tick: (ms: number) => void (t += ms) };
}

describe('routing model choices across replicas: the newest wins (interleavings)', () => {
  it('a runtime activation made just after start is not undone by the first look at active.json', async () => {
    const folder = folderWith([['twin', 'rm-twin'], ['fog', 'rm-fog']], new Date('2026-02-01T00:00:00Z'));
    // active.json points at rm-fog; the operator activates rm-twin at runtime within the first poll interval
    const m = RoutingModelManager.load({ config: { ...settings, watchPointer: true }, dir: folder, log: silent, pointerPollMs: 10 });
    await m.start();
    await m.activate({ id: 'rm-twin' });
    await m.checkPointer(); // what the watch does one interval after start
    expect(m.active.id).toBe('rm-twin');
    // a promote written after the activation still wins
    const file = join(folder, '..', 'p2p.json');
    writeFileSync(file, JSON.stringify(constantModelFile('p2p', 'rm-p2p')));
    promoteModel(file, folder, { now: new Date(Date.now() + 1000) });
    await until(() => m.active.id === 'rm-p2p', 'the newer pointer');
    await m.close();
  });

  it('two activations crossing on two replicas: both converge on the later one, whatever the delivery order', async () => {
    const store = sharedStore();
    const t = clock('2026-03-01T00:00:00Z');
    const folder = () => folderWith([['twin', 'rm-twin'], ['fog', 'rm-fog'], ['p2p', 'rm-p2p']], new Date('2026-02-01T00:00:00Z'));
    const a = RoutingModelManager.load({ config: settings, dir: folder(), log: silent, broadcast: store(), now: t.now });
    const b = RoutingModelManager.load({ config: settings, dir: folder(), log: silent, broadcast: store(), now: () => new Date(t.now().getTime() + 1) });
    await Promise.all([a.start(), b.start()]);
    // b's clock is 1 ms ahead: its choice is the later one even though a's message lands last
    await Promise.all([b.activate({ id: 'rm-fog' }), a.activate({ id: 'rm-twin' })]);
    await until(() => a.active.id === 'rm-fog' && b.active.id === 'rm-fog', 'both replicas on the later choice');
    // a later message, delivered after both activations' (one queue per replica): once both
    // replicas have it, every earlier message has been handled too
    await store().publish(MODEL_TOPIC, { kind: 'shadow', id: 'rm-p2p', at: '2026-03-01T00:00:01.000Z' });
    await until(() => a.shadow?.id === 'rm-p2p' && b.shadow?.id === 'rm-p2p', 'the later shadow message');
    expect([a.active.id, b.active.id]).toEqual(['rm-fog', 'rm-fog']);
    await Promise.all([a.close(), b.close()]);
  });

  it('a stale broadcast arriving late is ignored, a malformed one too; a newer one is followed', async () => {
    const store = sharedStore();
    const t = clock('2026-03-01T00:00:00Z');
    const folder = folderWith([['twin', 'rm-twin'], ['fog', 'rm-fog'], ['p2p', 'rm-p2p']], new Date('2026-02-01T00:00:00Z'));
    const m = RoutingModelManager.load({ config: settings, dir: folder, log: silent, broadcast: store(), now: t.now });
    const other = store();
    await m.start();
    await m.activate({ id: 'rm-twin' }); // at 2026-03-01
    await other.publish(MODEL_TOPIC, { kind: 'active', id: 'rm-fog', at: '2026-02-15T00:00:00.000Z' }); // made before ours
    await other.publish(MODEL_TOPIC, { kind: 'active', id: 'rm-fog' }); // no stamp
    await other.publish(MODEL_TOPIC, 'rm-fog');
    await other.publish(MODEL_TOPIC, { kind: 'shadow', id: 'rm-p2p', at: '2026-03-01T00:00:01.000Z' });
    await until(() => m.shadow?.id === 'rm-p2p', 'the newer shadow');
    expect(m.active.id).toBe('rm-twin');
    await other.publish(MODEL_TOPIC, { kind: 'active', id: 'rm-fog', at: '2026-03-01T00:00:02.000Z' });
    await until(() => m.active.id === 'rm-fog', 'the newer activation');
    await other.publish(MODEL_TOPIC, { kind: 'shadow', id: null, at: '2026-03-01T00:00:00.500Z' }); // older than the shadow set
    await other.publish(MODEL_TOPIC, { kind: 'active', id: 'rm-p2p', at: '2026-03-01T00:00:03.000Z' });
    await until(() => m.active.id === 'rm-p2p', 'the message after the stale one');
    expect(m.shadow?.id).toBe('rm-p2p');
    await m.close();
  });

  it('a replica starting after a runtime swap adopts it only when the swap is newer than its own pointer', async () => {
    const store = sharedStore();
    const writer = store();
    await writer.set('pointer:active', JSON.stringify({ id: 'rm-fog', at: '2026-03-01T00:00:00.000Z' }));
    await writer.set('model:rm-fog', JSON.stringify(constantModelFile('fog', 'rm-fog')));
    const older = RoutingModelManager.load({ config: settings, dir: folderWith([['twin', 'rm-twin']], new Date('2026-02-01T00:00:00Z')), log: silent, broadcast: store() });
    await older.start();
    expect(older.active.id).toBe('rm-fog');
    const newer = RoutingModelManager.load({ config: settings, dir: folderWith([['p2p', 'rm-p2p']], new Date('2026-04-01T00:00:00Z')), log: silent, broadcast: store() });
    await newer.start();
    expect(newer.active.id).toBe('rm-p2p');
    await writer.set('pointer:active', '{"id": 42}'); // malformed: ignored, start-up goes on
    const third = RoutingModelManager.load({ config: settings, dir: folderWith([['twin', 'rm-twin']], new Date('2026-02-01T00:00:00Z')), log: silent, broadcast: store() });
    await third.start();
    expect(third.active.id).toBe('rm-twin');
    await Promise.all([older.close(), newer.close(), third.close()]);
  });
});
