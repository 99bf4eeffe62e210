import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { McpClientPool } from '../../../../mcp/clients/pool.js';
import { UpstreamUnavailableError, type UpstreamToolCaller } from '../../../../mcp/clients/types.js';
import { describeReferenceModel, parseHubNumber, parseModelDetails, searchHits, ValidatorError } from '../../../../mcp/integrations/huggingface/index.js';
import { loadConfig } from '../../../../src/config/index.js';
import { startHfMcpServer } from '../../../helpers/hf-mcp-server.js';

/*
 * The reference model through the HuggingFace MCP server's tool contract: a local server with
 * its tool names, input schemas and answer format (test/helpers/hf-mcp-server.ts), reached
 * through the gateway's real client pool (mcp.servers.huggingface).
 */

const silent = { info: () => {}, warn: () => {}, debug: () => {} };
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function poolFor(url: string): Promise<McpClientPool> {
  const file = join(mkdtempSync(join(tmpdir(), 'hf-ref-')), 'gateway.yaml');
  writeFileSync(file, `mcp:\n  servers:\n    huggingface: { preset: huggingface, enabled: true, url: "${url}", headers: {}, timeoutMs: 5000 }\n`);
  const r = loadConfig({ PATH: process.env.PATH ?? '' }, { file });
  if (!r.ok) throw new Error(r.problems.join('\n'));
  const pool = new McpClientPool(r.config.mcp, { log: silent });
  cleanups.push(() => pool.close());
  pool.start();
  await pool.settled('huggingface');
  return pool;
}

describe('describeReferenceModel over the HuggingFace MCP server contract', () => {
  it('finds the zero-shot model with hub_repo_search and describes it with hub_repo_details (id, revision, license, downloads)', async () => {
    const hf = await startHfMcpServer();
    cleanups.push(() => hf.close());
    const pool = await poolFor(hf.url);
    expect(pool.isReady('huggingface')).toBe(true);
    const ref = await describeReferenceModel(pool, { server: 'huggingface', modelId: 'facebook/bart-large-mnli' });
    expect(ref).toMatchObject({
      id: 'facebook/bart-large-mnli',
      revision: 'main@21 Dec, 2023',
      license: 'mit',
      downloads: 3_400_000, // the server rounds: "3.4M"
      task: 'zero-shot-classification',
      foundBySearch: true,
      tools: ['hub_repo_search', 'hub_repo_details'],
      server: 'huggingface',
    });
    expect(hf.calls).toEqual(['hub_repo_search', 'hub_repo_details']);
  });

  it('another model: other figures, and not found by the zero-shot search when it is not a zero-shot model', async () => {
    const hf = await startHfMcpServer();
    cleanups.push(() => hf.close());
    const pool = await poolFor(hf.url);
    const deberta = await describeReferenceModel(pool, { server: 'huggingface', modelId: 'typeform/distilbert-base-uncased-mnli' });
    expect(deberta).toMatchObject({ license: 'apache-2.0', downloads: 41_200, foundBySearch: true });
    const gpt2 = await describeReferenceModel(pool, { server: 'huggingface', modelId: 'openai-community/gpt2' });
    expect(gpt2).toMatchObject({ task: 'text-generation', foundBySearch: false });
  });

  it('falls back to model_search on servers of older releases', async () => {
    const hf = await startHfMcpServer({ search: 'model_search' });
    cleanups.push(() => hf.close());
    const pool = await poolFor(hf.url);
    const ref = await describeReferenceModel(pool, { server: 'huggingface', modelId: 'facebook/bart-large-mnli' });
    expect(ref.tools).toEqual(['model_search', 'hub_repo_details']);
    expect(ref.foundBySearch).toBe(true);
  });

  it('a model the Hub does not have: a clear api failure (exit 7), not a crash', async () => {
    const hf = await startHfMcpServer();
    cleanups.push(() => hf.close());
    const pool = await poolFor(hf.url);
    const err = await describeReferenceModel(pool, { server: 'huggingface', modelId: 'nobody/nothing' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidatorError);
    expect((err as ValidatorError).exitCode).toBe(7);
    expect((err as Error).message).toMatch(/hub_repo_details failed for nobody\/nothing/);
  });

  it('offline (server not connected): ValidatorError network, exit code 3, with a clear message', async () => {
    const hf = await startHfMcpServer();
    const url = hf.url;
    await hf.close(); // nothing listens there any more
    const pool = await poolFor(url);
    expect(pool.isReady('huggingface')).toBe(false);
    const err = await describeReferenceModel(pool, { server: 'huggingface', modelId: 'facebook/bart-large-mnli' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidatorError);
    expect((err as ValidatorError).exitCode).toBe(3);
    expect((err as Error).message).toMatch(/HuggingFace MCP server \(mcp\.servers\.huggingface\) is not connected/);
  });

  it('a server that goes away between the readiness check and the call: still network, exit 3', async () => {
    const caller: UpstreamToolCaller = {
      isReady: () => true,
      callTool: (server) => Promise.reject(new UpstreamUnavailableError(server, 'breaker open')),
    };
    const err = await describeReferenceModel(caller, { server: 'huggingface', modelId: 'facebook/bart-large-mnli' }).catch((e: unknown) => e);
    expect((err as ValidatorError).exitCode).toBe(3);
    expect((err as Error).message).toMatch(/breaker open/);
  });

  it('answers not in the contract format are refused with an output error, never cast', async () => {
    const caller: UpstreamToolCaller = {
      isReady: () => true,
      callTool: (_s, tool) => Promise.resolve({ content: [{ type: 'text', text: tool === 'hub_repo_details' ? '# someone/else\n- **License:** mit' : 'No repositories found for the given criteria.' }] }),
    };
    const err = await describeReferenceModel(caller, { server: 'huggingface', modelId: 'facebook/bart-large-mnli' }).catch((e: unknown) => e);
    expect((err as ValidatorError).kind).toBe('output');
  });
});

describe('reading the server\'s markdown', () => {
  it('numbers as its formatNumber writes them', () => {
    expect(parseHubNumber('3.4M')).toBe(3_400_000);
    expect(parseHubNumber('12.5K')).toBe(12_500);
    expect(parseHubNumber('523')).toBe(523);
    expect(parseHubNumber('lots')).toBeNull();
  });

  it('search headings and detail fields; a commit sha when the answer has one', () => {
    expect(searchHits('## Models (2)\n\n### a/b\n\n**Downloads:** 1\n\n### c/d\n')).toEqual(['a/b', 'c/d']);
    const sha = 'd7645e127eaf1aefc7862fd59a17a5aa8558b8ce';
    const d = parseModelDetails(`# a/b\n\n## Overview\n- **Task:** zero-shot-classification\n- **Downloads:** 2.0K | **Likes:** 3\n- **Revision:** ${sha}\n## Metadata\n- **License:** apache-2.0\n`, 'a/b');
    expect(d).toMatchObject({ revision: sha, downloads: 2000, likes: 3, license: 'apache-2.0', task: 'zero-shot-classification' });
  });
});
