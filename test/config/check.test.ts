import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { comparing, crossCheck } from '../../src/config/check.js';

/** Every problem of `schema` on `input`, as `path: message`. */
function problems(schema: z.ZodType, input: unknown): string[] {
  const result = schema.safeParse(input);
  return result.success ? [] : result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

describe('crossCheck', () => {
  const seen: { valid: Record<string, boolean>; readable: Record<string, boolean> }[] = [];
  const schema = z
    .strictObject({ a: z.number(), list: z.array(z.strictObject({ b: z.string() })), c: z.number().optional() })
    .check(
      crossCheck<{ a: number; list: { b: string }[]; c?: number }>((v, c) => {
        seen.push({
          valid: { a: c.valid('a'), list: c.valid('list'), list0: c.valid('list', 0), list1: c.valid('list', 1), list1b: c.valid('list', 1, 'b') },
          readable: { list: c.readable('list'), list1: c.readable('list', 1) },
        });
        if (c.valid('a') && c.valid('c') && v.c !== undefined && v.c < v.a) c.problem(['c'], 'must be at least a');
      }),
    );

  it('runs beside shape problems, and says which keys parsed (unknown keys do not count)', () => {
    seen.length = 0;
    expect(problems(schema, { a: 5, c: 1, list: [{ b: 'x' }, { b: 2 }], extra: true })).toEqual([
      'list.1.b: Invalid input: expected string, received number',
      ': Unrecognized key: "extra"',
      'c: must be at least a',
    ]);
    expect(seen).toEqual([
      {
        valid: { a: true, list: false, list0: true, list1: false, list1b: false },
        readable: { list: true, list1: true },
      },
    ]);
  });

  it('is not run on a value of the wrong type', () => {
    seen.length = 0;
    expect(problems(schema, 'text')).toEqual([': Invalid input: expected object, received string']);
    expect(seen).toEqual([]);
  });
});

describe('comparing', () => {
  const schema = z
    .strictObject({ low: z.number(), high: z.number(), other: z.number() })
    .refine((v) => v.low < v.high, comparing(['low', 'high'], ['high'], 'must be above low'));

  it('runs when the keys it compares parsed, even if another did not', () => {
    expect(problems(schema, { low: 5, high: 1, other: 'x' })).toEqual(['other: Invalid input: expected number, received string', 'high: must be above low']);
  });

  it('does not run when a key it compares did not parse', () => {
    expect(problems(schema, { low: 'x', high: 1, other: 1 })).toEqual(['low: Invalid input: expected number, received string']);
  });
});
