import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { createMetrics } from '../../src/metrics/registry.js';
import { fragmentArrayReuse, Relay } from '../../src/ws/relay.js';
import { cleanup, onCleanup, waitFor } from '../helpers/gateway.js';
import { nextMessage, wsUpstream } from './helpers.js';

/*
 * The relay between two real ws sockets (no gateway around it): what it does per message to
 * keep a message's buffers out of the old generation (src/ws/relay.ts, fragmentArrayReuse).
 */

afterAll(cleanup);

const fragmentsOf = (ws: WebSocket) => (ws as unknown as { _receiver: { _fragments: unknown[] } })._receiver._fragments;

/** A client connected through a Relay to an echo upstream; `front` is the relay's client-side socket. */
async function relayed(options: { bufferBytes?: number; upstream?: (ws: WebSocket) => void } = {}): Promise<{ client: WebSocket; front: WebSocket; upstream: WebSocket; relay: Relay }> {
  const up = await wsUpstream();
  if (options.upstream !== undefined) up.onConnection = options.upstream;
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  onCleanup(() => new Promise<void>((resolve) => {
    for (const c of wss.clients) c.terminate();
    wss.close(() => resolve());
  }));
  const metrics = createMetrics({ durationBuckets: [1], defaultMetrics: false });
  const sides = new Promise<{ front: WebSocket; upstream: WebSocket; relay: Relay }>((resolve, reject) => {
    wss.once('connection', (front) => {
      const upstream = new WebSocket(up.url.replace('http', 'ws'), { perMessageDeflate: false });
      upstream.once('error', reject);
      upstream.once('open', () => {
        const relay = new Relay(front, upstream, {
          route: 'test',
          limits: { messagesPerSecond: 0, bufferBytes: options.bufferBytes ?? 1 << 20, idleTimeoutMs: 0, pingIntervalMs: 0 },
          metrics,
        });
        resolve({ front, upstream, relay });
      });
    });
  });
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}/`, { perMessageDeflate: false });
  onCleanup(() => client.terminate());
  await new Promise((resolve, reject) => {
    client.once('open', resolve);
    client.once('error', reject);
  });
  return { client, ...(await sides) };
}

describe('relay: no per-message array left for the next message', () => {
  it("applies to the installed ws on both kinds of socket (server side and client side), not to binaryType 'fragments'", async () => {
    const { client, front, upstream } = await relayed();
    // If a ws upgrade changes its receiver, this fails instead of the promotion coming back silently.
    expect(fragmentArrayReuse(front)).toBeTypeOf('function');
    expect(fragmentArrayReuse(upstream)).toBeTypeOf('function');
    client.binaryType = 'fragments';
    expect(fragmentArrayReuse(client)).toBeUndefined();
  });

  it('text, binary and fragmented messages pass intact, and each side keeps filling the same emptied array', async () => {
    const { client, front, upstream } = await relayed();
    const frontArray = fragmentsOf(front);
    const upstreamArray = fragmentsOf(upstream);
    const echoes: Array<{ data: Buffer; isBinary: boolean }> = [];
    for (const [payload, binary] of [
      ['hello', false],
      [Buffer.from([0, 1, 2, 254, 255]), true],
      ['x'.repeat(70_000), false],
    ] as const) {
      const echo = nextMessage(client);
      client.send(payload, { binary });
      echoes.push(await echo);
      // ws replaced the array it emitted the message from; the relay handed the same one back, empty.
      expect(fragmentsOf(front)).toBe(frontArray);
      expect(fragmentsOf(upstream)).toBe(upstreamArray);
      expect(frontArray).toHaveLength(0);
      expect(upstreamArray).toHaveLength(0);
    }
    // A message in three frames: the fragments gather in the reused array and arrive as one message.
    const echo = nextMessage(client);
    client.send('one,', { fin: false });
    client.send('two,', { fin: false });
    client.send('three', { fin: true });
    echoes.push(await echo);
    expect(echoes.map((e) => [e.isBinary, e.isBinary ? [...e.data] : e.data.toString()])).toEqual([
      [false, 'hello'],
      [true, [0, 1, 2, 254, 255]],
      [false, 'x'.repeat(70_000)],
      [false, 'one,two,three'],
    ]);
    expect(fragmentsOf(front)).toBe(frontArray);
    expect(frontArray).toHaveLength(0);
  });
});

describe('relay: backpressure', () => {
  it('a client that stops reading: the relay stops reading the upstream within bufferBytes plus a message, and everything arrives once it reads again', async () => {
    const MESSAGE = 16 * 1024;
    const COUNT = 1024; // 16 MiB, far more than loopback's socket buffers take
    const BUFFER = 64 * 1024;
    let flood: (() => void) | undefined;
    const { client, upstream, relay } = await relayed({
      bufferBytes: BUFFER,
      upstream: (ws) => {
        flood = () => {
          for (let i = 0; i < COUNT; i++) ws.send(Buffer.alloc(MESSAGE, i % 251));
        };
      },
    });
    client.pause();
    const received: number[] = [];
    client.on('message', (data: Buffer) => received.push(data[0]!));
    flood!();
    // The relay pauses the upstream socket once the client's queue is past the buffer...
    await waitFor(() => (upstream.isPaused ? true : undefined), 10_000, 'the upstream paused');
    await new Promise((r) => setTimeout(r, 200));
    // ...and holds for the client at most bufferBytes, plus the message that crossed it, plus the
    // messages ws still parses from the upstream's last read (at most 64 KiB), with their headers.
    const READ = 64 * 1024;
    expect(relay.pending.toClient).toBeGreaterThan(0);
    expect(relay.pending.toClient).toBeLessThanOrEqual(BUFFER + MESSAGE + READ + 14 * ((BUFFER + READ) / MESSAGE + 1));
    expect(received.length).toBeLessThan(COUNT);
    client.resume();
    await waitFor(() => (received.length === COUNT ? true : undefined), 20_000, 'every message relayed');
    expect(received).toEqual(Array.from({ length: COUNT }, (_, i) => i % 251));
    expect(upstream.isPaused).toBe(false);
    expect(relay.pending).toEqual({ toUpstream: 0, toClient: 0 });
  });
});
