import ipaddr from 'ipaddr.js'
import { EXIT_DATAERR, UsageError, WgnatError, quote } from '../../shared/errors.js'
import { parsePrefix, prefixesOverlap, type Prefix } from '../../shared/ip.js'

/** How many addresses of an IPv6 subnet are scanned for a free one (a /64 has 2^64). */
const IPV6_SCAN_LIMIT = 65_536

/** The hub's interface address as given to `init --address`: the hub's own address and the mesh subnet around it. */
export interface HubAddress {
  /** The hub's own address, e.g. `10.8.0.1`. */
  address: string
  /** The mesh, e.g. `10.8.0.0/24`. */
  subnet: Prefix
}

/** The largest mesh subnets `init` takes: /8 for IPv4, /32 for IPv6. */
const MIN_IPV4_BITS = 8
const MIN_IPV6_BITS = 32
/**
 * Ranges no mesh can live in, which a mesh subnet may not overlap at all: 0.0.0.0/8, loopback, link-local, multicast
 * and 240.0.0.0/4 (with the broadcast address).
 */
const SPECIAL_RANGES = ['0.0.0.0/8', '127.0.0.0/8', '169.254.0.0/16', '224.0.0.0/4', '240.0.0.0/4', '::/128', '::1/128', 'fe80::/10', 'ff00::/8'].map((p) => parsePrefix(p))

/**
 * Parse `10.8.0.1/24`: a host address with the subnet's length. The subnet must leave room for spokes (IPv4 /30 or
 * shorter, IPv6 /126 or shorter) and the address must be a usable host of it.
 * It must not be wider than /8 (IPv4) or /32 (IPv6), nor overlap a range no mesh can live in.
 */
export function parseHubAddress (text: string): HubAddress {
  const slash = text.indexOf('/')
  if (slash < 0) throw new UsageError(`--address ${quote(text)}: give the hub's address with the subnet length, e.g. 10.8.0.1/24`)
  let subnet: Prefix
  try {
    if (!isStrictIp(text.slice(0, slash))) throw new Error('not an address')
    subnet = parsePrefix(text)
  } catch { throw new UsageError(`--address ${quote(text)}: not an address with a prefix length`) }
  const address = ipaddr.parse(text.slice(0, slash)).toString()
  const max = subnet.address.kind() === 'ipv4' ? 32 : 128
  if (subnet.bits > max - 2) throw new UsageError(`--address ${quote(text)}: subnet too small for any spoke`)
  // A shorter prefix would route much of the internet (all of it at /0) into the tunnel on every spoke.
  const min = subnet.address.kind() === 'ipv4' ? MIN_IPV4_BITS : MIN_IPV6_BITS
  if (subnet.bits < min) throw new UsageError(`--address ${quote(text)}: a mesh subnet of /${subnet.bits} is too large (at most /${min})`)
  // The subnet, not only the hub's address: a wide one may hold such a range (169.1.0.1/8 holds 169.254.0.0/16).
  const holds = SPECIAL_RANGES.find((r) => prefixesOverlap(r, subnet))
  if (holds !== undefined) throw new UsageError(`--address ${quote(text)}: the mesh subnet ${subnet.text} takes in ${holds.text}, which cannot be a mesh's (use a private range, e.g. 10.8.0.1/24)`)
  if (!isHost(subnet, address)) throw new UsageError(`--address ${quote(text)}: the network or broadcast address is not a host`)
  return { address, subnet }
}

/** Is `ip` a host address of `subnet` (inside it, not its network address, not the IPv4 broadcast address)? */
export function isHost (subnet: Prefix, ip: string): boolean {
  const addr = ipaddr.parse(ip)
  if (addr.kind() !== subnet.address.kind() || !addr.match(subnet.address, subnet.bits)) return false
  const bytes = addr.toByteArray()
  const hostBits = bytes.length * 8 - subnet.bits
  const host = hostPart(bytes, hostBits)
  if (host === 0n) return false
  if (addr.kind() === 'ipv4' && host === (1n << BigInt(hostBits)) - 1n) return false
  return true
}

