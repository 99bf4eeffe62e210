import { isIP } from 'node:net';
import { z } from 'zod';

/*
 * Field schemas shared by several areas of the configuration: environment values (strings
 * turned into booleans and numbers), URLs, origins, service names, scopes, methods, CIDRs.
 */

export const booleanFromEnv = z
  .enum(['true', 'false', '1', '0', 'yes', 'no', 'on', 'off'], {
    error: 'expected true or false',
  })
  .transform((v) => v === 'true' || v === '1' || v === 'yes' || v === 'on');

export const intFromEnv = (min: number, max: number) =>
  z
    .string()
    .regex(/^-?\d+$/, `expected a whole number from ${min} to ${max}`)
    .transform(Number)
    .pipe(z.number().int().min(min, `expected a whole number from ${min} to ${max}`).max(max, `expected a whole number from ${min} to ${max}`));

export const secondsFromEnv = z
  .string()
  .regex(/^\d+(\.\d+)?$/, 'expected a number of seconds')
  .transform(Number)
  .pipe(z.number().positive().max(3600));

export const httpUrl = z
  .string()
  .url({ error: 'expected an http(s) URL' })
  .refine((u) => /^https?:\/\//.test(u), 'expected an http(s) URL');

export const origin = z
  .string()
  .regex(/^https?:\/\/[^/\s]+$/, 'an origin such as https://app.example.org (scheme and host, no path)');

export const serviceNameSchema = z
  .string()
  .regex(/^[a-z][a-z0-9-]{0,62}$/, 'service names are lowercase letters, digits and dashes');

export const SCOPE_VALUES = ['read', 'write', 'admin'] as const;
export type ScopeName = (typeof SCOPE_VALUES)[number];
export const scopeSchema = z.enum(SCOPE_VALUES);

export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

/** "10.0.0.0/8", "2001:db8::/32" or a single address (a /32 or /128). */
export const cidrSchema = z.string().refine((v) => parseCidr(v) !== null, 'an IP address or CIDR such as 10.0.0.0/8 or 2001:db8::/32');

/** Parses "addr" or "addr/bits" with node:net; null when it is neither. */
export function parseCidr(value: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | null {
  const slash = value.indexOf('/');
  const address = slash < 0 ? value : value.slice(0, slash);
  const version = isIP(address);
  if (version === 0) return null;
  const max = version === 4 ? 32 : 128;
  if (slash < 0) return { address, prefix: max, family: version === 4 ? 'ipv4' : 'ipv6' };
  const bits = value.slice(slash + 1);
  if (!/^\d{1,3}$/.test(bits) || Number(bits) > max) return null;
  return { address, prefix: Number(bits), family: version === 4 ? 'ipv4' : 'ipv6' };
}

