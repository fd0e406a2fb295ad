import ipaddr from 'ipaddr.js'
import { ParseError, quote } from './errors.js'

/** A parsed CIDR prefix, normalised to its network address (`10.8.0.7/24` becomes `10.8.0.0/24`). */
export interface Prefix {
  readonly address: ipaddr.IPv4 | ipaddr.IPv6
  readonly bits: number
  /** Canonical text, e.g. `100.64.0.0/24` or `fd00::/64`. */
  readonly text: string
}

/** An UDP endpoint: an IP address and a port. */
export interface Endpoint {
  readonly address: string
  readonly port: number
}

/** Parse an IPv4 or IPv6 address; IPv4-mapped IPv6 becomes IPv4. Throws ParseError quoting the input. */
export function parseIp (text: string, what = 'IP address'): ipaddr.IPv4 | ipaddr.IPv6 {
  if (!ipaddr.isValid(text)) throw new ParseError(`invalid ${what}: ${quote(text)}`)
  // ipaddr.js reads the IPv4-compatible form `::1.2.3.4` (how inet_ntop, and so `wg`, prints ::/96 addresses) as
  // the mapped `::ffff:1.2.3.4`: write the dotted tail as two hex groups first.
  const ip = ipaddr.parse(text.includes(':') ? dottedTailToHex(text) : text)
  if (ip.kind() === 'ipv6' && (ip as ipaddr.IPv6).isIPv4MappedAddress()) return (ip as ipaddr.IPv6).toIPv4Address()
  return ip
}

function dottedTailToHex (text: string): string {
  const m = /^(.*:)(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text)
  if (m === null) return text
  const [a, b, c, d] = [m[2], m[3], m[4], m[5]].map(Number) as [number, number, number, number]
  if ([a, b, c, d].some((x) => x > 255)) return text
  return `${m[1] ?? ''}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
}

/** Parse `a.b.c.d/n` or `x::/n`; a bare address is a host prefix. Throws ParseError quoting the input. */
export function parsePrefix (text: string): Prefix {
  const slash = text.indexOf('/')
  const ip = parseIp(slash < 0 ? text : text.slice(0, slash), 'prefix')
  const max = ip.kind() === 'ipv4' ? 32 : 128
  let bits = max
  if (slash >= 0) {
    const bitsText = text.slice(slash + 1)
    if (!/^\d{1,3}$/.test(bitsText) || Number(bitsText) > max) throw new ParseError(`invalid prefix length in ${quote(text)}`)
    bits = Number(bitsText)
  }
  const network = networkAddress(ip, bits)
  return { address: network, bits, text: `${network.toString()}/${bits}` }
}

function networkAddress (ip: ipaddr.IPv4 | ipaddr.IPv6, bits: number): ipaddr.IPv4 | ipaddr.IPv6 {
  const bytes = ip.toByteArray()
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, bits - i * 8))
    bytes[i] = (bytes[i] ?? 0) & (0xff << (8 - keep)) & 0xff
  }
  return ipaddr.fromByteArray(bytes)
}

/** Does `outer` contain the whole of `inner` (same family, shorter or equal length, same network bits)? */
export function prefixContains (outer: Prefix, inner: Prefix): boolean {
  if (outer.address.kind() !== inner.address.kind() || inner.bits < outer.bits) return false
  return inner.address.match(outer.address, outer.bits)
}

/** Do two prefixes share any address? */
export function prefixesOverlap (a: Prefix, b: Prefix): boolean {
  return prefixContains(a, b) || prefixContains(b, a)
}

/** Is `ip` inside `prefix`? */
export function prefixHas (prefix: Prefix, ip: ipaddr.IPv4 | ipaddr.IPv6): boolean {
  return ip.kind() === prefix.address.kind() && ip.match(prefix.address, prefix.bits)
}

/**
 * The address to reach a service on the other side of a peer whose allowed IPs are `prefix`:
 * a host prefix as is, otherwise the first host of the network (`10.8.0.0/24` gives `10.8.0.1`).
 * wg-nat dialled the network address itself here and hung forever.
 */
export function firstHost (prefix: Prefix): string {
  const max = prefix.address.kind() === 'ipv4' ? 32 : 128
  if (prefix.bits >= max - 1) return prefix.address.toString()
  const bytes = prefix.address.toByteArray()
  bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) | 1
  return ipaddr.fromByteArray(bytes).toString()
}

/** Parse `1.2.3.4:51820` or `[fd00::1]:51820`. Throws ParseError quoting the input. */
export function parseEndpoint (text: string): Endpoint {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(text) ?? /^([^:]+):(\d{1,5})$/.exec(text)
  if (m === null) throw new ParseError(`invalid endpoint: ${quote(text)}`)
  const port = Number(m[2])
  if (port < 1 || port > 65535) throw new ParseError(`invalid port in endpoint ${quote(text)}`)
  return { address: parseIp(m[1] ?? '', 'endpoint address').toString(), port }
}

/** Format an endpoint the way `wg` prints and accepts it. */
export function formatEndpoint (endpoint: Endpoint): string {
  return endpoint.address.includes(':') ? `[${endpoint.address}]:${endpoint.port}` : `${endpoint.address}:${endpoint.port}`
}

/** Canonical text of an address (IPv4-mapped IPv6 as IPv4), e.g. for a socket's remoteAddress. */
export function normaliseIp (text: string): string {
  return parseIp(text).toString()
}
