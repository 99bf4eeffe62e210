import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { testServer } from './upstreams.js';

/*
 * A local GitHub REST API for the migration tracker tests: every request is matched to an
 * operation of GitHub's published OpenAPI description (@octokit/openapi, api.github.com) and
 * its path, query and JSON body are validated against it (ajv); an unknown operation or an
 * invalid request is answered 422 and recorded in `violations`. Answers start from the
 * description's own example of the operation, carry this server's state (issues, comments,
 * labels, refs, files, pull requests), and are validated against the response schema too, so
 * the client sees schema-valid bodies.
 */

type Json = any;
const require = createRequire(import.meta.url);
let spec: Json | undefined;
function loadSpec(): Json {
  spec ??= JSON.parse(readFileSync(require.resolve('@octokit/openapi/generated/api.github.com.json'), 'utf8'));
  return spec;
}

interface Operation {
  readonly method: string;
  readonly template: string;
  readonly regex: RegExp;
  readonly names: string[];
  readonly op: Json;
}

let operations: Operation[] | undefined;
function allOperations(): Operation[] {
  if (operations !== undefined) return operations;
  const s = loadSpec();
  operations = [];
  for (const [template, item] of Object.entries<Json>(s.paths)) {
    const names: string[] = [];
    const regex = new RegExp(`^${template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{([^}]+)\}/g, (_m, n: string) => (names.push(n), n === 'ref' || n === 'path' ? '(.+)' : '([^/]+)'))}$`);
    for (const method of ['get', 'post', 'patch', 'put', 'delete']) if (item[method] !== undefined) operations.push({ method: method.toUpperCase(), template, regex, names, op: item[method] });
  }
  // Literal segments before templated ones (/git/refs before /git/{x}).
  operations.sort((a, b) => a.names.length - b.names.length);
  return operations;
}

/** OpenAPI 3.0 `nullable` as JSON Schema (ajv accepts it only beside `type`). */
function jsonSchemaOf(node: Json): Json {
  if (Array.isArray(node)) return node.map(jsonSchemaOf);
  if (node === null || typeof node !== 'object') return node;
  const out: Json = {};
  for (const [k, v] of Object.entries(node)) if (k !== 'nullable' && k !== 'example' && k !== 'examples') out[k] = jsonSchemaOf(v);
  if (node.nullable !== true) return out;
  if (typeof out.type === 'string' && out.enum === undefined) return { ...out, type: [out.type, 'null'] };
  return { anyOf: [out, { type: 'null' }] };
}

let ajv: Ajv | undefined;
const compiled = new Map<string, ValidateFunction>();
function validator(schema: Json): ValidateFunction {
  if (ajv === undefined) {
    ajv = new Ajv({ strict: false, allErrors: false, validateFormats: true });
    addFormats.default(ajv);
    ajv.addSchema({ $id: 'gh', components: { schemas: jsonSchemaOf(loadSpec().components.schemas) } });
  }
  const text = JSON.stringify(jsonSchemaOf(schema)).replaceAll('"#/components/', '"gh#/components/');
  let v = compiled.get(text);
  if (v === undefined) {
    v = ajv.compile(JSON.parse(text));
    compiled.set(text, v);
  }
  return v;
}

