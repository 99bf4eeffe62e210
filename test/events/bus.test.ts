import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { EventBus, type Delivered } from '../../src/events/bus.js';
import { gatewayEvents, trafficShiftKey, type GatewayEvent } from '../../src/events/gateway-events.js';
import { MemoryStore } from '../../src/state/memory.js';
import { RedisStore } from '../../src/state/redis.js';
import type { StateStore } from '../../src/state/store.js';
import { cleanup, waitFor } from '../helpers/gateway.js';
import { describeWithRedis, startRedis } from '../helpers/redis.js';

afterAll(cleanup);

const quietLog = { info: () => {}, warn: () => {}, debug: () => {} };
const pingSchema = z.strictObject({ n: z.number().int() });

/** Collects what a channel delivers. */
function collect<T>(subscribe: (l: (d: Delivered<T>) => void) => () => void): Array<Delivered<T>> {
  const out: Array<Delivered<T>> = [];
  subscribe((d) => out.push(d));
  return out;
}

/**
 * The bus on one or two "replicas" sharing a store: two memory buses share one MemoryStore
 * (one process), two Redis buses each have their own connection to one redis-server.
 */
function contract(name: string, replicas: () => Promise<[StateStore, StateStore]>, separate: boolean) {
  describe(`${name}: event bus`, () => {
    let stores: [StateStore, StateStore];
    let a: EventBus;
    let b: EventBus;
    beforeAll(async () => {
      stores = await replicas();
      a = new EventBus(stores[0]);
      b = new EventBus(stores[1]);
    });
    afterAll(async () => {
      a.close();
      b.close();
      await Promise.all([...new Set(stores)].map((s) => s.close()));
    });

    it('delivers each event to every replica once, in the same order everywhere, marked local where it was published', async () => {
      const channel = `order-${name}`;
      const onA = collect(a.channel(channel, pingSchema).subscribe.bind(a.channel(channel, pingSchema)));
      const onB = collect(b.channel(channel, pingSchema).subscribe.bind(b.channel(channel, pingSchema)));
      for (let n = 0; n < 20; n++) await (n % 2 === 0 ? a : b).channel(channel, pingSchema).publish({ n });
      await waitFor(() => (onA.length === 20 && onB.length === 20 ? true : undefined), 2000, 'both replicas to hear 20 events');
      expect(onA.map((d) => d.event.n)).toEqual(onB.map((d) => d.event.n));
      expect(onA.map((d) => d.id)).toEqual(onB.map((d) => d.id));
      expect(new Set(onA.map((d) => d.id)).size).toBe(20);
      if (separate) {
        expect(onA.filter((d) => d.local).map((d) => d.event.n % 2)).toEqual(Array(10).fill(0));
        expect(onB.filter((d) => d.local).map((d) => d.event.n % 2)).toEqual(Array(10).fill(1));
      } else {
        // One process: everything was published here.
        expect(onA.every((d) => d.local)).toBe(true);
      }
    });

    it('drops and counts messages that do not parse, and refuses to publish an invalid event', async () => {
      const dropped: string[] = [];
      const bus = new EventBus(stores[1], { onDropped: (c) => dropped.push(c) });
      const channel = bus.channel(`strict-${name}`, pingSchema);
      const got = collect(channel.subscribe.bind(channel));
      // A stray publisher on the same topic: a bad envelope, then a good envelope with a bad event.
      await stores[0].publish(`events:strict-${name}`, { hello: 'world' });
      await stores[0].publish(`events:strict-${name}`, { id: 'x.1', at: 1, event: { n: 'not a number' } });
      await stores[0].publish(`events:strict-${name}`, { id: 'x.2', at: 2, event: { n: 7 } });
      await waitFor(() => (got.length === 1 ? true : undefined), 2000, 'the valid event');
      expect(got[0]!.event).toEqual({ n: 7 });
      expect(dropped).toEqual([`strict-${name}`, `strict-${name}`]);
      await expect(channel.publish({ n: 1.5 } as never)).rejects.toThrow();
      bus.close();
    });

    it('a keyed event published by every replica is delivered once per listener', async () => {
      const onA = collect(gatewayEvents(a).subscribe.bind(gatewayEvents(a)));
      const onB = collect(gatewayEvents(b).subscribe.bind(gatewayEvents(b)));
      const event: GatewayEvent = { type: 'traffic.shifted', route: 'twin', version: 3, canary: 40 };
      const key = trafficShiftKey('twin', 3, '2026-01-01T00:00:00.000Z');
      await Promise.all([gatewayEvents(a).publish(event, { key }), gatewayEvents(b).publish(event, { key })]);
      // A later, different shift is not swallowed by the first one's key.
      await gatewayEvents(b).publish({ ...event, version: 4 }, { key: trafficShiftKey('twin', 4, '2026-01-01T00:00:01.000Z') });
      await waitFor(() => (onA.some((d) => d.event.type === 'traffic.shifted' && d.event.version === 4) && onB.some((d) => d.event.type === 'traffic.shifted' && d.event.version === 4) ? true : undefined), 2000, 'the second shift');
      for (const got of [onA, onB]) expect(got.filter((d) => d.event.type === 'traffic.shifted').map((d) => (d.event as { version: number }).version)).toEqual([3, 4]);
    });

    it('replays what came after a known id; an unknown id says so', async () => {
      const channel = a.channel(`replay-${name}`, pingSchema, { replay: 5 });
      const got = collect(channel.subscribe.bind(channel));
      for (let n = 0; n < 8; n++) await channel.publish({ n });
      await waitFor(() => (got.length === 8 ? true : undefined), 2000, '8 events');
      expect(channel.lastId).toBe(got[7]!.id);
      expect(channel.since(got[4]!.id)?.map((d) => d.event.n)).toEqual([5, 6, 7]);
      expect(channel.since(got[7]!.id)).toEqual([]);
      // Only the last 5 are kept: the first ones are too old to resume from.
      expect(channel.since(got[1]!.id)).toBeUndefined();
      expect(channel.since('made-up')).toBeUndefined();
    });
  });
}

contract('memory', async () => {
  const store = new MemoryStore();
  return [store, store];
}, false);

describeWithRedis('redis', () => {
  contract('redis', async () => {
    const redis = await startRedis();
    const make = async () => {
      const store = new RedisStore({ url: redis.url, keyPrefix: 'bus-test:', commandTimeoutMs: 500, log: quietLog });
      expect(await store.start(5000)).toBe(true);
      return store;
    };
    return [await make(), await make()];
  }, true);
});
