import { formatEndpoint, parseIp, prefixHas, type Endpoint, type Prefix } from '../../shared/ip.js'
import type { Announce } from '../../shared/protocol.js'
import { PROTOCOL_LIMITS } from '../../shared/protocol.js'
import type { NetlinkAddress } from '../../shared/netlink-addresses.js'
import { classifyNat, type MappingSample } from './nat-classifier.js'
import type { StunProbeResult } from './stun-probe.js'
import { ownIpv6Endpoints } from '../paths/ipv6-candidates.js'

export interface DiscoveryInput {
  /** WireGuard's listen port: STUN leaves from it, and LAN candidates use it. */
  listenPort: number
  /** The interface's own addresses, from netlink. */
  addresses: NetlinkAddress[]
  /** The WireGuard interface (its addresses are tunnel addresses, not LAN candidates). */
  iface: string
  /** The mesh: addresses inside it are never LAN candidates. */
  meshPrefixes: Prefix[]
  /** How the hub's WireGuard sees us (the registry's `self.endpoint`), and the hub endpoint it was seen on. */
  hubView: { hub: Endpoint, mapped: Endpoint } | null
  /** What the STUN probe found; null when raw sockets are unavailable. */
  stun: StunProbeResult | null
}

export interface Discovery {
  announce: Announce
  /** Why the class is what it is, for logs and status. */
  reason: string
}

/**
 * What this client tells the registry about itself: its NAT class (from the mappings the hub's WireGuard and the
 * STUN servers saw for the WireGuard port), the STUN-mapped endpoint, its LAN endpoints (for peers behind the
 * same router) and its global IPv6 endpoints (for peers with IPv6 too). Pure: the probe and the address list are inputs.
 */
export function discover (input: DiscoveryInput): Discovery {
  const samples: MappingSample[] = [...(input.stun?.samples ?? [])]
  if (input.hubView !== null) samples.push({ server: formatEndpoint(input.hubView.hub), mapped: input.hubView.mapped })
  const localAddresses = input.addresses.map((a) => a.address)
  const result = classifyNat({ localPort: input.listenPort, localAddresses, samples })
  // The first server asked (the hub's own STUN) when it answered; otherwise whichever did.
  const stunMapped = input.stun?.samples[0]?.mapped
  return {
    announce: {
      natClass: result.natClass,
      mappedEndpoint: stunMapped === undefined ? null : formatEndpoint(stunMapped),
      lanEndpoints: lanEndpoints(input),
      ready: [],
      ...ipv6Field(input)
    },
    reason: input.stun === null ? `${result.reason} (no STUN: raw sockets unavailable)` : result.reason
  }
}

/** Our global IPv6 candidates (see ipv6-candidates.ts); the field is left out when there are none. */
function ipv6Field (input: DiscoveryInput): { ipv6Endpoints?: string[] } {
  const ipv6Endpoints = ownIpv6Endpoints(input.addresses, { iface: input.iface, listenPort: input.listenPort, meshPrefixes: input.meshPrefixes })
  return ipv6Endpoints.length === 0 ? {} : { ipv6Endpoints }
}

function lanEndpoints (input: DiscoveryInput): string[] {
  const out: string[] = []
  for (const a of input.addresses) {
    if (a.ifname === input.iface || a.ifname === 'lo' || a.scope !== 'global' || a.tentative || a.deprecated) continue
    const ip = parseIp(a.address)
    if (ip.range() === 'loopback' || input.meshPrefixes.some((p) => prefixHas(p, ip))) continue
    out.push(formatEndpoint({ address: ip.toString(), port: input.listenPort }))
  }
  return out.slice(0, PROTOCOL_LIMITS.maxCandidates)
}
