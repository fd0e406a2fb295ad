import type { WgPeer } from '../../shared/wg-dump.js'

/**
 * Two handshake initiations that cross on the wire stall a pair for 5 s.
 *
 * WireGuard keeps one handshake state per peer. When both sides of a pair send an initiation before either has
 * received the other's (both start their attempts at the same moment: the registry pushes a change to everyone at
 * once, and retries fall on slots both sides compute alike), each side answers the other's initiation, which
 * replaces its own pending one, and then drops the answer to its own as stale (wireguard-go's
 * ConsumeMessageResponse; the kernel's noise.c likewise). Neither side holds a session, and neither sends again
 * before its retransmit, REKEY_TIMEOUT (5 s) later. Measured between two wireguard-go in the lab: 4 to 6 of 8
 * simultaneous starts stalled 5.1 s; the others took 20 ms.
 *
 * What a side sees then: bytes from the peer (its initiation, 148 bytes) and no handshake. Answering an initiation
 * normally ends in a handshake within a round trip, when the initiator's first packet confirms the session. So a
 * side that heard from the peer during an attempt and has no handshake `CROSSED_WAIT_MS` later re-initiates: the
 * peer is removed and added back as it is, in one `wg set`, and its keepalive makes WireGuard send a fresh
 * initiation at once (a new peer has no 5 s hold). The other side is answering, not initiating (its own next
 * initiation is its retransmit, seconds away), so this one completes within a round trip (20 ms in the lab).
 *
 * Only one side should do it, or the two fresh initiations cross again: the side whose public key sorts first. The
 * other side does it after `CROSSED_WAIT_OTHER_MS`, for a peer that does not (an older wgnat, wg-nat). At most
 * `MAX_REINITIATIONS` per attempt. Never for a peer with a preshared key (we do not hold it).
 */
export const CROSSED_WAIT_MS = 250
export const CROSSED_WAIT_OTHER_MS = 1000
export const MAX_REINITIATIONS = 2

export interface CrossedInput {
  nowMs: number
  selfKey: string
  peerKey: string
  /** When a read last found more bytes from the peer than before, in this attempt since its last re-initiation (undefined: none). */
  heardAtMs: number | undefined
  /** Re-initiations in this attempt so far. */
  reinitiations: number
  onDevice: Pick<WgPeer, 'hasPresharedKey'>
}

/** Is this side the one that re-initiates first (its public key sorts first)? Both sides compute it alike. */
export function reinitiatesFirst (selfKey: string, peerKey: string): boolean {
  return selfKey < peerKey
}

/** Did this attempt's initiations cross (heard from the peer, no handshake since), and is it this side's turn? Pure. */
export function crossedHandshakes (input: CrossedInput): boolean {
  if (input.onDevice.hasPresharedKey || input.reinitiations >= MAX_REINITIATIONS || input.heardAtMs === undefined) return false
  const wait = reinitiatesFirst(input.selfKey, input.peerKey) ? CROSSED_WAIT_MS : CROSSED_WAIT_OTHER_MS
  return input.nowMs - input.heardAtMs >= wait
}
