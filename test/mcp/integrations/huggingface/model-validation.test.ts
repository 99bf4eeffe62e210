import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, InMemoryTransport } from '@modelcontextprotocol/client';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { McpClientPool } from '../../../../mcp/clients/pool.js';
import { createGatewayMcpServer } from '../../../../mcp/server/gateway-server.js';
import { ModelValidationService, validateRoutingModelOutput } from '../../../../mcp/integrations/huggingface/model-validation.js';
import { MetricsService } from '../../../../src/admin/metrics-service.js';
import { RoutesService } from '../../../../src/admin/routes-service.js';
import type { Principal } from '../../../../src/auth/principal.js';
import { loadConfig, redactConfig } from '../../../../src/config/index.js';
import { createMetrics } from '../../../../src/metrics/registry.js';
import { entryPath, loadModelFile, packageModelsDir, readPointer } from '../../../../src/routing/model/files.js';
import { buildRouteTable } from '../../../../src/routing/route-table.js';
import { startHfMcpServer, type HfMcpServer } from '../../../helpers/hf-mcp-server.js';
import { startHfServer, type HfServer } from '../../../helpers/hf-server.js';

/*
 * validate_routing_model: the admin service with the gateway's client pool reaching a local
 * server that speaks the HuggingFace MCP server's tool contract and the Inference API
 * stand-in; and the MCP tool over it (admin only), in-process.
 */

const ADMIN: Principal = { kind: 'api-key', subject: 'key:ops', keyName: 'ops', scopes: ['admin'], mfa: false };
const READER: Principal = { kind: 'api-key', subject: 'key:reader', keyName: 'reader', scopes: ['read'], mfa: false };
const silent = { info: () => {}, warn: () => {}, debug: () => {} };
const dir = packageModelsDir();
const model = loadModelFile(entryPath(dir, readPointer(dir)!));
const dataFile = join(dir, 'data', 'validation.jsonl');

let hfMcp: HfMcpServer;
let hf: HfServer;
let pool: McpClientPool;
beforeAll(async () => {
  hfMcp = await startHfMcpServer();
  hf = await startHfServer();
  const file = join(mkdtempSync(join(tmpdir(), 'model-validation-')), 'gateway.yaml');
  writeFileSync(file, `mcp:\n  servers:\n    huggingface: { preset: huggingface, enabled: true, url: "${hfMcp.url}", headers: {}, timeoutMs: 5000 }\n`);
  const r = loadConfig({ PATH: process.env.PATH ?? '' }, { file });
  if (!r.ok) throw new Error(r.problems.join('\n'));
  pool = new McpClientPool(r.config.mcp, { log: silent });
  pool.start();
  await pool.settled('huggingface');
});
afterAll(async () => {
  await pool.close();
  await hfMcp.close();
  await hf.close();
});

const service = (options: { mcp?: boolean; endpoint?: boolean } = {}) =>
  new ModelValidationService({
    model: () => model,
    dataFile,
    ...(options.mcp !== false ? { mcp: pool } : {}),
    hfServer: 'huggingface',
    zeroShot: { model: 'facebook/bart-large-mnli', timeoutMs: 5000, ...(options.endpoint !== false ? { token: 'hf_test', endpointUrl: hf.url } : {}) },
  });

describe('ModelValidationService', () => {
  it('local figures, the reference described through the HuggingFace MCP server, and the zero-shot comparison', async () => {
    hf.mode = 'ok';
    const out = await service().validate({ limit: 15 });
    expect(validateRoutingModelOutput.parse(out)).toEqual(out);
    expect(out.model).toBe(model.id);
    expect(out.local).toEqual({ accuracy: model.file.evaluation!.accuracy, macroF1: model.file.evaluation!.macroF1, examples: 460 });
    expect(out.referenceModel).toMatchObject({ id: 'facebook/bart-large-mnli', license: 'mit', downloads: 3_400_000, revision: 'main@21 Dec, 2023', server: 'huggingface' });
    expect(out.referenceError).toBeNull();
    expect(out.zeroShot).toMatchObject({ model: 'facebook/bart-large-mnli', examples: 15 });
    expect(out.zeroShotError).toBeNull();
  });

  it('each outside part says why it could not run; the local figures still come back', async () => {
    const out = await service({ mcp: false, endpoint: false }).validate({ limit: 5 });
    expect(out.local.examples).toBe(460);
    expect(out.referenceModel).toBeNull();
    expect(out.referenceError).toMatchObject({ kind: 'config' });
    expect(out.referenceError!.message).toMatch(/mcp\.servers\.huggingface/);
    expect(out.zeroShot).toBeNull();
    expect(out.zeroShotError).toMatchObject({ kind: 'config' });
    expect(out.zeroShotError!.message).toMatch(/HF_TOKEN/);
  });
});

async function connect(principal: Principal, method: string): Promise<Client> {
  const result = loadConfig({});
  if (!result.ok) throw new Error(result.problems.join('\n'));
  const metrics = createMetrics({ durationBuckets: [0.01, 0.1, 1], defaultMetrics: false });
  const server = createGatewayMcpServer(
    {
      routes: new RoutesService(result.config, buildRouteTable(result.config), { snapshot: () => ({ status: 'ok', checkedAt: '2026-12-06T00:00:00.000Z', services: {} }) } as never),
      metrics: new MetricsService(metrics.registry),
      requireMfaForAdmin: false,
      redactedConfig: () => redactConfig(result.config),
      version: '0.1.0',
      modelValidation: service(),
    },
    { principal, era: 'legacy', method },
  );
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  const client = new Client({ name: 'test-agent', version: '1.0.0' });
  await Promise.all([server.connect(serverSide), client.connect(clientSide)]);
  clients.push(client);
  return client;
}
const clients: Client[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

describe('MCP tool validate_routing_model', () => {
  it('is listed to admins only, and answers an admin with the structured report', async () => {
    expect((await (await connect(READER, 'tools/list')).listTools()).tools.map((t) => t.name)).not.toContain('validate_routing_model');
    const tools = (await (await connect(ADMIN, 'tools/list')).listTools()).tools;
    const t = tools.find((x) => x.name === 'validate_routing_model');
    expect(t?.annotations).toMatchObject({ readOnlyHint: true, openWorldHint: true });
    // Its schemas are valid JSON Schema 2020-12 for a strict validator, and the answer below validates against the output schema.
    const ajv = new Ajv2020({ strict: true, strictRequired: false, allowUnionTypes: true });
    addFormats.default(ajv);
    expect(() => ajv.compile(t!.inputSchema)).not.toThrow();
    const checkOutput = ajv.compile(t!.outputSchema!);
    hf.mode = 'ok';
    const res = await (await connect(ADMIN, 'tools/call')).callTool({ name: 'validate_routing_model', arguments: { limit: 5 } });
    expect(res.isError).toBeFalsy();
    expect(res.structuredContent).toMatchObject({ model: model.id, referenceModel: { id: 'facebook/bart-large-mnli', license: 'mit' }, zeroShot: { examples: 5 } });
    expect(checkOutput(res.structuredContent), JSON.stringify(checkOutput.errors)).toBe(true);
  });

  it('a reader calling it gets the admin refusal as a tool error', async () => {
    const res = await (await connect(READER, 'tools/call')).callTool({ name: 'validate_routing_model', arguments: {} });
    expect(res.isError).toBe(true);
    expect(JSON.stringify(res.content)).toMatch(/GW_AUTH_INSUFFICIENT_SCOPE/);
  });
});
