import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DataError, exampleInput, exampleText, loadDataFiles, resolveDataFiles } from '../../../src/routing/model/data.js';
import { checkLabels, listModels, loadModelFile, promoteModel, readPointer, rollbackModel } from '../../../src/routing/model/files.js';
import { ModelFileError, RoutingModel } from '../../../src/routing/model/model.js';
import { constantModelFile, modelFile, tempDir } from './helpers.js';

describe('labelled data (JSONL)', () => {
  const dir = tempDir();

  it('reads examples, skipping blank and // lines, with a hash of the bytes', () => {
    const file = join(dir, 'train-a.jsonl');
    writeFileSync(
      file,
      [
        '// a comment',
        '{"request": {"method": "POST", "path": "/v1/query", "body": {"query": "hello"}}, "service": "twin"}',
        '',
        '{"request": {"path": "/v1/upload", "file": {"name": "a.pdf", "type": "application/pdf"}}, "service": "knowledge"}',
      ].join('\n'),
    );
    const data = loadDataFiles([file]);
    expect(data.examples.map((e) => [e.service, e.source])).toEqual([
      ['twin', 'train-a.jsonl:2'],
      ['knowledge', 'train-a.jsonl:4'],
    ]);
    expect(data.hash).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(exampleInput(data.examples[0]!)).toMatchObject({ method: 'POST', contentType: 'application/json' });
    expect(exampleInput(data.examples[1]!)).toMatchObject({ method: 'POST', contentType: 'multipart/form-data', file: { name: 'a.pdf' } });
    expect(exampleText(data.examples[1]!)).toBe('[file a.pdf (application/pdf)]');
  });

  it('names the file and line of each bad example', () => {
    const file = join(dir, 'bad.jsonl');
    writeFileSync(file, '{"request": {"path": "v1"}, "service": "twin"}\nnot json\n{"request": {"path": "/x"}, "service": "Twin"}\n');
    expect(() => loadDataFiles([file])).toThrow(DataError);
    try {
      loadDataFiles([file]);
    } catch (err) {
      const lines = (err as Error).message.split('\n');
      expect(lines[0]).toMatch(/bad\.jsonl:1: request\.path: /);
      expect(lines[1]).toMatch(/bad\.jsonl:2: not JSON/);
      expect(lines[2]).toMatch(/bad\.jsonl:3: service: /);
    }
  });

  it('finds train*/validation* files in a directory', () => {
    writeFileSync(join(dir, 'validation-x.jsonl'), '');
    expect(resolveDataFiles(dir, 'train')).toEqual([join(dir, 'train-a.jsonl')]);
    expect(resolveDataFiles(dir, 'validation')).toEqual([join(dir, 'validation-x.jsonl')]);
    expect(() => resolveDataFiles(join(dir, 'nope'), 'train')).toThrow(/no such file or directory/);
    expect(() => resolveDataFiles(dir, 'holdout')).toThrow(/no holdout\*\.jsonl files/);
  });
});

describe('model files, active pointer, promote and rollback', () => {
  const dir = tempDir();
  const a = join(dir, 'a.json');
  const b = join(dir, 'b.json');
  writeFileSync(a, JSON.stringify(constantModelFile('twin', 'rm-a')));
  writeFileSync(join(dir, 'a.md'), '# card of a\n');
  writeFileSync(b, JSON.stringify(constantModelFile('fog', 'rm-b')));
  const folder = join(dir, 'routing-models');

  it('promotes: copies the model and its card, points active.json at it, keeps history', () => {
    const first = promoteModel(a, folder, { now: new Date('2026-01-01T00:00:00Z') });
    expect(first.previous).toBeNull();
    expect(existsSync(join(folder, 'models/rm-a.json'))).toBe(true);
    expect(readFileSync(join(folder, 'models/rm-a.md'), 'utf8')).toBe('# card of a\n');
    const second = promoteModel(b, folder, { now: new Date('2026-01-02T00:00:00Z') });
    expect(second.previous?.id).toBe('rm-a');
    expect(readPointer(folder)).toEqual({
      format: 'unified-gateway/routing-pointer',
      id: 'rm-b',
      file: 'models/rm-b.json',
      promotedAt: '2026-01-02T00:00:00.000Z',
      history: [{ id: 'rm-a', file: 'models/rm-a.json', promotedAt: '2026-01-01T00:00:00.000Z' }],
    });
    expect(listModels(folder)).toEqual(['rm-a', 'rm-b']);
  });

  it('rolls back to the previous model, and refuses when there is none', () => {
    const { from, to } = rollbackModel(folder);
    expect([from.id, to.id]).toEqual(['rm-b', 'rm-a']);
    expect(readPointer(folder)?.history).toEqual([]);
    expect(() => rollbackModel(folder)).toThrow(/history is empty/);
  });

  it('refuses to promote a model whose labels do not match the routing services', () => {
    const odd = join(dir, 'odd.json');
    writeFileSync(odd, JSON.stringify(modelFile({ id: 'rm-odd', labels: ['twin', 'fog', 'weather'] })));
    expect(() => promoteModel(odd, folder, { services: ['twin', 'agent-controller', 'knowledge', 'fog', 'p2p'] })).toThrow(
      /labels not among the routing services: weather; routing services the model cannot choose: agent-controller, knowledge, p2p/,
    );
    expect(readPointer(folder)?.id).toBe('rm-a');
  });

  it('checks labels as a set (order does not matter)', () => {
    const m = RoutingModel.fromJson(modelFile({ labels: ['p2p', 'fog', 'twin', 'knowledge', 'agent-controller'] }));
    expect(() => checkLabels(m, ['twin', 'agent-controller', 'knowledge', 'fog', 'p2p'])).not.toThrow();
    expect(() => checkLabels(m, ['twin', 'fog'])).toThrow(ModelFileError);
  });

  it('names unreadable and non-JSON model files', () => {
    expect(() => loadModelFile(join(dir, 'missing.json'))).toThrow(/missing\.json: cannot read the file \(ENOENT\)/);
    writeFileSync(join(dir, 'junk.json'), '{');
    expect(() => loadModelFile(join(dir, 'junk.json'))).toThrow(/junk\.json: not JSON/);
  });
});
