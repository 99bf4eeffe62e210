import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { z } from 'zod';
import type { RoutingInput } from './features.js';

/*
 * Labelled examples (routing-models/data/*.jsonl), one JSON object per line:
 *   {"request": {"method": "POST", "path": "/v1/query", "body": {"query": "..."}}, "service": "knowledge"}
 *   {"request": {"method": "POST", "path": "/v1/upload", "file": {"name": "...", "type": "..."}}, "service": "knowledge"}
 * Blank lines and lines starting with "//" are skipped.
 */

export const exampleSchema = z.strictObject({
  request: z.strictObject({
    method: z.string().regex(/^[A-Z]+$/).default('POST'),
    path: z.string().startsWith('/'),
    headers: z.record(z.string().regex(/^[a-z0-9-]+$/, 'lowercase header names'), z.string()).optional(),
    contentType: z.string().min(1).optional(),
    body: z.unknown().optional(),
    file: z.strictObject({ name: z.string().optional(), type: z.string().optional() }).optional(),
  }),
  service: z.string().regex(/^[a-z][a-z0-9-]{0,62}$/),
  /** Why the example is labelled so, for hard cases (not a feature). */
  note: z.string().optional(),
});

export type Example = z.output<typeof exampleSchema> & { readonly source: string };

/** A data set: examples plus where they came from and the hash of the bytes they were read from. */
export interface DataSet {
  readonly examples: readonly Example[];
  readonly files: readonly string[];
  /** "sha256:<hex>" over the files' bytes, in the order of `files`. */
  readonly hash: string;
}

export class DataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DataError';
  }
}

/** The request of an example as the model sees it (content type inferred as a client would send it). */
export function exampleInput(example: Example): RoutingInput {
  const r = example.request;
  const contentType =
    r.contentType ?? r.headers?.['content-type'] ?? (r.file !== undefined ? 'multipart/form-data' : r.body !== undefined ? 'application/json' : undefined);
  return { method: r.method, path: r.path, contentType, headers: r.headers, body: r.body, file: r.file };
}

/** The text an example carries (for reports and the zero-shot validator). */
export function exampleText(example: Example, fields: readonly string[] = ['query', 'prompt', 'message']): string {
  const parts: string[] = [];
  const body = example.request.body;
  if (body !== null && typeof body === 'object' && !Array.isArray(body)) {
    for (const f of fields) {
      const v = (body as Record<string, unknown>)[f];
      if (typeof v === 'string') parts.push(v);
      else if (Array.isArray(v)) for (const item of v) if (typeof item === 'string') parts.push(item);
    }
  }
  const file = example.request.file;
  if (file?.name) parts.push(`[file ${file.name}${file.type ? ` (${file.type})` : ''}]`);
  return parts.join(' ').trim();
}

function parseJsonl(file: string, text: string): Example[] {
  const out: Example[] = [];
  const lines = text.split('\n');
  const problems: string[] = [];
  lines.forEach((line, i) => {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('//')) return;
    let value: unknown;
    try {
      value = JSON.parse(trimmed);
    } catch (err) {
      problems.push(`${file}:${i + 1}: not JSON (${(err as Error).message})`);
      return;
    }
    const parsed = exampleSchema.safeParse(value);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      problems.push(`${file}:${i + 1}: ${issue.path.map(String).join('.') || '(root)'}: ${issue.message}`);
      return;
    }
    out.push({ ...parsed.data, source: `${basename(file)}:${i + 1}` });
  });
  if (problems.length > 0) throw new DataError(problems.slice(0, 20).join('\n') + (problems.length > 20 ? `\n... and ${problems.length - 20} more` : ''));
  return out;
}

/** Read JSONL files (in the given order) into one data set. */
export function loadDataFiles(files: readonly string[]): DataSet {
  const hash = createHash('sha256');
  const examples: Example[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new DataError(`${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    }
    hash.update(text);
    examples.push(...parseJsonl(file, text));
  }
  if (examples.length === 0) throw new DataError(`${files.join(', ') || 'no files'}: no examples`);
  return { examples, files, hash: `sha256:${hash.digest('hex')}` };
}

/**
 * A file, or a directory's JSONL files whose name starts with `prefix` (e.g. "train" or
 * "validation"), sorted by name.
 */
export function resolveDataFiles(path: string, prefix: string): string[] {
  let stat;
  try {
    stat = statSync(path);
  } catch {
    throw new DataError(`${path}: no such file or directory`);
  }
  if (!stat.isDirectory()) return [path];
  const files = readdirSync(path)
    .filter((f) => f.endsWith('.jsonl') && f.startsWith(prefix))
    .sort()
    .map((f) => join(path, f));
  if (files.length === 0) throw new DataError(`${path}: no ${prefix}*.jsonl files`);
  return files;
}

/** Examples whose label is not one of `labels` (data written for another service set). */
export function unknownLabels(data: DataSet, labels: readonly string[]): string[] {
  const known = new Set(labels);
  return [...new Set(data.examples.map((e) => e.service).filter((s) => !known.has(s)))].sort();
}
