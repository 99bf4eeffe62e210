import { loadConfig, processEnvironment, SERVICE_URL_ENV, type ServiceName } from '../config/index.js';
import { DEMO_SERVICES, startStandIn, type StandIn } from '../demo/stand-in.js';
import { runUntilSignal } from '../server/run.js';

/**
 * `npm run demo`: five stand-ins on 8001-8005 and the gateway in front of them. The service
 * URLs point at the stand-ins; the rest of the environment reaches the gateway unchanged.
 */
const DEMO_TOKEN_TTL_SECONDS = 24 * 3600;

export async function runDemo(): Promise<void> {
  const env = { ...processEnvironment() };
  // Trying things out from this machine (attacks included) should not get it blocked; the
  // exemption is opt-in everywhere else (RATE_LIMIT_EXEMPT_LOOPBACK=false turns it off here too).
  env.RATE_LIMIT_EXEMPT_LOOPBACK ??= 'true';
  const standIns: StandIn[] = [];
  try {
    for (const [name, svc] of Object.entries(DEMO_SERVICES)) {
      const standIn = await startStandIn({ name, port: svc.port, description: svc.description });
      standIns.push(standIn);
      env[SERVICE_URL_ENV[name as ServiceName]] = standIn.url;
    }
  } catch (err) {
    await Promise.all(standIns.map((s) => s.close()));
    const e = err as NodeJS.ErrnoException;
    process.stderr.write(`demo: cannot start the stand-in services (${e.code ?? e.message}); is another demo running on 8001-8005?\n`);
    process.exit(1);
  }

  const result = loadConfig(env);
  if (!result.ok) {
    process.stderr.write(`configuration problems (${result.problems.length}):\n${result.problems.map((p) => `  ${p}\n`).join('')}`);
    await Promise.all(standIns.map((s) => s.close()));
    process.exit(1);
  }

  await runUntilSignal(result.config, {
    onListening: async (gateway) => {
      const port = gateway.config.server.port;
      const base = `http://localhost:${port}`;
      // A token for trying things out: read and write on every /v1 route, valid for a day
      // (or auth.jwt.maxLifetimeSeconds when that is shorter: the issuer caps it).
      const { token, expiresIn } = await gateway.tokens.issue('demo-user', ['read', 'write'], ['pwd'], DEMO_TOKEN_TTL_SECONDS);
      const validFor = expiresIn % 3600 === 0 ? `${expiresIn / 3600} h` : `${Math.round(expiresIn / 60)} min`;
      const auth = `-H 'Authorization: Bearer ${token}'`;
      const lines = [
        '',
        'Unified Gateway demo',
        `  gateway      ${base}`,
        ...standIns.map((s) => `  ${s.name.padEnd(16)} ${s.url}`),
        '',
        `Demo token (scopes read write, valid ${validFor}${env.JWT_SECRET_KEY ? ', signed with JWT_SECRET_KEY' : ', signed with a secret made for this run'}):`,
        `  ${token}`,
        '',
        'Try (the last one lets the routing model pick the service: see the x-routed-to header):',
        `  curl -s ${base}/healthz`,
        `  curl -s ${auth} '${base}/v1/twin/conversations?limit=5'`,
        `  curl -s -X POST ${base}/v1/knowledge/search ${auth} -H 'content-type: application/json' -d '{"query":"fog pricing"}'`,
        `  curl -s -i -X POST ${base}/v1/query ${auth} -H 'content-type: application/json' -d '{"query":"remind me to call mum tomorrow at 6"}'`,
        '',
        'WebSockets (the stand-ins echo text frames on any path; browsers offer the subprotocols bearer and bearer.<token>,',
        'or get a ticket from POST /auth/ws-ticket), and the live gateway events (SSE here; a WebSocket on the same path):',
        `  node -e "const w = new WebSocket('ws://localhost:${port}/v1/twin/chat', ['bearer', 'bearer.${token}']); w.onopen = () => w.send('hello'); w.onmessage = (e) => { console.log('echo:', e.data); w.close(); }"`,
        `  curl -sN ${auth} '${base}/v1/events'`,
        '',
        'AI assistants (MCP; this token gets the read tools; docs/mcp.md: "Using the gateway from an AI assistant"):',
        `  Streamable HTTP  ${base}/mcp with the header Authorization: Bearer <the token above>`,
        `  stdio            GATEWAY_TOKEN=<the token above> npx unified-gateway mcp --url ${base}`,
        '',
        `Metrics at ${base}/metrics. Ctrl-C stops everything.`,
        '',
      ];
      process.stdout.write(lines.join('\n'));
    },
    onStop: async () => {
      await Promise.all(standIns.map((s) => s.close()));
    },
  });
}