/** The next free host address of `subnet`, lowest first, skipping `taken`. Throws exit 65 when the subnet is full. */
export function allocateAddress (subnet: Prefix, taken: Iterable<string>): string {
  const used = takenSet(subnet, taken)
  const bytes = subnet.address.toByteArray()
  const hostBits = bytes.length * 8 - subnet.bits
  const size = 1n << BigInt(hostBits)
  const v4 = subnet.address.kind() === 'ipv4'
  const last = v4 ? size - 2n : size - 1n
  const limit = v4 ? last : (last < BigInt(IPV6_SCAN_LIMIT) ? last : BigInt(IPV6_SCAN_LIMIT))
  const base = toBigInt(bytes)
  for (let i = 1n; i <= limit; i++) {
    const candidate = ipaddr.fromByteArray(fromBigInt(base + i, bytes.length)).toString()
    if (used.routedTo(candidate) === undefined) return candidate
  }
  throw new WgnatError(`no free address left in ${quote(subnet.text)} (${used.size} taken)`, EXIT_DATAERR)
}

/** Check a requested spoke address: a host of the subnet and not taken. */
export function checkAddress (subnet: Prefix, requested: string, taken: Iterable<string>): string {
  if (!isStrictIp(requested)) throw new UsageError(`--address ${quote(requested)}: not an IP address`)
  const ip = ipaddr.parse(requested).toString()
  if (!isHost(subnet, ip)) throw new UsageError(`--address ${quote(requested)}: not a host address inside the mesh ${quote(subnet.text)}`)
  const holder = takenSet(subnet, taken).routedTo(ip)
  if (holder !== undefined) throw new WgnatError(`--address ${quote(requested)}: already taken${holder === ip ? '' : ` (inside ${quote(holder)}, routed to another peer)`}`, EXIT_DATAERR)
  return ip
}

/**
 * What is taken: host addresses, and the prefixes within the mesh routed to a peer (a site behind a spoke, say):
 * an address inside one would take it over from that peer (WireGuard routes the longest prefix). A prefix as wide as
 * the mesh or wider (a peer routing everything) leaves the mesh's addresses to their own peers.
 */
function takenSet (subnet: Prefix, taken: Iterable<string>): { size: number, routedTo: (ip: string) => string | undefined } {
  const hosts = new Set<string>()
  const nets: Prefix[] = []
  for (const t of taken) {
    if (!t.includes('/')) { hosts.add(ipaddr.parse(t).toString()); continue }
    const p = parsePrefix(t)
    if (p.address.kind() === subnet.address.kind() && p.bits > subnet.bits) nets.push(p)
  }
  return {
    size: hosts.size + nets.length,
    routedTo (ip) {
      if (hosts.has(ip)) return ip
      const addr = ipaddr.parse(ip)
      return nets.find((n) => addr.kind() === n.address.kind() && addr.match(n.address, n.bits))?.text
    }
  }
}

function hostPart (bytes: number[], hostBits: number): bigint {
  return toBigInt(bytes) & ((1n << BigInt(hostBits)) - 1n)
}

function toBigInt (bytes: number[]): bigint {
  let n = 0n
  for (const b of bytes) n = (n << 8n) | BigInt(b)
  return n
}

function fromBigInt (n: bigint, length: number): number[] {
  const out = new Array<number>(length)
  for (let i = length - 1; i >= 0; i--) { out[i] = Number(n & 0xffn); n >>= 8n }
  return out
}

/** A dotted-quad IPv4 address or an IPv6 address (not the short forms `10.8.1` that inet_aton takes). */
export function isStrictIp (text: string): boolean {
  return ipaddr.IPv4.isValidFourPartDecimal(text) || (text.includes(':') && ipaddr.IPv6.isValid(text))
}
