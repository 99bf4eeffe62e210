import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { JEMALLOC_CONF, JEMALLOC_LINK } from '../../bench/servers.js';
import { loadConfig } from '../../src/config/load.js';
import { envSchema, fileSchema, SERVICE_NAMES, SERVICE_URL_ENV } from '../../src/config/schema.js';
import { startStandIn } from '../../src/demo/stand-in.js';
import { createMetrics } from '../../src/metrics/registry.js';
import { buildGateway } from '../../src/server/app.js';

/*
 * Checks of everything under docker/: files parse, names and numbers agree with the gateway's
 * config schema, metrics registry and health routes, and with each other (ports, labels,
 * selectors, secrets, shutdown deadlines). Kubernetes objects are validated against the
 * Kubernetes OpenAPI schemas shipped by the `kubernetes-models` package, and the Prometheus
 * files with `promtool`, each when available (skipped with the reason otherwise).
 */

// YAML and JSON documents are checked field by field; their shape is what is under test.
type Json = any;

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const DOCKER = join(ROOT, 'docker');
const K8S = join(DOCKER, 'k8s');
const GATEWAY_CONFIG_FILE = join(K8S, 'config', 'gateway.yaml');
const CONTAINER_PORT = 8000;
const IMAGE_NAME = 'unified-gateway';

const read = (file: string) => readFileSync(file, 'utf8');
const rel = (file: string) => relative(ROOT, file);

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)],
  );
}

/** Every document of a YAML file; parse errors and warnings fail the test with their position. */
function yamlDocs(file: string): Json[] {
  // merge: compose.yaml uses `<<:` merge keys, as Docker Compose does.
  const docs = parseAllDocuments(read(file), { merge: true, uniqueKeys: true, prettyErrors: true });
  if (!Array.isArray(docs)) throw new Error(`${rel(file)}: not a YAML stream`);
  const problems = docs.flatMap((d) => [...d.errors, ...d.warnings].map((e) => `${rel(file)}: ${e.message}`));
  if (problems.length > 0) throw new Error(problems.join('\n'));
  return docs.map((d) => d.toJS()).filter((d) => d !== null && d !== undefined);
}
function yamlDoc(file: string): Json {
  const docs = yamlDocs(file);
  expect(docs, rel(file)).toHaveLength(1);
  return docs[0];
}

function which(cmd: string): boolean {
  const r = spawnSync(cmd, ['--version'], { stdio: 'ignore' });
  return r.error === undefined;
}

function run(cmd: string, args: string[]): { status: number | null; output: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', cwd: ROOT, timeout: 60_000 });
  if (r.error) throw r.error;
  return { status: r.status, output: `${r.stdout}${r.stderr}`.trim() };
}

/** Run a `node ...` command line (a container healthcheck) with this test's Node, without blocking the event loop. */
function runNodeCommand(argv: string[], env: Record<string, string> = {}): Promise<number | null> {
  expect(argv[0]).toBe('node');
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, argv.slice(1), { env: { ...process.env, ...env }, stdio: 'ignore' });
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolvePromise(code);
    });
  });
}

// ---------------------------------------------------------------------------------------
// Dockerfile
// ---------------------------------------------------------------------------------------

interface Instruction {
  readonly op: string;
  readonly args: string;
  readonly stage: number;
}

/** Instructions with line continuations joined and comments dropped; `stage` counts FROMs (-1 before the first). */
function dockerfileInstructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending = '';
  let stage = -1;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#') || (line === '' && pending === '')) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    const full = (pending + line).trim();
    pending = '';
    if (full === '') continue;
    const [op = '', ...rest] = full.split(/\s+/);
    if (op.toUpperCase() === 'FROM') stage += 1;
    out.push({ op: op.toUpperCase(), args: rest.join(' '), stage });
  }
  return out;
}

const dockerfile = dockerfileInstructions(read(join(DOCKER, 'Dockerfile')));
const lastStage = Math.max(...dockerfile.map((i) => i.stage));
const runtime = dockerfile.filter((i) => i.stage === lastStage);

function substituteArgs(value: string): string {
  const args = new Map<string, string>();
  for (const i of dockerfile.filter((d) => d.op === 'ARG' && d.stage === -1)) {
    const [name = '', def = ''] = i.args.split('=', 2);
    args.set(name, def);
  }
  return value.replace(/\$\{(\w+)\}|\$(\w+)/g, (_m, a: string | undefined, b: string | undefined) => args.get(a ?? b ?? '') ?? '');
}

/** The JSON array after CMD in a HEALTHCHECK, or a CMD instruction's exec form. */
function execForm(args: string): string[] {
  const json = args.slice(args.indexOf('['));
  const parsed: unknown = JSON.parse(json);
  expect(Array.isArray(parsed) && parsed.every((a) => typeof a === 'string'), `exec form: ${json}`).toBe(true);
  return parsed as string[];
}

