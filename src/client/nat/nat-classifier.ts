/**
 * Pure NAT classification from mapping samples: what public endpoint did each STUN server see
 * for our WireGuard port? No I/O; the probe loop gathers the samples.
 */
import ipaddr from 'ipaddr.js'

/** How reachable we are from outside, by the behaviour of our NAT's mapping. */
export const NatClass = {
  /** No NAT: servers see our own address and port. */
  PUBLIC: 'public',
  /** Endpoint-independent mapping: every destination sees the same public endpoint, so peers can punch to it. */
  EASY: 'easy',
  /** Mapping depends on the destination (symmetric NAT): the endpoint a server sees is useless to a peer. */
  HARD: 'hard',
  /** Not enough evidence to tell. */
  UNKNOWN: 'unknown'
} as const
export type NatClass = typeof NatClass[keyof typeof NatClass]

export interface Endpoint {
  address: string
  port: number
}

export interface MappingSample {
  /** 'host:port' of the server that observed the mapping. */
  server: string
  /** Our address and port as that server saw them. */
  mapped: Endpoint
}

export interface NatClassifierInput {
  /** The local UDP port the samples were sent from (WireGuard's listenPort). */
  localPort: number
  /** Addresses of this host's interfaces. */
  localAddresses: string[]
  samples: MappingSample[]
}

export interface NatClassification {
  natClass: NatClass
  /** One short sentence saying why, for logs and status. */
  reason: string
  /** The endpoint peers should use: set when natClass is public or easy. */
  publicEndpoint?: Endpoint
}

/**
 * Classify the NAT in front of us.
 *
 * - no samples: unknown;
 * - every sample shows a local address and the local port: public;
 * - samples disagree on the mapping: hard;
 * - at least two distinct servers agree on one mapping: easy;
 * - otherwise (one server only): unknown.
 */
export function classifyNat (input: NatClassifierInput): NatClassification {
  const { localPort, samples } = input
  const first = samples[0]
  if (first === undefined) {
    return { natClass: NatClass.UNKNOWN, reason: 'no mapping samples yet' }
  }
  const servers = new Set(samples.map(s => s.server))
  const seenBy = `${servers.size} server${servers.size === 1 ? '' : 's'}`

  const local = new Set(input.localAddresses.map(normalizeAddress))
  const isPublic = samples.every(s => s.mapped.port === localPort && local.has(normalizeAddress(s.mapped.address)))
  if (isPublic) {
    return {
      natClass: NatClass.PUBLIC,
      reason: `mapping ${formatEndpoint(first.mapped)} is the local endpoint (seen by ${seenBy})`,
      publicEndpoint: { ...first.mapped }
    }
  }

  const mappings = new Map<string, string[]>() // endpoint -> servers that saw it
  for (const { server, mapped } of samples) {
    const key = formatEndpoint(mapped)
    const seen = mappings.get(key) ?? []
    if (!seen.includes(server)) seen.push(server)
    mappings.set(key, seen)
  }
  if (mappings.size > 1) {
    const shown = [...mappings].slice(0, 3).map(([endpoint, by]) => `${endpoint} via ${by.join(', ')}`)
    const more = mappings.size > 3 ? `, and ${mappings.size - 3} more` : ''
    return {
      natClass: NatClass.HARD,
      reason: `mapping differs by destination: ${shown.join('; ')}${more}`
    }
  }

  const endpoint = formatEndpoint(first.mapped)
  if (servers.size >= 2) {
    return {
      natClass: NatClass.EASY,
      reason: `same mapping ${endpoint} seen by ${seenBy}`,
      publicEndpoint: { ...first.mapped }
    }
  }
  return {
    natClass: NatClass.UNKNOWN,
    reason: `only one server (${first.server}) saw mapping ${endpoint}: need two to tell easy from hard`
  }
}

/** 'a.b.c.d:port' or '[v6]:port'. */
function formatEndpoint ({ address, port }: Endpoint): string {
  const normalized = normalizeAddress(address)
  return normalized.includes(':') ? `[${normalized}]:${port}` : `${normalized}:${port}`
}

/** One spelling per address: IPv4-mapped IPv6 as IPv4, IPv6 in RFC 5952 form. Anything unparsable is kept as is. */
function normalizeAddress (address: string): string {
  return ipaddr.isValid(address) ? ipaddr.process(address).toString() : address
}
