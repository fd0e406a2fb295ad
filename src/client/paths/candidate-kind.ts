import { formatEndpoint } from '../../shared/ip.js'
import type { DesiredPeer } from './vet-table.js'

/**
 * Which of a peer's candidates an endpoint is: `mapped` (its router's port mapping: PCP, NAT-PMP or UPnP), `ipv6`
 * (one of its global IPv6 addresses), `lan`
 * (an address on its own network, for peers behind the same router), `ipv4` (the public endpoint the hub and STUN
 * see). Null when the endpoint is none of them (WireGuard roamed, or the table moved on).
 */
export type CandidateKind = 'mapped' | 'ipv6' | 'lan' | 'ipv4'

export function candidateKind (want: Pick<DesiredPeer, 'endpoint' | 'candidates' | 'mapped' | 'ipv6'> | undefined, endpoint: string | null): CandidateKind | null {
  if (want === undefined || endpoint === null) return null
  if (want.mapped != null && formatEndpoint(want.mapped) === endpoint) return 'mapped'
  if (want.ipv6?.some((c) => formatEndpoint(c) === endpoint) === true) return 'ipv6'
  // The endpoint the hub sees before the LAN list: a host with a public address announces that same address as a LAN one.
  if (want.endpoint !== null && formatEndpoint(want.endpoint) === endpoint) return 'ipv4'
  if (want.candidates.some((c) => formatEndpoint(c) === endpoint)) return 'lan'
  return null
}

/** Words for the log and status line of an attempt on this kind of candidate. */
export function candidateReason (kind: CandidateKind | null): string {
  switch (kind) {
    case 'mapped': return 'mapped endpoint (the peer\'s router port mapping)'
    case 'ipv6': return 'IPv6 endpoint (global address, no NAT)'
    case 'lan': return 'LAN endpoint (same public address)'
    default: return 'endpoint from the registry'
  }
}
