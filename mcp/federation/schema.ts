import type { StandardSchemaWithJSON } from '@modelcontextprotocol/server';

/*
 * An upstream tool's JSON Schema as the gateway offers it: published exactly as the upstream
 * wrote it (`$schema`, `$defs`, `additionalProperties`... kept, whatever its dialect), and not
 * validated again at the gateway. The upstream validates its own arguments and answers with
 * its own error; compiling every upstream schema here would add latency and refuse schemas
 * the upstream accepts (other dialects, unknown formats). Hand-written because the SDK's
 * fromJsonSchema compiles and validates, which is what this must not do.
 */
export function upstreamSchema(json: Record<string, unknown>): StandardSchemaWithJSON<Record<string, unknown>> {
  return {
    '~standard': {
      version: 1,
      vendor: 'unified-gateway-federation',
      validate: (value: unknown) => ({ value: (value ?? {}) as Record<string, unknown> }),
      jsonSchema: { input: () => json, output: () => json },
    },
  };
}
