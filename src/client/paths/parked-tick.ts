import type { PeerTrack } from './reconcile.js'
import { healingTickMs } from './route-switch.js'

/**
 * Read interval of the interface when every managed peer is parked on the hub: its attempts failed as often as they
 * may (retryAtMs = +Infinity), no healing watch, no switch instant, nothing to wait for (issue 18). Such a read only
 * catches what changed behind the client's back without telling it: a peer removed or altered by hand, a handshake a
 * peer started without announcing it. Everything else wakes the client at once: a table change pushed by the registry
 * (a peer's new endpoint, candidates or "ready for us"), a network change (netlink, or the NAT check every 2 s seeing
 * a new mapping), a restarted interface (netlink). At 1,000 peers one read costs about 50 ms of CPU (starting `wg`,
 * parsing its dump, garbage): every 10 s that was a quarter of the client's CPU at rest, every 30 s it is a twelfth.
 */
export const PARKED_TICK_MS = 30_000

/** Is this peer parked: on the hub with no retry ever due, not watched for healing, no switch instant? Pure. */
export function isParked (t: PeerTrack, nowMs: number): boolean {
  return t.phase === 'hub' && !Number.isFinite(t.retryAtMs) && (t.promoteAtMs ?? 0) <= 0 && healingTickMs(t, nowMs) === undefined
}

/**
 * The longest wait before the next read of the interface: `quietMs` as a rule, {@link PARKED_TICK_MS} (if longer)
 * when there are peers and every one is parked. Pure; what is due sooner is the caller's minimum over the tracks.
 */
export function restingTickMs (tracks: Tracks, nowMs: number, quietMs: number): number {
  return allParked(tracks, nowMs) ? Math.max(quietMs, PARKED_TICK_MS) : quietMs
}

/**
 * Tracks as a Map or an array: walked with forEach, which allocates nothing per peer, where a for-of over a Map's
 * values allocates an iterator result per peer in code this cold (it runs every tick, every 30 s at rest; issue 16).
 */
export interface Tracks { forEach: (fn: (t: PeerTrack) => void) => void }

/** Are there peers, and is every one parked ({@link isParked})? Pure. */
export function allParked (tracks: Tracks, nowMs: number): boolean {
  let any = false
  let all = true
  tracks.forEach((t) => {
    any = true
    if (all && !isParked(t, nowMs)) all = false
  })
  return any && all
}
