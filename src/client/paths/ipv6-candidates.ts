import type ipaddr from 'ipaddr.js'
import { formatEndpoint, parseEndpoint, parseIp, prefixHas, type Endpoint, type Prefix } from '../../shared/ip.js'
import type { NetlinkAddress } from '../../shared/netlink-addresses.js'

/**
 * IPv6 candidates: a client's global IPv6 addresses with its WireGuard port, announced beside the IPv4 ones (many
 * ISPs route IPv6 to homes without NAT, behind a stateful firewall that two simultaneous handshakes open). Pure.
 *
 * What a peer announces is untrusted (the registry relays it unchecked): each attempt sends WireGuard handshakes to
 * the addresses, so only addresses that can be a peer's own on the internet are kept:
 * - global unicast (2000::/3) only: no link-local, loopback, multicast, unspecified, IPv4-mapped or -translated;
 * - no unique local addresses (fc00::/7): they name hosts on some private network, ours perhaps, and a peer behind the
 *   same router is already reached by its IPv4 LAN candidate; a registry must not make us send into our own network;
 * - no 6to4 (2002::/16) or Teredo (2001::/32): they embed IPv4 addresses of tunnel relays, not the peer's own;
 * - nothing inside the mesh (the tunnel's own prefixes): never a path to a peer's WireGuard port;
 * - at most MAX_IPV6_CANDIDATES per peer (the first ones), duplicates dropped.
 * The documentation prefix 2001:db8::/32 is accepted: it is what the lab uses (no real host has one, so it is
 * harmless elsewhere).
 */

/** IPv6 candidates a client announces, and keeps of a peer's: a home host has one or two global addresses. */
export const MAX_IPV6_CANDIDATES = 4
/** Of a peer's IPv6 candidates, how many are tried before its IPv4 ones (each costs an attempt of directTimeoutMs). */
export const IPV6_TRIES = 1

// The three prefixes below are tested on the address's first 16-bit groups: parsing them as CIDRs at load time ran
// ipaddr.js's IPv6 parser (compiling its regular expressions) at every client start, 3 ms of CPU (issue 16).
/** 2000::/3 */
const isGlobalUnicast = (parts: number[]): boolean => ((parts[0] ?? 0) & 0xe000) === 0x2000
/** 2002::/16 */
const isSixToFour = (parts: number[]): boolean => parts[0] === 0x2002
/** 2001::/32 */
const isTeredo = (parts: number[]): boolean => parts[0] === 0x2001 && parts[1] === 0

/** Why an address cannot be an IPv6 candidate, or undefined when it can. */
export function ipv6RejectReason (address: string, meshPrefixes: readonly Prefix[]): string | undefined {
  let ip: ipaddr.IPv4 | ipaddr.IPv6
  try { ip = parseIp(address) } catch { return 'not an IP address' }
  if (ip.kind() !== 'ipv6') return 'not an IPv6 address'
  const v6 = ip as ipaddr.IPv6
  if (!isGlobalUnicast(v6.parts)) return `not global unicast (${v6.range()})`
  if (isSixToFour(v6.parts)) return 'a 6to4 address'
  if (isTeredo(v6.parts)) return 'a Teredo address'
  if (meshPrefixes.some((p) => prefixHas(p, v6))) return 'inside the mesh'
  return undefined
}

/** A peer's announced IPv6 endpoints, vetted (see the module comment). Warnings name the dropped ones. */
export function vetIpv6Candidates (texts: readonly string[] | undefined, meshPrefixes: readonly Prefix[]): { endpoints: Endpoint[], warnings: string[] } {
  const endpoints: Endpoint[] = []
  const warnings: string[] = []
  const seen = new Set<string>()
  for (const text of texts ?? []) {
    if (endpoints.length >= MAX_IPV6_CANDIDATES) { warnings.push(`more than ${MAX_IPV6_CANDIDATES} IPv6 candidates; ignoring the rest`); break }
    let endpoint: Endpoint
    try { endpoint = parseEndpoint(text) } catch { warnings.push(`ignoring IPv6 candidate '${text}': not an endpoint`); continue }
    // `[::ffff:1.2.3.4]:p` parses as IPv4: only bracketed addresses that stay IPv6 count.
    const why = text.startsWith('[') ? ipv6RejectReason(endpoint.address, meshPrefixes) : 'not an IPv6 address'
    if (why !== undefined) { warnings.push(`ignoring IPv6 candidate '${text}': ${why}`); continue }
    const key = formatEndpoint(endpoint)
    if (seen.has(key)) continue
    seen.add(key)
    endpoints.push(endpoint)
  }
  return { endpoints, warnings }
}

/**
 * This host's own IPv6 candidates: its usable global IPv6 addresses (not on the WireGuard interface or loopback, not
 * tentative or deprecated, vetted as above) with the WireGuard port, in the kernel's order, at most MAX_IPV6_CANDIDATES.
 */
export function ownIpv6Endpoints (addresses: readonly NetlinkAddress[], opts: { iface: string, listenPort: number, meshPrefixes: readonly Prefix[] }): string[] {
  const out: string[] = []
  for (const a of addresses) {
    if (a.family !== 'IPv6' || a.ifname === opts.iface || a.ifname === 'lo' || a.scope !== 'global' || a.tentative || a.deprecated) continue
    if (ipv6RejectReason(a.address, opts.meshPrefixes) !== undefined) continue
    const text = formatEndpoint({ address: parseIp(a.address).toString(), port: opts.listenPort })
    if (!out.includes(text)) out.push(text)
  }
  return out.slice(0, MAX_IPV6_CANDIDATES)
}
