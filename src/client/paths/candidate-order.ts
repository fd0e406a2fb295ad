import { formatEndpoint, type Endpoint } from '../../shared/ip.js'
import { IPV6_TRIES } from './ipv6-candidates.js'
import type { DesiredPeer } from './vet-table.js'

/** What of this client the candidate order depends on. */
export interface SelfCandidates {
  /** We have a usable global IPv6 address (and announce it): only then are a peer's IPv6 candidates worth a try. */
  ipv6?: boolean
}

/**
 * Where to try a peer, best first. When both sides have IPv6: the peer's first IPV6_TRIES IPv6 candidates (no NAT
 * on the way: both stateful firewalls open to simultaneous handshakes from the WireGuard ports), then `v4`, the IPv4
 * ones in their usual order (reconcile's candidatesOf: LAN behind the same address, the port mapping, the endpoint the
 * hub sees).
 * An attempt that fails moves on to the next candidate; the hub carries the traffic meanwhile.
 */
export function orderCandidates (want: Pick<DesiredPeer, 'endpoint' | 'ipv6'>, self: SelfCandidates | undefined, v4: Endpoint[]): Endpoint[] {
  if (self?.ipv6 !== true || want.endpoint === null) return v4
  const v6 = (want.ipv6 ?? []).slice(0, IPV6_TRIES)
  if (v6.length === 0) return v4
  const first = new Set(v6.map(formatEndpoint))
  return [...v6, ...v4.filter((c) => !first.has(formatEndpoint(c)))]
}
