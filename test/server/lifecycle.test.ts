import { describe, expect, it } from 'vitest';
import { Lifecycle } from '../../src/server/lifecycle.js';

describe('Lifecycle', () => {
  it('starts in order and closes in reverse, each close awaited before the next', async () => {
    const events: string[] = [];
    const lifecycle = new Lifecycle({ error() {} });
    for (const name of ['state', 'limiter', 'server']) {
      await lifecycle.start(name, name, {
        start: async () => void events.push(`start ${name}`),
        close: async () => {
          await new Promise((r) => setImmediate(r));
          events.push(`close ${name}`);
        },
      });
    }
    expect(lifecycle.names).toEqual(['state', 'limiter', 'server']);
    await lifecycle.close();
    expect(events).toEqual(['start state', 'start limiter', 'start server', 'close server', 'close limiter', 'close state']);
    expect(lifecycle.names).toEqual([]);
  });

  it('a failed start leaves the failed part off the list; closing closes what had started', async () => {
    const closed: string[] = [];
    const lifecycle = new Lifecycle({ error() {} });
    await lifecycle.start('state', 1, { close: () => void closed.push('state') });
    await expect(lifecycle.start('routing', 2, { start: () => Promise.reject(new Error('bad model')), close: () => void closed.push('routing') })).rejects.toThrow('bad model');
    await lifecycle.close();
    expect(closed).toEqual(['state']);
  });

  it('a close that throws is logged and the others still close; nothing starts once closing', async () => {
    const logged: string[] = [];
    const closed: string[] = [];
    const lifecycle = new Lifecycle({ error: (o: object) => void logged.push((o as { component: string }).component) });
    await lifecycle.start('a', 0, { close: () => void closed.push('a') });
    await lifecycle.start('b', 0, { close: () => { throw new Error('stuck'); } });
    await lifecycle.start('c', 0, { close: () => void closed.push('c') });
    await lifecycle.close();
    expect(closed).toEqual(['c', 'a']);
    expect(logged).toEqual(['b']);
    await expect(lifecycle.start('late', 0, {})).rejects.toThrow(/closing/);
  });
});
