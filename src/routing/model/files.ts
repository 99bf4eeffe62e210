import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { ModelFileError, RoutingModel } from './model.js';

/*
 * The operators' folder (routing-models/): model files under models/, their model cards
 * (<id>.md) beside them, and active.json, the pointer to the active model with the history
 * of earlier ones (for rollback). `model promote` and `model rollback` write the pointer; the
 * gateway reads it at start and (with routing.watchPointer) whenever it changes.
 */

export const POINTER_FILE = 'active.json';
export const MODELS_SUBDIR = 'models';
const HISTORY_LIMIT = 20;

const pointerEntry = z.strictObject({
  id: z.string().min(1),
  /** Relative to the folder. */
  file: z.string().min(1),
  promotedAt: z.iso.datetime(),
});
export const pointerSchema = z.strictObject({
  format: z.literal('unified-gateway/routing-pointer'),
  ...pointerEntry.shape,
  /** Earlier active models, most recent first. */
  history: z.array(pointerEntry).default([]),
});
export type Pointer = z.output<typeof pointerSchema>;
export type PointerEntry = z.output<typeof pointerEntry>;

/** The gateway's own routing-models/ folder (next to its package.json). */
export function packageModelsDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'unified-gateway') return join(dir, 'routing-models');
      } catch {
        // not ours; keep looking
      }
    }
    dir = dirname(dir);
  }
  return resolve('routing-models');
}

/** Read and validate a model file. Throws ModelFileError (one line per problem). */
export function loadModelFile(path: string): RoutingModel {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ModelFileError(path, [`cannot read the file (${(err as NodeJS.ErrnoException).code ?? String(err)})`]);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ModelFileError(path, [`not JSON (${(err as Error).message})`]);
  }
  return RoutingModel.fromJson(value, path);
}

/** Refuse a model whose labels are not exactly the services the gateway routes among. */
export function checkLabels(model: RoutingModel, services: readonly string[], source = model.id): void {
  const labels = new Set(model.labels);
  const wanted = new Set(services);
  const missing = services.filter((s) => !labels.has(s));
  const extra = model.labels.filter((l) => !wanted.has(l));
  if (missing.length === 0 && extra.length === 0) return;
  const parts: string[] = [];
  if (extra.length > 0) parts.push(`labels not among the routing services: ${extra.join(', ')}`);
  if (missing.length > 0) parts.push(`routing services the model cannot choose: ${missing.join(', ')}`);
  throw new ModelFileError(source, [`the model's labels (${model.labels.join(', ')}) do not match the routing services (${services.join(', ')}): ${parts.join('; ')}`]);
}

export function readPointer(dir: string): Pointer | null {
  const path = join(dir, POINTER_FILE);
  if (!existsSync(path)) return null;
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ModelFileError(path, [`not JSON (${(err as Error).message})`]);
  }
  const parsed = pointerSchema.safeParse(value);
  if (!parsed.success) {
    throw new ModelFileError(path, parsed.error.issues.map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`));
  }
  return parsed.data;
}

function writeAtomically(path: string, text: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

function writePointer(dir: string, pointer: Pointer): void {
  writeAtomically(join(dir, POINTER_FILE), `${JSON.stringify(pointer, null, 2)}\n`);
}

/** Path of a pointer entry's file. */
export function entryPath(dir: string, entry: Pick<PointerEntry, 'file'>): string {
  return isAbsolute(entry.file) ? entry.file : join(dir, entry.file);
}

/** The model file of an id in the folder (models/<id>.json). */
export function modelPathForId(dir: string, id: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(id)) throw new ModelFileError(id, ['not a model id']);
  return join(dir, MODELS_SUBDIR, `${id}.json`);
}

/** The model card beside a model file (<name>.md), when there is one. */
export function cardPathFor(modelPath: string): string {
  return modelPath.replace(/\.json$/, '') + '.md';
}

export interface PromoteResult {
  readonly pointer: Pointer;
  readonly copiedTo: string;
  readonly previous: PointerEntry | null;
}

/**
 * Make a model file the active one: validate it, copy it (and its card) to models/<id>.json,
 * and point active.json at it, keeping the previous one in the history.
 */
export function promoteModel(file: string, dir: string, options: { services?: readonly string[]; now?: Date } = {}): PromoteResult {
  const model = loadModelFile(file);
  if (options.services) checkLabels(model, options.services, file);
  mkdirSync(join(dir, MODELS_SUBDIR), { recursive: true });
  const target = modelPathForId(dir, model.id);
  if (resolve(file) !== resolve(target)) {
    copyFileSync(file, target);
    const card = cardPathFor(file);
    if (existsSync(card)) copyFileSync(card, cardPathFor(target));
  }
  const current = readPointer(dir);
  const entry: PointerEntry = { id: model.id, file: relative(dir, target), promotedAt: (options.now ?? new Date()).toISOString() };
  const previous = current === null ? null : { id: current.id, file: current.file, promotedAt: current.promotedAt };
  const history = previous === null ? [] : [previous, ...current!.history].slice(0, HISTORY_LIMIT);
  const pointer: Pointer = { format: 'unified-gateway/routing-pointer', ...entry, history };
  writePointer(dir, pointer);
  return { pointer, copiedTo: target, previous };
}

/** Point active.json back at the previous model of its history. */
export function rollbackModel(dir: string, options: { now?: Date } = {}): { pointer: Pointer; from: PointerEntry; to: PointerEntry } {
  const current = readPointer(dir);
  if (current === null) throw new ModelFileError(join(dir, POINTER_FILE), ['no active model to roll back from']);
  const [previous, ...older] = current.history;
  if (previous === undefined) throw new ModelFileError(join(dir, POINTER_FILE), ['the history is empty: there is no earlier model to go back to']);
  loadModelFile(entryPath(dir, previous)); // still there and valid
  const to: PointerEntry = { id: previous.id, file: previous.file, promotedAt: (options.now ?? new Date()).toISOString() };
  const pointer: Pointer = { format: 'unified-gateway/routing-pointer', ...to, history: older };
  writePointer(dir, pointer);
  return { pointer, from: { id: current.id, file: current.file, promotedAt: current.promotedAt }, to };
}

/** Model files in the folder (models/*.json), by id. */
export function listModels(dir: string): string[] {
  const modelsDir = join(dir, MODELS_SUBDIR);
  if (!existsSync(modelsDir)) return [];
  try {
    return readdirSync(modelsDir)
      .filter((f) => f.endsWith('.json'))
      .map((f) => basename(f, '.json'))
      .sort();
  } catch {
    return [];
  }
}
