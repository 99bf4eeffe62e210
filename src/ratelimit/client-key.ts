import { BlockList, isIP } from 'node:net';
import ipaddr from 'ipaddr.js';
import { parseCidr } from '../config/index.js';

/*
 * Who "the client" is for per-IP limits, threat scores and blocks. The address comes from
 * Fastify's `request.ip`, which honours `server.trustProxy` (the one list of trusted
 * proxies): the X-Forwarded-For chain is walked right to left only through trusted peers, so
 * a client cannot pick a fresh address per request by sending the header itself.
 *
 * One address has many spellings (`::ffff:192.0.2.1`, `::ffff:c000:201`,
 * `0:0:0:0:0:ffff:c000:201`, `0:0:0:0:0:0:0:1`, upper case, leading zeros). Every address is
 * parsed (ipaddr.js) and keyed in one canonical form, so a client can neither dodge its
 * quota or block by changing notation nor land in someone else's bucket.
 */

/**
 * A dotted IPv4 address already in canonical form (no leading zeros, each part 0-255): what
 * Node reports for an IPv4 peer, bare or as `::ffff:a.b.c.d`. Checked first on every request
 * so the common case costs one regex test instead of a parse (3 % of a cache hit's CPU).
 */
const CANONICAL_IPV4 = /^(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** The canonical IPv4 text of a peer address in one of Node's IPv4 forms, or undefined. */
function fastIpv4(ip: string): string | undefined {
  if (CANONICAL_IPV4.test(ip)) return ip;
  if (ip.startsWith('::ffff:') && CANONICAL_IPV4.test(ip.slice(7))) return ip.slice(7);
  return undefined;
}

/** The address parsed, IPv4-mapped (and IPv4-compatible) IPv6 unwrapped to IPv4; null when not an IP address. */
export function parseClientAddress(ip: string): ipaddr.IPv4 | ipaddr.IPv6 | null {
  const value = ip.trim();
  // node:net decides what is an address (strict: no octal, hex or short IPv4 forms).
  if (value === '' || value.length > 64 || isIP(value) === 0) return null;
  try {
    return ipaddr.process(value);
  } catch {
    return null;
  }
}

/** The canonical text of an address: dotted IPv4 (mapped IPv6 unwrapped), RFC 5952 IPv6 without zone; the input when it is not an address. */
export function canonicalIp(ip: string): string {
  const v4 = fastIpv4(ip);
  if (v4 !== undefined) return v4;
  const addr = parseClientAddress(ip);
  if (addr === null) return ip;
  return addr.kind() === 'ipv4' ? addr.toString() : rfc5952(addr as ipaddr.IPv6);
}

function rfc5952(addr: ipaddr.IPv6): string {
  return new ipaddr.IPv6(addr.parts).toRFC5952String();
}

const KEY_64 = /^[0-9a-f:]{2,39}\/64$/i;

/** The key of an IPv6 address: its /64 ("2001:db8:1:2::/64"), or the address itself inside ::/64 (loopback, unspecified). */
function ipv6Key(addr: ipaddr.IPv6): string {
  const head = addr.parts.slice(0, 4);
  // ::/64 is never a subscriber's network: it holds ::1, :: and the IPv4 forms unwrapped
  // above. Each address there is its own client (::1 must not share a bucket with others).
  if (head.every((h) => h === 0)) return rfc5952(addr);
  return `${head.map((h) => h.toString(16)).join(':')}::/64`;
}

/**
 * The key of a client address: IPv4 in dotted form (IPv4-mapped IPv6 too), IPv6 as its
 * /64 — one subscriber usually holds a whole /64, so keying single IPv6 addresses would let
 * a client rotate through them to escape its limits and blocks. A /64 key given back
 * ("2001:DB8:1:2::/64", any spelling) gives its canonical form; anything else that is not an
 * address is returned as is (and `isClientKey` refuses it).
 */
export function clientKey(ip: string): string {
  const v4 = fastIpv4(ip);
  if (v4 !== undefined) return v4;
  const addr = parseClientAddress(ip);
  if (addr !== null) return addr.kind() === 'ipv4' ? addr.toString() : ipv6Key(addr as ipaddr.IPv6);
  return networkKey(ip) ?? ip;
}

/** The canonical form of a /64 key in any spelling; null when `value` is not one. */
function networkKey(value: string): string | null {
  const v = value.trim();
  if (!KEY_64.test(v) || isIP(v.slice(0, -3)) !== 6) return null;
  const key = ipv6Key(ipaddr.IPv6.parse(v.slice(0, -3)));
  return key.endsWith('/64') ? key : null;
}

/** True when `value` is the canonical key of some address, as `clientKey` returns it (admin input check). */
export function isClientKey(value: string): boolean {
  return (parseClientAddress(value) !== null || networkKey(value) !== null) && clientKey(value) === value;
}

/** How many addresses a CidrSet remembers its answer for. */
const RECENT_ADDRESSES = 4096;

/** A set of CIDRs (node:net BlockList) answering "is this address inside?", whatever its notation. */
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

  /**
   * Answers for recently seen addresses: BlockList.check crosses into C++ (issue 18's profile:
   * about 1% of the gateway's CPU, for the allow list checked on every request). Bounded:
   * cleared when full, so a scan from many addresses costs a check each, as without it.
   */
  private readonly recent = new Map<string, boolean>();

  has(ip: string): boolean {
    if (this.size === 0) return false;
    const known = this.recent.get(ip);
    if (known !== undefined) return known;
    const inside = this.check(ip);
    if (this.recent.size >= RECENT_ADDRESSES) this.recent.clear();
    this.recent.set(ip, inside);
    return inside;
  }

  private check(ip: string): boolean {
    const v4 = fastIpv4(ip);
    if (v4 !== undefined) return this.list.check(v4, 'ipv4');
    const addr = parseClientAddress(ip);
    if (addr === null) return false;
    return addr.kind() === 'ipv4' ? this.list.check(addr.toString(), 'ipv4') : this.list.check(rfc5952(addr as ipaddr.IPv6), 'ipv6');
  }
}
