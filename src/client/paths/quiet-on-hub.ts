import type { WgPeer } from '../../shared/wg-dump.js'
import type { PeerTrack } from './reconcile.js'
import type { DesiredPeer } from './vet-table.js'

export interface QuietInput {
  nowMs: number
  /** The peer's candidates as one string now (null: none), and both sides' NAT classes now ("self/peer"). */
  targets: string | null
  classes: string
  /** Coordinated punching is on (the peer's "ready for us" may start an attempt). */
  punching: boolean
  /** WireGuard's handshake times are whole seconds: a handshake this much before the phase began still counts. */
  handshakeSlackMs: number
}

/**
 * Is this a peer waiting on the hub with nothing to do this round: no retry due, no handshake since it went back to
 * the hub, nothing received, and nothing new from the registry (candidates, NAT classes, "ready for us")? Then
 * reconcile keeps its track as it is, the same object, without working through the path machine: with 1,000 or
 * 10,000 peers parked on the hub that is nearly every peer on nearly every read. Anything else (or a network change,
 * which the caller checks) goes the full way. Pure.
 */
export function quietOnHub (old: PeerTrack, onDevice: WgPeer, want: DesiredPeer, q: QuietInput): boolean {
  if (old.phase !== 'hub' || q.nowMs >= old.retryAtMs) return false
  if (onDevice.transferRx !== old.rx) return false
  if (onDevice.latestHandshake > 0 && onDevice.latestHandshake * 1000 >= old.sinceMs - q.handshakeSlackMs) return false
  if (q.targets !== null && q.targets !== old.targets) return false
  if (old.classes !== undefined && old.classes !== q.classes) return false
  if ((old.readySeen ?? false) !== want.readyFor) return false
  return !(q.punching && want.readyFor && old.readySeen !== true)
}
