import { BlockList, isIP } from 'node:net';
import { parseCidr } from '../config/index.js';

/*
 * Who "the client" is for per-IP limits and threat scores. The address comes from Fastify's
 * `request.ip`, which honours `server.trustProxy` (the one list of trusted proxies): the
 * X-Forwarded-For chain is walked right to left only through trusted peers, so a client
 * cannot pick a fresh address per request by sending the header itself.
 */

function expandIpv6(address: string): number[] | null {
  let a = address;
  const zone = a.indexOf('%');
  if (zone >= 0) a = a.slice(0, zone);
  const lastColon = a.lastIndexOf(':');
  const tail = a.slice(lastColon + 1);
  if (tail.includes('.')) {
    const octets = tail.split('.').map(Number);
    if (octets.length !== 4 || octets.some((o) => !(o >= 0 && o <= 255))) return null;
    a = `${a.slice(0, lastColon + 1)}${((octets[0]! << 8) | octets[1]!).toString(16)}:${((octets[2]! << 8) | octets[3]!).toString(16)}`;
  }
  const double = a.indexOf('::');
  let parts: string[];
  if (double >= 0) {
    const head = a.slice(0, double);
    const rest = a.slice(double + 2);
    const headParts = head === '' ? [] : head.split(':');
    const restParts = rest === '' ? [] : rest.split(':');
    const fill = 8 - headParts.length - restParts.length;
    if (fill < 0) return null;
    parts = [...headParts, ...Array<string>(fill).fill('0'), ...restParts];
  } else parts = a.split(':');
  if (parts.length !== 8) return null;
  const hextets = parts.map((p) => Number.parseInt(p, 16));
  return hextets.every((h) => h >= 0 && h <= 0xffff) ? hextets : null;
}

/**
 * The key of a client address: IPv4 as is (IPv4-mapped IPv6 too), IPv6 as its /64 — one
 * subscriber usually holds a whole /64, so keying single IPv6 addresses would let a client
 * rotate through them to escape its limits and blocks.
 */
export function clientKey(ip: string): string {
  if (ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4) return ip.slice(7);
  if (isIP(ip) !== 6) return ip;
  const hextets = expandIpv6(ip);
  if (hextets === null) return ip;
  return `${hextets.slice(0, 4).map((h) => h.toString(16)).join(':')}::/64`;
}

/** True when `value` is something `clientKey` can return for some address (admin input check). */
export function isClientKey(value: string): boolean {
  if (isIP(value) === 4) return true;
  return /^[0-9a-f]{1,4}(:[0-9a-f]{1,4}){3}::\/64$/.test(value);
}

/** A set of CIDRs (node:net BlockList) answering "is this address inside?". */
export class CidrSet {
  private readonly list = new BlockList();
  readonly size: number;

  constructor(cidrs: readonly string[]) {
    for (const cidr of cidrs) {
      const parsed = parseCidr(cidr);
      if (parsed === null) throw new Error(`not an IP address or CIDR: ${cidr}`);
      this.list.addSubnet(parsed.address, parsed.prefix, parsed.family);
    }
    this.size = cidrs.length;
  }

  has(ip: string): boolean {
    if (this.size === 0) return false;
    const plain = ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip;
    const version = isIP(plain);
    if (version === 0) return false;
    return this.list.check(plain, version === 4 ? 'ipv4' : 'ipv6');
  }
}