describe('docker/Dockerfile', () => {
  it('builds on Node 24 in every stage', () => {
    const froms = dockerfile.filter((i) => i.op === 'FROM');
    expect(froms.length).toBeGreaterThanOrEqual(2);
    for (const from of froms) {
      const image = substituteArgs(from.args.split(/\s+/)[0] ?? '');
      expect(image, `FROM ${from.args}`).toMatch(/^(docker\.io\/(library\/)?)?node:24(\.\d+)*(-[a-z0-9.-]+)?(@sha256:[0-9a-f]{64})?$/);
    }
  });

  it('installs production dependencies with npm ci --omit=dev, without the prepare script that needs tsc', () => {
    const installs = runtime.filter((i) => i.op === 'RUN' && /\bnpm ci\b/.test(i.args));
    expect(installs).toHaveLength(1);
    const install = installs[0]!.args;
    expect(install).toMatch(/--omit=dev\b/);
    const pkg = JSON.parse(read(join(ROOT, 'package.json'))) as { scripts?: Record<string, string> };
    // `prepare` runs on `npm ci` and compiles with TypeScript, a devDependency.
    if (pkg.scripts?.prepare !== undefined) expect(install).toMatch(/--ignore-scripts\b/);
    // The build happens in an earlier stage and only its output is copied.
    expect(runtime.some((i) => i.op === 'RUN' && /npm run build|tsc\b/.test(i.args))).toBe(false);
    expect(runtime.some((i) => i.op === 'COPY' && /--from=\S+/.test(i.args) && /\bdist\b/.test(i.args))).toBe(true);
    expect(dockerfile.some((i) => i.stage < lastStage && i.op === 'RUN' && /npm run build/.test(i.args))).toBe(true);
  });

  it('runs as a numeric non-root user with NODE_ENV=production', () => {
    const users = runtime.filter((i) => i.op === 'USER');
    const user = users.at(-1)?.args.split(':')[0];
    expect(user, 'USER in the runtime stage').toBeDefined();
    // Numeric, so Kubernetes' runAsNonRoot can verify it.
    expect(user).toMatch(/^\d+$/);
    expect(Number(user)).toBeGreaterThan(0);
    const env = runtime.filter((i) => i.op === 'ENV').map((i) => i.args).join(' ');
    expect(env).toMatch(/(^|\s)NODE_ENV=production(\s|$)/);
  });

  it('exposes 8000, stops on SIGTERM and serves by default', () => {
    expect(runtime.find((i) => i.op === 'EXPOSE')?.args.split(/\s+/)).toContain(String(CONTAINER_PORT));
    expect(runtime.find((i) => i.op === 'STOPSIGNAL')?.args).toBe('SIGTERM');
    const cmds = runtime.filter((i) => i.op === 'CMD');
    expect(execForm(cmds.at(-1)!.args)).toEqual(['node', '--max-semi-space-size=4', 'bin/unified-gateway.js', 'serve']);
  });

  it('has a node-based HEALTHCHECK against /livez', () => {
    const hc = runtime.filter((i) => i.op === 'HEALTHCHECK');
    expect(hc).toHaveLength(1);
    const argv = execForm(hc[0]!.args);
    expect(argv[0]).toBe('node');
    expect(argv.join(' ')).toContain('/livez');
  });

  it('sets only environment variables the gateway knows (besides NODE_* and the allocator\'s: LD_PRELOAD, MALLOC_CONF, MALLOC_ARENA_MAX)', () => {
    const known = new Set(Object.keys(envSchema.shape));
    const allocator = new Set(['LD_PRELOAD', 'MALLOC_CONF', 'MALLOC_ARENA_MAX']);
    const names = runtime
      .filter((i) => i.op === 'ENV')
      .flatMap((i) => i.args.split(/\s+/).filter((t) => t.includes('=')).map((t) => t.split('=')[0]!));
    expect(names.length).toBeGreaterThan(0);
    expect(names.filter((n) => !n.startsWith('NODE_') && !allocator.has(n) && !known.has(n))).toEqual([]);
  });

  it('preloads the jemalloc it installs, with the settings the bench runs the gateway with', () => {
    const env = new Map(
      runtime
        .filter((i) => i.op === 'ENV')
        .flatMap((i) => i.args.split(/\s+/).filter((t) => t.includes('=')).map((t) => t.split('=', 2) as [string, string])),
    );
    const preload = env.get('LD_PRELOAD');
    expect(preload).toBe(JEMALLOC_LINK);
    // The runtime stage installs the package and links the library where LD_PRELOAD points, before the ENV.
    const install = runtime.findIndex((i) => i.op === 'RUN' && i.args.includes('install -y --no-install-recommends libjemalloc2') && i.args.includes(`ln -s`) && i.args.includes(preload!));
    const envAt = runtime.findIndex((i) => i.op === 'ENV' && i.args.includes('LD_PRELOAD='));
    expect(install).toBeGreaterThanOrEqual(0);
    expect(install).toBeLessThan(envAt);
    expect(env.get('MALLOC_CONF')).toBe(JEMALLOC_CONF);
  });

  it('has a BuildKit ignore file that keeps build inputs and drops local output', () => {
    const patterns = read(join(DOCKER, 'Dockerfile.dockerignore'))
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    const toRegExp = (p: string) =>
      new RegExp(
        `^${p
          .replace(/^\//, '')
          .replace(/[.+^${}()|\\]/g, '\\$&')
          .replace(/\*\*\//g, '\u0000')
          .replace(/\*\*/g, '.*')
          .replace(/\*/g, '[^/]*')
          .replace(/\?/g, '[^/]')
          .replace(/\u0000/g, '(.*/)?')}(/.*)?$`,
      );
    // Docker semantics: the last matching pattern wins; "!" re-includes.
    const ignored = (path: string) => {
      let result = false;
      for (const p of patterns) {
        const negate = p.startsWith('!');
        if (toRegExp(negate ? p.slice(1) : p).test(path)) result = !negate;
      }
      return result;
    };
    for (const kept of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'bin/unified-gateway.js', 'src/cli/main.ts', 'mcp/server/index.ts', 'routing-models/model.json']) {
      expect(ignored(kept), `${kept} must reach the build`).toBe(false);
    }
    for (const dropped of ['node_modules/fastify/package.json', 'dist/src/cli/main.js', '.git/HEAD', 'test/docker/manifests.test.ts', 'bench/results/run.json', 'coverage/index.html', '.env', 'docker/compose.yaml']) {
      expect(ignored(dropped), `${dropped} must stay out of the build context`).toBe(true);
    }
  });
});

