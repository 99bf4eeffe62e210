import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startStandIn, type StandIn } from '../../src/demo/stand-in.js';
import { onCleanup, SERVICE_URL_VARS, type ServiceName } from './gateway.js';

export type { StandIn } from '../../src/demo/stand-in.js';

/** A stand-in on a free loopback port, closed at cleanup. */
export async function standIn(name: string): Promise<StandIn> {
  const s = await startStandIn({ name, port: 0, host: '127.0.0.1' });
  onCleanup(() => s.close());
  return s;
}

/** Stand-ins for the named services (default: all five) and the *_URL variables pointing at them. */
export async function standIns<N extends ServiceName = ServiceName>(
  names: readonly N[] = Object.keys(SERVICE_URL_VARS) as N[],
): Promise<{ byName: Record<N, StandIn>; env: Record<string, string> }> {
  const byName = {} as Record<N, StandIn>;
  const env: Record<string, string> = {};
  for (const name of names) {
    const s = await standIn(name);
    byName[name] = s;
    env[SERVICE_URL_VARS[name]] = s.url;
  }
  return { byName, env };
}

export interface TestServer {
  readonly url: string;
  close(): Promise<void>;
}

/** A plain HTTP server on a free loopback port for upstream behaviour the stand-in lacks; closed at cleanup. */
export async function testServer(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<TestServer> {
  const server = createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  onCleanup(close);
  return { url: `http://127.0.0.1:${port}`, close };
}
