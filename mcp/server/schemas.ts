import type { StandardSchemaWithJSON } from '@modelcontextprotocol/server';
import type { z } from 'zod';

/*
 * Tool schemas as MCP publishes them: JSON Schema 2020-12 (the default dialect of MCP since
 * 2025-11-25; the SDK asks zod for it), with only the `format` values that dialect defines.
 * zod writes its own formats for some checks (`startsWith` gives `format: "starts_with"`
 * next to the `pattern` that says the same), which a strict validator refuses; they are
 * dropped here, whatever schema they come from, and the `pattern` stays. The JSON form of
 * each schema is computed once (every request builds its own server instance).
 */

/** The `format` values of JSON Schema 2020-12 (format-annotation vocabulary, section 7.3). */
const FORMATS_2020_12: ReadonlySet<string> = new Set([
  'date-time',
  'date',
  'time',
  'duration',
  'email',
  'idn-email',
  'hostname',
  'idn-hostname',
  'ipv4',
  'ipv6',
  'uri',
  'uri-reference',
  'iri',
  'iri-reference',
  'uuid',
  'uri-template',
  'json-pointer',
  'relative-json-pointer',
  'regex',
]);

type Json = Record<string, unknown>;

/** A copy of `schema` without `format` keywords 2020-12 does not define (at any depth). */
export function withStandardFormats(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(withStandardFormats);
  if (schema === null || typeof schema !== 'object') return schema;
  const out: Json = {};
  for (const [key, value] of Object.entries(schema)) {
    // `format` as a keyword (a string), not a property named "format" inside `properties`.
    if (key === 'format' && typeof value === 'string' && !FORMATS_2020_12.has(value)) continue;
    out[key] = withStandardFormats(value);
  }
  return out;
}

/** A zod schema for registerTool/registerPrompt: validation by zod, JSON Schema 2020-12 with standard formats only. */
export function mcpSchema<S extends z.ZodType>(schema: S): StandardSchemaWithJSON<z.input<S>, z.output<S>> {
  const std = schema['~standard'] as unknown as StandardSchemaWithJSON<z.input<S>, z.output<S>>['~standard'];
  const converted = new Map<string, Json>();
  const json =
    (io: 'input' | 'output') =>
    (options: Parameters<typeof std.jsonSchema.input>[0]): Json => {
      const key = `${io}\u0000${String(options.target)}`;
      let value = converted.get(key);
      if (value === undefined) {
        value = withStandardFormats(std.jsonSchema[io](options)) as Json;
        converted.set(key, value);
      }
      return value;
    };
  return { '~standard': { ...std, jsonSchema: { input: json('input'), output: json('output') } } };
}