// ---------------------------------------------------------------------------------------
// Every YAML file
// ---------------------------------------------------------------------------------------

const yamlFiles = walk(DOCKER).filter((f) => /\.ya?ml$/.test(f));

describe('docker/: YAML files', () => {
  it('finds the expected files', () => {
    const names = yamlFiles.map(rel);
    for (const f of ['docker/compose.yaml', 'docker/prometheus/prometheus.yml', 'docker/prometheus/rules.yml', 'docker/k8s/kustomization.yaml', 'docker/k8s/deployment.yaml']) {
      expect(names).toContain(f);
    }
  });

  it.each(yamlFiles.map((f) => [rel(f), f]))('%s parses', (_name, file) => {
    expect(yamlDocs(file).length).toBeGreaterThan(0);
  });
});

// ---------------------------------------------------------------------------------------
// Kubernetes
// ---------------------------------------------------------------------------------------

interface K8sObject {
  readonly file: string;
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: Json;
  readonly spec?: Json;
  readonly [key: string]: Json;
}

const manifestFiles = readdirSync(K8S)
  .filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
  .map((f) => join(K8S, f));
const k8sObjects: K8sObject[] = manifestFiles.flatMap((file) => yamlDocs(file).map((doc: Json) => ({ ...doc, file: rel(file) })));
const kustomization: Json = yamlDoc(join(K8S, 'kustomization.yaml'));
const gatewayFileConfig = fileSchema.parse(yamlDoc(GATEWAY_CONFIG_FILE));

function only(kind: string, name?: string): K8sObject {
  const found = k8sObjects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  expect(found, `${kind} ${name ?? ''}`).toHaveLength(1);
  return found[0]!;
}
const deployment = only('Deployment', 'unified-gateway');
const podSpec: Json = deployment.spec.template.spec;
const podLabels: Record<string, string> = deployment.spec.template.metadata.labels;
const gatewayContainer: Json = podSpec.containers.find((c: Json) => String(c.image).split(/[:@]/)[0]!.endsWith(IMAGE_NAME));
const secretTemplate = only('Secret');

