import type { z } from 'zod';

/**
 * A value the state store holds as JSON text, parsed with its schema: undefined when the text
 * is not JSON or does not match (data from outside the process is parsed, never cast).
 */
export function parseStored<S extends z.ZodType>(schema: S, text: string): z.output<S> | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return undefined;
  }
  const parsed = schema.safeParse(raw);
  return parsed.success ? parsed.data : undefined;
}