function deref(node: Json): Json {
  if (node?.$ref === undefined) return node;
  const path = (node.$ref as string).replace(/^#\//, '').split('/');
  return path.reduce((n: Json, k) => n[k.replaceAll('~1', '/').replaceAll('~0', '~')], loadSpec());
}

export interface GithubApi {
  readonly url: string;
  /** Requests that did not match the description (should stay empty). */
  readonly violations: string[];
  /** Every request as `METHOD /path`. */
  readonly requests: string[];
  readonly issues: Map<number, { title: string; body: string; labels: string[]; comments: string[] }>;
  readonly pulls: Map<number, { title: string; body: string; head: string; base: string }>;
  readonly files: Map<string, string>;
  /** Answer the next `n` requests with this status (e.g. 502 to exercise retries). */
  failNext(n: number, status?: number): void;
  close(): Promise<void>;
}

export async function githubApi(): Promise<GithubApi> {
  const ops = allOperations();
  const violations: string[] = [];
  const requests: string[] = [];
  const issues = new Map<number, { title: string; body: string; labels: string[]; comments: string[] }>();
  const pulls = new Map<number, { title: string; body: string; head: string; base: string }>();
  const files = new Map<string, string>();
  const refs = new Map<string, string>([['heads/main', 'aa218f56b14c9653891f9e74264a383fa43fefbd']]);
  let next = 1;
  let failures: { n: number; status: number } = { n: 0, status: 502 };

  const answer = (res: ServerResponse, op: Operation | undefined, status: number, patch: (example: Json) => Json) => {
    const content = op?.op.responses?.[String(status)]?.content?.['application/json'];
    let body: Json = {};
    if (content !== undefined) {
      const example = deref(Object.values<Json>(content.examples ?? {})[0] ?? {})?.value ?? content.example ?? {};
      body = patch(structuredClone(example));
      const v = validator(content.schema);
      if (!v(body)) violations.push(`answer of ${op!.method} ${op!.template} ${status}: ${ajv!.errorsText(v.errors)}`);
    }
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'x-github-request-id': 'local' });
    res.end(JSON.stringify(body));
  };
  const fail = (res: ServerResponse, status: number, message: string) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ message, documentation_url: 'https://docs.github.com/rest' }));
  };

  const handle = (req: IncomingMessage, res: ServerResponse, raw: string) => {
    const url = new URL(req.url ?? '/', 'http://local');
    const method = req.method ?? 'GET';
    requests.push(`${method} ${url.pathname}`);
    if (failures.n > 0) {
      failures.n -= 1;
      return fail(res, failures.status, 'injected failure');
    }
    const op = ops.find((o) => o.method === method && o.regex.test(url.pathname));
    if (op === undefined) {
      violations.push(`no operation for ${method} ${url.pathname}`);
      return fail(res, 404, 'Not Found');
    }
    const params = Object.fromEntries(op.names.map((n, i) => [n, decodeURIComponent(op.regex.exec(url.pathname)![i + 1]!)]));
    // Query parameters: declared by the operation, values of the declared type.
    const declared = new Map<string, Json>((op.op.parameters ?? []).map(deref).filter((p: Json) => p.in === 'query').map((p: Json) => [p.name, p.schema]));
    for (const [name, value] of url.searchParams) {
      const schema = declared.get(name);
      if (schema === undefined) violations.push(`${method} ${op.template}: undeclared query parameter ${name}`);
      else if (!validator(schema)(schema.type === 'integer' || schema.type === 'number' ? Number(value) : schema.type === 'boolean' ? value === 'true' : value)) {
        violations.push(`${method} ${op.template}: query ${name}=${value} is invalid`);
      }
    }
    let body: Json;
    const schema = op.op.requestBody?.content?.['application/json']?.schema;
    if (schema !== undefined) {
      try {
        body = raw === '' ? undefined : JSON.parse(raw);
      } catch {
        violations.push(`${method} ${op.template}: body is not JSON`);
        return fail(res, 400, 'Problems parsing JSON');
      }
      const v = validator(schema);
      if (!v(body)) {
        violations.push(`${method} ${op.template}: ${ajv!.errorsText(v.errors)}`);
        return fail(res, 422, 'Validation Failed');
      }
    }
    const repoUrl = `https://github.com/${params.owner}/${params.repo}`;
    const issueOf = (n: number, i: { title: string; body: string; labels: string[] }) => (e: Json) => ({
      ...e,
      number: n,
      id: n,
      title: i.title,
      body: i.body,
      html_url: `${repoUrl}/issues/${n}`,
      labels: i.labels.map((name, k) => ({ id: k + 1, node_id: `L${k}`, url: `${repoUrl}/labels/${name}`, name, description: null, color: 'ededed', default: false })),
      pull_request: undefined,
    });
    switch (`${method} ${op.template}`) {
      case 'GET /repos/{owner}/{repo}/issues': {
        const wanted = url.searchParams.get('labels')?.split(',') ?? [];
        const list = [...issues].filter(([, i]) => wanted.every((l) => i.labels.includes(l)));
        return answer(res, op, 200, (e) => list.map(([n, i]) => issueOf(n, i)(e[0])));
      }
      case 'POST /repos/{owner}/{repo}/issues': {
        const n = next++;
        const issue = { title: body.title, body: body.body ?? '', labels: (body.labels ?? []).map((l: Json) => (typeof l === 'string' ? l : l.name)), comments: [] };
        issues.set(n, issue);
        return answer(res, op, 201, issueOf(n, issue));
      }
      case 'PATCH /repos/{owner}/{repo}/issues/{issue_number}': {
        const issue = issues.get(Number(params.issue_number));
        if (issue === undefined) return fail(res, 404, 'Not Found');
        if (body.body !== undefined) issue.body = body.body;
        if (body.labels !== undefined) issue.labels = body.labels.map((l: Json) => (typeof l === 'string' ? l : l.name));
        return answer(res, op, 200, issueOf(Number(params.issue_number), issue));
      }
      case 'POST /repos/{owner}/{repo}/issues/{issue_number}/comments': {
        const issue = issues.get(Number(params.issue_number));
        if (issue === undefined) return fail(res, 404, 'Not Found');
        issue.comments.push(body.body);
        return answer(res, op, 201, (e) => ({ ...e, body: body.body, html_url: `${repoUrl}/issues/${params.issue_number}#issuecomment-${issue.comments.length}` }));
      }
      case 'POST /repos/{owner}/{repo}/issues/{issue_number}/labels': {
        const issue = issues.get(Number(params.issue_number));
        if (issue === undefined) return fail(res, 404, 'Not Found');
        const added: string[] = Array.isArray(body) ? body : (body.labels ?? []);
        issue.labels = [...new Set([...issue.labels, ...added.map((l: Json) => (typeof l === 'string' ? l : l.name))])];
        return answer(res, op, 200, (e) => issue.labels.map((name, k) => ({ ...e[0], id: k + 1, name })));
      }
      case 'GET /repos/{owner}/{repo}/git/ref/{ref}': {
        const sha = refs.get(params.ref!);
        if (sha === undefined) return fail(res, 404, 'Not Found');
        return answer(res, op, 200, (e) => ({ ...e, ref: `refs/${params.ref}`, object: { ...e.object, sha } }));
      }
      case 'POST /repos/{owner}/{repo}/git/refs': {
        const ref = String(body.ref).replace(/^refs\//, '');
        if (refs.has(ref)) return fail(res, 422, 'Reference already exists');
        refs.set(ref, body.sha);
        return answer(res, op, 201, (e) => ({ ...e, ref: body.ref, object: { ...e.object, sha: body.sha } }));
      }
      case 'GET /repos/{owner}/{repo}/contents/{path}': {
        const key = `${url.searchParams.get('ref')}:${params.path}`;
        if (!files.has(key)) return fail(res, 404, 'Not Found');
        return answer(res, op, 200, (e) => ({ ...e, path: params.path, sha: 'bbcd538c8e72b8c175046e27cc8f907076331401' }));
      }
      case 'PUT /repos/{owner}/{repo}/contents/{path}': {
        files.set(`${body.branch}:${params.path}`, Buffer.from(body.content, 'base64').toString('utf8'));
        return answer(res, op, files.size > 0 ? 201 : 200, (e) => e);
      }
      case 'GET /repos/{owner}/{repo}/pulls': {
        const head = url.searchParams.get('head')?.split(':')[1];
        const list = [...pulls].filter(([, p]) => head === undefined || p.head === head);
        return answer(res, op, 200, (e) => list.map(([n, p]) => ({ ...e[0], requested_teams: [], number: n, title: p.title, body: p.body, html_url: `${repoUrl}/pull/${n}` })));
      }
      case 'POST /repos/{owner}/{repo}/pulls': {
        if (!refs.has(`heads/${body.head}`)) return fail(res, 422, 'Validation Failed: head does not exist');
        const n = next++;
        pulls.set(n, { title: body.title, body: body.body ?? '', head: body.head, base: body.base });
        return answer(res, op, 201, (e) => ({ ...e, requested_teams: [], number: n, title: body.title, body: body.body, html_url: `${repoUrl}/pull/${n}` }));
      }
      default:
        violations.push(`not served by the local GitHub API: ${method} ${op.template}`);
        return fail(res, 501, 'not served here');
    }
  };

  const server = await testServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        handle(req, res, Buffer.concat(chunks).toString('utf8'));
      } catch (err) {
        violations.push(`server error: ${(err as Error).message}`);
        fail(res, 500, 'local server error');
      }
    });
  });
  return {
    url: server.url,
    violations,
    requests,
    issues,
    pulls,
    files,
    failNext(n, status = 502) {
      failures = { n, status };
    },
    close: () => server.close(),
  };
}