function matches(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/** The container port a probe or Service targets (a number, or a container port's name). */
function containerPort(port: number | string): number | undefined {
  if (typeof port === 'number') return port;
  return gatewayContainer.ports.find((p: Json) => p.name === port)?.containerPort;
}

/** Load kubernetes-models (Kubernetes OpenAPI schemas compiled to validators) when installed. */
async function kubernetesModels(): Promise<((obj: K8sObject) => string[]) | undefined> {
  const load = (spec: string): Promise<Json> => import(/* @vite-ignore */ spec);
  try {
    await load('kubernetes-models');
  } catch {
    return undefined;
  }
  const models = new Map<string, Json>();
  for (const o of k8sObjects.concat(await renderedKustomization().catch(() => []))) {
    const key = `${o.apiVersion}/${o.kind}`;
    if (!models.has(key)) models.set(key, (await load(`kubernetes-models/${o.apiVersion}/${o.kind}`))[o.kind]);
  }
  return (obj) => {
    const { file: _file, ...data } = obj;
    const Model = models.get(`${obj.apiVersion}/${obj.kind}`);
    if (Model === undefined) return [`no schema for ${obj.apiVersion} ${obj.kind}`];
    try {
      new Model(data).validate();
      return [];
    } catch (err) {
      return [(err as Error).message];
    }
  };
}

let rendered: Promise<K8sObject[]> | undefined;
/** `kubectl kustomize docker/k8s`, when kubectl is on the PATH. */
function renderedKustomization(): Promise<K8sObject[]> {
  rendered ??= (async () => {
    if (!which('kubectl')) throw new Error('kubectl not found on PATH');
    const r = run('kubectl', ['kustomize', K8S]);
    if (r.status !== 0) throw new Error(`kubectl kustomize failed:\n${r.output}`);
    return parseAllDocuments(r.output).map((d) => ({ ...(d.toJS() as Json), file: 'kustomize build' }));
  })();
  return rendered;
}

describe('docker/k8s', () => {
  it('every object has apiVersion, kind and metadata.name', () => {
    expect(k8sObjects.length).toBeGreaterThanOrEqual(8);
    for (const o of k8sObjects) {
      expect(typeof o.apiVersion, o.file).toBe('string');
      expect(typeof o.kind, o.file).toBe('string');
      expect(o.metadata?.name, `${o.file} ${o.kind}`).toMatch(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);
    }
    for (const kind of ['Namespace', 'Deployment', 'Service', 'HorizontalPodAutoscaler', 'PodDisruptionBudget', 'Secret', 'NetworkPolicy', 'StatefulSet']) {
      expect(k8sObjects.map((o) => o.kind)).toContain(kind);
    }
  });

  it('every object is valid against the Kubernetes OpenAPI schemas (kubernetes-models)', async (ctx) => {
    const validate = await kubernetesModels();
    if (validate === undefined) {
      const why = 'package kubernetes-models is not installed (npm install --save-dev kubernetes-models)';
      console.warn(`docker/k8s schema validation skipped: ${why}`);
      return ctx.skip(why);
    }
    const problems = k8sObjects.flatMap((o) => validate(o).map((p) => `${o.file} ${o.kind}/${o.metadata.name}: ${p}`));
    expect(problems).toEqual([]);
  });

  it('no object has fields the Kubernetes API does not know (TypeScript excess-property check)', async (ctx) => {
    // The OpenAPI schemas allow unknown fields, which the API server then drops or rejects;
    // a misspelt `readinesProbe` would silently mean "no readiness probe". Type-checking each
    // object as a literal of its kubernetes-models interface catches that.
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const why = !existsSync(join(ROOT, 'node_modules', 'kubernetes-models'))
      ? 'package kubernetes-models is not installed'
      : !existsSync(tsc)
        ? 'typescript is not installed'
        : undefined;
    if (why !== undefined) {
      console.warn(`docker/k8s field check skipped: ${why}`);
      return ctx.skip(why);
    }
    // Inside node_modules so that the generated module resolves kubernetes-models.
    const dir = join(ROOT, 'node_modules', '.cache', 'unified-gateway-manifest-check');
    mkdirSync(dir, { recursive: true });
    const lines: string[] = [];
    k8sObjects.forEach((o, i) => {
      const { file, ...data } = o;
      lines.push(`import type { I${o.kind} as T${i} } from 'kubernetes-models/${o.apiVersion}/${o.kind}';`);
      lines.push(`// ${file} ${o.kind}/${o.metadata.name}`, `export const m${i}: T${i} = ${JSON.stringify(data, null, 2)};`);
    });
    writeFileSync(join(dir, 'manifests.mts'), `${lines.join('\n')}\n`);
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { strict: true, noEmit: true, target: 'es2023', module: 'nodenext', moduleResolution: 'nodenext', skipLibCheck: true, types: [] },
        files: ['manifests.mts'],
      }),
    );
    const r = spawnSync(process.execPath, [tsc, '-p', join(dir, 'tsconfig.json')], { encoding: 'utf8', timeout: 120_000 });
    expect(`${r.stdout}${r.stderr}`.trim(), `see ${join(dir, 'manifests.mts')}`).toBe('');
    expect(r.status).toBe(0);
  });

  it('kustomization lists files that exist, generates the config ConfigMap and leaves the Secret template out', () => {
    expect(kustomization.kind).toBe('Kustomization');
    for (const res of kustomization.resources as string[]) expect(existsSync(join(K8S, res)), res).toBe(true);
    expect(kustomization.resources).not.toContain('secret.template.yaml');
    const generator = (kustomization.configMapGenerator as Json[]).find((g) => g.name === podSpec.volumes.find((v: Json) => v.configMap)?.configMap.name);
    expect(generator, 'configMapGenerator for the Deployment config volume').toBeDefined();
    const [key, source] = String(generator.files[0]).split('=');
    expect(resolve(K8S, source!)).toBe(GATEWAY_CONFIG_FILE);
    const gatewayConfigEnv = gatewayContainer.env.find((e: Json) => e.name === 'GATEWAY_CONFIG')?.value;
    const mount = gatewayContainer.volumeMounts.find((m: Json) => m.name === podSpec.volumes.find((v: Json) => v.configMap).name);
    expect(gatewayConfigEnv).toBe(`${mount.mountPath}/${key}`);
    expect(kustomization.images.map((i: Json) => i.name)).toContain(gatewayContainer.image);
  });

  it('the ConfigMap gateway config passes fileSchema (strict) and the gateway boots with the Deployment environment', () => {
    expect(() => fileSchema.parse(yamlDoc(GATEWAY_CONFIG_FILE))).not.toThrow();
    const secretValues: Record<string, string> = secretTemplate.stringData;
    const env: Record<string, string> = {};
    for (const e of gatewayContainer.env as Json[]) {
      if (e.value !== undefined) env[e.name] = String(e.value);
      else if (e.valueFrom?.secretKeyRef) {
        expect(e.valueFrom.secretKeyRef.name).toBe(secretTemplate.metadata.name);
        const v = secretValues[e.valueFrom.secretKeyRef.key];
        if (e.valueFrom.secretKeyRef.optional !== true) expect(v, `${e.name} in the Secret template`).toBeDefined();
        if (v !== undefined) env[e.name] = v;
      } else throw new Error(`unexpected env source for ${e.name}`);
    }
    env.GATEWAY_CONFIG = GATEWAY_CONFIG_FILE;
    expect(env.ENVIRONMENT).toBe('production');

    // The template's placeholders must be refused, never run with.
    const withPlaceholders = loadConfig(env);
    expect(withPlaceholders.ok).toBe(false);
    if (!withPlaceholders.ok) for (const p of withPlaceholders.problems) expect(p).toMatch(/^(SECRET_KEY|JWT_SECRET_KEY|API_KEY): /);

    const real = { ...env };
    for (const key of Object.keys(secretValues)) real[key] = randomBytes(36).toString('base64url');
    const loaded = loadConfig(real);
    if (!loaded.ok) throw new Error(loaded.problems.join('\n'));
    expect(loaded.config.server.port).toBe(CONTAINER_PORT);
    expect(loaded.config.server.shutdownTimeoutMs).toBe(gatewayFileConfig.server.shutdownTimeoutMs);
    expect(loaded.config.redisUrl).toBeDefined();
  });

  it('the Secret template holds only placeholders the gateway would refuse in production', () => {
    expect(secretTemplate.data).toBeUndefined();
    const values = Object.entries(secretTemplate.stringData as Record<string, string>);
    expect(values.length).toBeGreaterThan(0);
    const known = new Set(Object.keys(envSchema.shape));
    for (const [key, value] of values) {
      expect(known.has(key), key).toBe(true);
      expect(value, key).toMatch(/REPLACE/);
      expect(value.length, `${key} placeholder must stay under the 32-character production minimum`).toBeLessThan(32);
    }
  });

  it('the Deployment probes /livez and /readyz on container port 8000', () => {
    expect(containerPort('http')).toBe(CONTAINER_PORT);
    const probe = (name: string) => {
      const p = gatewayContainer[name];
      expect(p?.httpGet, name).toBeDefined();
      expect(containerPort(p.httpGet.port), `${name} port`).toBe(CONTAINER_PORT);
      return p.httpGet.path as string;
    };
    expect(probe('readinessProbe')).toBe('/readyz');
    expect(probe('livenessProbe')).toBe('/livez');
    expect(['/livez', '/readyz']).toContain(probe('startupProbe'));
    const portEnv = gatewayContainer.env.find((e: Json) => e.name === 'GATEWAY_PORT')?.value;
    if (portEnv !== undefined) expect(Number(portEnv)).toBe(CONTAINER_PORT);
  });

  it('the Deployment rolls without losing capacity and drains before it is killed', () => {
    expect(deployment.spec.replicas).toBe(3);
    expect(deployment.spec.strategy.type).toBe('RollingUpdate');
    expect(deployment.spec.strategy.rollingUpdate.maxUnavailable).toBe(0);
    expect(matches(deployment.spec.selector.matchLabels, podLabels)).toBe(true);
    const preStop = gatewayContainer.lifecycle?.preStop;
    const sleepSeconds = preStop?.sleep?.seconds ?? Number(preStop?.exec?.command?.at(-1));
    expect(sleepSeconds, 'preStop sleep').toBeGreaterThan(0);
    // SIGKILL comes terminationGracePeriodSeconds after deletion; the preStop sleep, the
    // gateway's drain delay and its drain deadline must all fit before it.
    const neededMs = sleepSeconds * 1000 + gatewayFileConfig.server.drainDelayMs + gatewayFileConfig.server.shutdownTimeoutMs;
    expect(podSpec.terminationGracePeriodSeconds * 1000).toBeGreaterThan(neededMs);
    expect(podSpec.topologySpreadConstraints.length).toBeGreaterThan(0);
    for (const c of podSpec.topologySpreadConstraints) expect(matches(c.labelSelector.matchLabels, podLabels)).toBe(true);
    expect(gatewayContainer.resources.requests.cpu).toBeDefined();
    expect(gatewayContainer.resources.limits.memory).toBeDefined();
  });

  it('every pod runs non-root, read-only, without capabilities, under RuntimeDefault seccomp', () => {
    const workloads = k8sObjects.filter((o) => ['Deployment', 'StatefulSet'].includes(o.kind));
    expect(workloads.length).toBeGreaterThanOrEqual(2);
    for (const w of workloads) {
      const spec = w.spec.template.spec;
      expect(spec.securityContext.runAsNonRoot, w.metadata.name).toBe(true);
      expect(spec.securityContext.seccompProfile.type, w.metadata.name).toBe('RuntimeDefault');
      expect(spec.automountServiceAccountToken, w.metadata.name).toBe(false);
      for (const c of spec.containers) {
        expect(c.securityContext.readOnlyRootFilesystem, c.name).toBe(true);
        expect(c.securityContext.allowPrivilegeEscalation, c.name).toBe(false);
        expect(c.securityContext.capabilities.drop, c.name).toEqual(['ALL']);
      }
    }
  });

  it('Service, PDB, HPA and NetworkPolicies point at the pods they are meant for', () => {
    const service = only('Service', 'unified-gateway');
    expect(matches(service.spec.selector, podLabels)).toBe(true);
    for (const p of service.spec.ports) expect(containerPort(p.targetPort)).toBe(CONTAINER_PORT);
    expect(matches(only('PodDisruptionBudget').spec.selector.matchLabels, podLabels)).toBe(true);
    const hpa = only('HorizontalPodAutoscaler');
    expect(hpa.apiVersion).toBe('autoscaling/v2');
    expect(hpa.spec.scaleTargetRef).toMatchObject({ apiVersion: 'apps/v1', kind: 'Deployment', name: deployment.metadata.name });
    expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(deployment.spec.replicas);
    expect(hpa.spec.maxReplicas).toBeGreaterThan(hpa.spec.minReplicas);
    expect(only('PodDisruptionBudget').spec.maxUnavailable).toBeLessThan(hpa.spec.minReplicas);
    expect(matches(only('NetworkPolicy', 'unified-gateway').spec.podSelector.matchLabels, podLabels)).toBe(true);
    // Redis accepts the gateway pods, and REDIS_URL names the Redis Service.
    const redisPolicy = only('NetworkPolicy', 'redis');
    expect(redisPolicy.spec.ingress.some((r: Json) => r.from.some((f: Json) => f.podSelector && matches(f.podSelector.matchLabels, podLabels)))).toBe(true);
    const redisUrl = new URL(gatewayContainer.env.find((e: Json) => e.name === 'REDIS_URL').value);
    const redisService = only('Service', 'redis');
    expect(redisUrl.hostname.split('.')[0]).toBe(redisService.metadata.name);
    expect(redisService.spec.ports.map((p: Json) => p.port)).toContain(Number(redisUrl.port || 6379));
  });

  it('sets only environment variables the gateway knows', () => {
    const known = new Set(Object.keys(envSchema.shape));
    const names = (gatewayContainer.env as Json[]).map((e) => e.name as string);
    expect(names.length).toBeGreaterThan(0);
    expect(names.filter((n) => !known.has(n))).toEqual([]);
    expect(new Set(names).size, 'no duplicate env entries').toBe(names.length);
  });

  it('kustomize renders the set: hashed ConfigMap wired into the Deployment, one namespace', async (ctx) => {
    let objects: K8sObject[];
    try {
      objects = await renderedKustomization();
    } catch (err) {
      if ((err as Error).message.includes('not found on PATH')) {
        console.warn('kustomize render check skipped: kubectl not found on PATH');
        return ctx.skip('kubectl not found on PATH');
      }
      throw err;
    }
    const cm = objects.find((o) => o.kind === 'ConfigMap');
    expect(cm?.metadata.name).toMatch(/^unified-gateway-config-[a-z0-9]{6,}$/);
    expect(cm!.data['gateway.yaml']).toBe(read(GATEWAY_CONFIG_FILE));
    const dep = objects.find((o) => o.kind === 'Deployment')!;
    expect(dep.spec.template.spec.volumes.find((v: Json) => v.configMap).configMap.name).toBe(cm!.metadata.name);
    for (const o of objects.filter((x) => x.kind !== 'Namespace')) expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe(kustomization.namespace);
    expect(objects.some((o) => o.kind === 'Secret')).toBe(false);
    const validate = await kubernetesModels();
    if (validate) expect(objects.flatMap((o) => validate(o).map((p) => `${o.kind}/${o.metadata.name}: ${p}`))).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------
// compose.yaml
// ---------------------------------------------------------------------------------------

const compose: Json = yamlDoc(join(DOCKER, 'compose.yaml'));
const composeServices: Record<string, Json> = compose.services;
const appServices = Object.entries(composeServices).filter(([, s]) => String(s.image ?? '').startsWith(`${IMAGE_NAME}:`));

/** A compose environment (map or list) with ${VAR:-default} taken as if VAR were unset in the shell. */
function composeEnvironment(service: Json): Record<string, string> {
  const raw: Record<string, unknown> = Array.isArray(service.environment)
    ? Object.fromEntries((service.environment as string[]).map((e) => [e.split('=')[0], e.slice(e.indexOf('=') + 1)]))
    : (service.environment ?? {});
  return Object.fromEntries(
    Object.entries(raw).map(([k, v]) => [k, String(v ?? '').replace(/\$\{(\w+)(?::?-([^}]*))?\}/g, (_m, _n, def: string | undefined) => def ?? '')]),
  );
}

function standInPort(service: Json): { name: string; port: number } {
  const cmd = service.command as string[];
  expect(cmd.slice(0, 3)).toEqual(['node', 'bin/unified-gateway.js', 'stand-in']);
  expect(cmd[cmd.indexOf('--host') + 1], 'stand-ins must listen beyond loopback').toBe('0.0.0.0');
  return { name: cmd[3]!, port: Number(cmd[cmd.indexOf('--port') + 1]) };
}

describe('docker/compose.yaml', () => {
  const gateway = composeServices.gateway;

  it('builds the gateway image from docker/Dockerfile with the repository root as context', () => {
    expect(resolve(DOCKER, gateway.build.context)).toBe(ROOT);
    expect(gateway.build.dockerfile).toBe('docker/Dockerfile');
    expect((gateway.ports as string[]).map((p) => p.split(':').slice(-2).join(':'))).toContain(`${CONTAINER_PORT}:${CONTAINER_PORT}`);
  });

  it('runs a stand-in for each service and points the gateway at it', () => {
    const env = composeEnvironment(gateway);
    for (const name of SERVICE_NAMES) {
      const svc = composeServices[name];
      expect(svc, `compose service ${name}`).toBeDefined();
      const { name: standInName, port } = standInPort(svc);
      expect(standInName).toBe(name);
      expect(env[SERVICE_URL_ENV[name]]).toBe(`http://${name}:${port}`);
      expect(svc.healthcheck.test.join(' ')).toContain(`127.0.0.1:${port}/health`);
      expect(gateway.depends_on[name]).toEqual({ condition: 'service_healthy' });
    }
  });

  it('gives the gateway only known environment variables, with values the gateway accepts', () => {
    const known = new Set(Object.keys(envSchema.shape));
    expect(appServices.length).toBe(1 + SERVICE_NAMES.length);
    for (const [name, svc] of appServices) {
      const keys = Object.keys(composeEnvironment(svc));
      expect(keys.filter((k) => !known.has(k)), `${name} environment`).toEqual([]);
    }
    const loaded = loadConfig(composeEnvironment(gateway));
    if (!loaded.ok) throw new Error(loaded.problems.join('\n'));
    expect(loaded.config.environment).toBe('development');
  });

  it('gives the gateway longer to stop than its drain deadline', () => {
    const toMs = (d: string) => {
      const m = /^(\d+)(ms|s|m)$/.exec(d);
      expect(m, d).not.toBeNull();
      return Number(m![1]) * ({ ms: 1, s: 1000, m: 60_000 } as Record<string, number>)[m![2]!]!;
    };
    // compose mounts no config file: the default deadline applies.
    const { server } = fileSchema.parse({});
    expect(toMs(gateway.stop_grace_period)).toBeGreaterThan(server.drainDelayMs + server.shutdownTimeoutMs);
  });

  it('keeps Redis, Prometheus and Grafana behind profiles, with healthchecks', () => {
    expect(composeServices.redis.profiles).toEqual(['redis']);
    expect(composeServices.prometheus.profiles).toEqual(['observability']);
    expect(composeServices.grafana.profiles).toEqual(['observability']);
    expect(Object.keys(gateway.depends_on ?? {})).not.toContain('redis');
    for (const [name, svc] of Object.entries(composeServices)) {
      if (name !== 'gateway' && !appServices.some(([n]) => n === name)) expect(svc.healthcheck?.test, `${name} healthcheck`).toBeDefined();
    }
    // Prometheus loads the files this repo has, at the paths prometheus.yml names.
    const volumes: string[] = composeServices.prometheus.volumes;
    expect(volumes).toContain('./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro');
    expect(volumes).toContain('./prometheus/rules.yml:/etc/prometheus/rules.yml:ro');
  });

  it('healthchecks really work against a running gateway (Dockerfile /livez, compose /readyz)', async () => {
    const loaded = loadConfig({
      GATEWAY_HOST: '127.0.0.1',
      GATEWAY_PORT: '0',
      LOG_LEVEL: 'silent',
      // Nothing listens on the discard port: probes fail fast, readiness still comes.
      ...Object.fromEntries(Object.values(SERVICE_URL_ENV).map((k) => [k, 'http://127.0.0.1:9'])),
    });
    if (!loaded.ok) throw new Error(loaded.problems.join('\n'));
    const gw = await buildGateway(loaded.config, { processMetrics: false });
    const dockerHealth = execForm(runtime.find((i) => i.op === 'HEALTHCHECK')!.args);
    const composeHealth = (gateway.healthcheck.test as string[]).slice(1);
    let port = 0;
    try {
      port = Number(new URL(await gw.listen()).port);
      for (let i = 0; i < 100 && !gw.prober.firstRoundDone; i++) await new Promise((r) => setTimeout(r, 50));
      expect(await runNodeCommand(dockerHealth, { GATEWAY_PORT: String(port) })).toBe(0);
      expect(composeHealth.join(' ')).toContain(`:${CONTAINER_PORT}/readyz`);
      const composeArgv = composeHealth.map((a) => a.replace(`:${CONTAINER_PORT}/`, `:${port}/`));
      expect(await runNodeCommand(composeArgv)).toBe(0);
    } finally {
      await gw.close();
    }
    // And they fail when nothing answers.
    expect(await runNodeCommand(dockerHealth, { GATEWAY_PORT: String(port) })).toBe(1);
  });

  it('the stand-in healthcheck works against a running stand-in', async () => {
    const { port: composePort } = standInPort(composeServices.twin);
    const standIn = await startStandIn({ name: 'twin', port: 0, host: '127.0.0.1' });
    try {
      const argv = (composeServices.twin.healthcheck.test as string[]).slice(1).map((a) => a.replace(`:${composePort}/`, `:${standIn.port}/`));
      expect(await runNodeCommand(argv)).toBe(0);
      standIn.behaviour.healthStatus = 503;
      expect(await runNodeCommand(argv)).toBe(1);
    } finally {
      await standIn.close();
    }
  });
});

// ---------------------------------------------------------------------------------------
// Prometheus and Grafana: metric names
// ---------------------------------------------------------------------------------------

const rules: Json = yamlDoc(join(DOCKER, 'prometheus', 'rules.yml'));
const ruleList: Json[] = rules.groups.flatMap((g: Json) => g.rules);
const recordedNames = new Set<string>(ruleList.filter((r) => r.record).map((r) => r.record));
const dashboardFile = join(DOCKER, 'grafana', 'dashboards', 'unified-gateway.json');
const dashboard: Json = JSON.parse(read(dashboardFile));
const dashboardPanels: Json[] = dashboard.panels.flatMap((p: Json) => [p, ...(p.panels ?? [])]);
const dashboardExprs: string[] = dashboardPanels.flatMap((p) => (p.targets ?? []).map((t: Json) => t.expr as string));

const PROMQL_KEYWORDS = new Set(['and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'offset', 'inf', 'nan']);

/** Metric names a PromQL expression selects (functions, keywords, labels, strings and ranges left out). */
function promqlMetricNames(expr: string): string[] {
  const s = expr
    .replace(/#[^\n]*/g, ' ')
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\$\{?\w+\}?/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names: string[] = [];
  const token = /\d+(?:\.\d+)?(?:e[+-]?\d+)?[a-z]*|[A-Za-z_:][\w:]*/gi;
  for (let m = token.exec(s); m !== null; m = token.exec(s)) {
    const word = m[0];
    if (/^\d/.test(word) || PROMQL_KEYWORDS.has(word.toLowerCase())) continue;
    if (/^\s*\(/.test(s.slice(m.index + word.length))) continue; // a function or aggregation
    names.push(word);
  }
  return names;
}

async function knownMetricNames(): Promise<Set<string>> {
  const metrics = createMetrics({ durationBuckets: [0.1, 1], defaultMetrics: true });
  const known = new Set<string>(['up']); // Prometheus' own per-target series
  for (const m of await metrics.registry.getMetricsAsJSON()) {
    known.add(m.name);
    if (String(m.type) === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) known.add(`${m.name}${suffix}`);
  }
  return known;
}

describe('metric names in rules.yml and the Grafana dashboard', () => {
  it('the PromQL name extraction finds metrics and nothing else', () => {
    expect(
      promqlMetricNames(
        'sum by (endpoint, le) (rate(gateway_request_duration_seconds_bucket{job="$job", status=~"5.."}[$__rate_interval])) / on (endpoint) group_left up > 0.5 and absent(x:y:z offset 5m)',
      ),
    ).toEqual(['gateway_request_duration_seconds_bucket', 'up', 'x:y:z']);
  });

  it('every metric a rule uses exists in the gateway registry or is recorded by a rule', async () => {
    const known = await knownMetricNames();
    expect(known.has('gateway_requests_total') && known.has('process_resident_memory_bytes')).toBe(true);
    const unknown = ruleList.flatMap((r) => promqlMetricNames(r.expr).filter((n) => !known.has(n) && !recordedNames.has(n)).map((n) => `${r.record ?? r.alert}: ${n}`));
    expect(unknown).toEqual([]);
  });

  it('rules.yml covers the alerts operators need', () => {
    const recorded = new Map<string, string>(ruleList.filter((r) => r.record).map((r) => [r.record, r.expr]));
    // The raw metrics behind an expression, through any recording rules it uses.
    const baseMetrics = (expr: string, seen = new Set<string>()): string[] =>
      promqlMetricNames(expr).flatMap((n) => {
        const inner = recorded.get(n);
        if (inner === undefined || seen.has(n)) return [n];
        seen.add(n);
        return baseMetrics(inner, seen);
      });
    const alerts = ruleList.filter((r) => r.alert);
    const used = new Set(alerts.flatMap((a) => baseMetrics(a.expr)));
    for (const metric of ['gateway_requests_total', 'gateway_request_duration_seconds_bucket', 'gateway_service_requests', 'gateway_service_up', 'gateway_circuit_breaker_state', 'up']) {
      expect(used.has(metric), metric).toBe(true);
    }
    for (const a of alerts) {
      expect(a.labels?.severity, a.alert).toMatch(/^(critical|warning|info)$/);
      expect(a.annotations?.summary, a.alert).toBeDefined();
    }
  });

  it('every metric the dashboard queries exists in the gateway registry', async () => {
    const known = await knownMetricNames();
    expect(dashboardExprs.length).toBeGreaterThan(10);
    const unknown = dashboardExprs.flatMap((e) => promqlMetricNames(e).filter((n) => !known.has(n)));
    const variableMetrics = (dashboard.templating.list as Json[])
      .map((v) => /label_values\(\s*([A-Za-z_:][\w:]*)/.exec(typeof v.query === 'string' ? v.query : (v.query?.query ?? ''))?.[1])
      .filter((n): n is string => n !== undefined);
    expect(variableMetrics.length).toBeGreaterThan(0);
    expect([...unknown, ...variableMetrics.filter((n) => !known.has(n))]).toEqual([]);
    // It shows what the brief asks for.
    const used = new Set(dashboardExprs.flatMap(promqlMetricNames));
    for (const metric of ['gateway_requests_total', 'gateway_request_duration_seconds_bucket', 'gateway_service_requests', 'gateway_service_up', 'gateway_health_check_duration_seconds_bucket', 'gateway_circuit_breaker_state', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_p99_seconds']) {
      expect(used.has(metric), metric).toBe(true);
    }
  });

  it('the dashboard is well formed and provisioned where compose mounts it', () => {
    expect(dashboard.uid).toMatch(/^[a-zA-Z0-9_-]{1,40}$/);
    const ids = dashboardPanels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of dashboardPanels) {
      expect(p.gridPos.x + p.gridPos.w, `panel ${p.title}`).toBeLessThanOrEqual(24);
      if (p.type !== 'row') {
        expect(p.targets?.length, `panel ${p.title}`).toBeGreaterThan(0);
        expect(p.datasource, `panel ${p.title}`).toEqual({ type: 'prometheus', uid: '${datasource}' });
      }
    }
    const provider: Json = yamlDoc(join(DOCKER, 'grafana', 'provisioning', 'dashboards', 'unified-gateway.yml'));
    const providerPath: string = provider.providers[0].options.path;
    const grafanaVolumes: string[] = composeServices.grafana.volumes;
    expect(grafanaVolumes).toContain(`./grafana/dashboards:${providerPath}:ro`);
    expect(grafanaVolumes).toContain('./grafana/provisioning:/etc/grafana/provisioning:ro');
    const home: string = composeServices.grafana.environment.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH;
    expect(home).toBe(`${providerPath}/unified-gateway.json`);
    const datasource: Json = yamlDoc(join(DOCKER, 'grafana', 'provisioning', 'datasources', 'prometheus.yml'));
    expect(new URL(datasource.datasources[0].url).host).toBe(`prometheus:${composeServices.prometheus.ports[0].split(':').at(-1)}`);
  });

  it('prometheus.yml scrapes the gateway under the job name the rules expect', () => {
    const prom: Json = yamlDoc(join(DOCKER, 'prometheus', 'prometheus.yml'));
    const job = prom.scrape_configs.find((j: Json) => j.job_name === 'unified-gateway');
    expect(job.static_configs[0].targets).toContain(`gateway:${CONTAINER_PORT}`);
    expect(prom.rule_files).toEqual(['rules.yml']);
    expect(ruleList.filter((r) => r.alert && /\bup\b/.test(r.expr)).every((r) => r.expr.includes('job="unified-gateway"'))).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------
// promtool (Debian package `prometheus`), when installed
// ---------------------------------------------------------------------------------------

describe('promtool', () => {
  const available = which('promtool');
  const skipUnlessPromtool = (ctx: { skip: (note?: string) => never }) => {
    if (!available) {
      const why = 'promtool not found on PATH (apt-get install prometheus provides it)';
      console.warn(`promtool checks skipped: ${why}`);
      return ctx.skip(why);
    }
  };

  it('check config: prometheus.yml and the rules it loads', (ctx) => {
    skipUnlessPromtool(ctx);
    const r = run('promtool', ['check', 'config', join(DOCKER, 'prometheus', 'prometheus.yml')]);
    expect(r.status, r.output).toBe(0);
  });

  it('test rules: the alerts fire on the series the gateway exposes (rules.test.yml)', (ctx) => {
    skipUnlessPromtool(ctx);
    const r = run('promtool', ['test', 'rules', join(DOCKER, 'prometheus', 'rules.test.yml')]);
    expect(r.status, r.output).toBe(0);
  });

  it('check rules: every dashboard query is valid PromQL', (ctx) => {
    skipUnlessPromtool(ctx);
    const dir = mkdtempSync(join(tmpdir(), 'gw-dashboard-promql-'));
    const file = join(dir, 'dashboard.rules.yml');
    const exprs = dashboardExprs.map((e) =>
      e.replace(/\$__(rate_interval|interval|range)/g, '5m').replace(/\$\{?(\w+)\}?/g, (_m, name: string) => (name === 'instance' ? '.*' : `${name}-value`)),
    );
    const doc = { groups: [{ name: 'dashboard', rules: exprs.map((expr, i) => ({ record: `dashboard:expr_${i}`, expr })) }] };
    writeFileSync(file, JSON.stringify(doc, null, 2));
    const r = run('promtool', ['check', 'rules', file]);
    expect(r.status, r.output).toBe(0);
  });
});
