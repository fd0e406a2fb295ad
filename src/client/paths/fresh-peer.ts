import type { WgPeer } from '../../shared/wg-dump.js'
import type { CandidateKind } from './candidate-kind.js'

/**
 * WireGuard sends no handshake initiation to a peer within REKEY_TIMEOUT (5 s) of its last one, whatever the
 * endpoint (wireguard-go's SendHandshakeInitiation; the kernel likewise), and it retransmits a pending one every 5 s
 * for 90 s. So the kick of an attempt (keepalive off and on) that follows an earlier attempt sends nothing: the first
 * initiation to the new endpoint leaves with the next retransmit, up to 5 s later. That is where an IPv6 attempt lost
 * its time: both sides first try the peer's IPv4 endpoint (before either knows the other's IPv6 addresses), then
 * switch to IPv6 within a second, and both sides' initiations were held back 5 s.
 *
 * A peer removed and added again in the same `wg set` is a new peer to WireGuard: no last initiation, so turning its
 * keepalive on sends one at once. Behind a stateful IPv6 firewall that is what opens it: the first side's initiation
 * is dropped by the far firewall but opens its own, and the second side's (sent the moment it switches) gets through.
 * Re-adding costs nothing here: a peer being tried carries no session yet and no allowed IPs we need (they are
 * written back with it). Never for a peer with a preshared key (we do not hold it).
 *
 * Only for IPv6 candidates: IPv4 attempts keep their behaviour and timings (issue 17 follow-up, measured for IPv6).
 */
export function needsFreshPeer (kind: CandidateKind | null, onDevice: Pick<WgPeer, 'hasPresharedKey'> | undefined): boolean {
  return kind === 'ipv6' && onDevice !== undefined && !onDevice.hasPresharedKey
}
