import type { PeerTrack } from '../paths/reconcile.js'

/**
 * When NAT discovery (the raw-socket check, netlink, STUN from the WireGuard port) and port mapping start (issue 16):
 * once the first table's attempts have their answers (each peer direct, or its first attempt failed), and at the
 * latest this long after those attempts went out. Both need the first table (how the hub sees us), the first
 * attempts need nothing from them, and while a mesh forms they would take the CPU the attempts and the other
 * clients' starts need: at 8 clients starting at once on two cores, running them with the first attempts made the
 * last pair answer about 0.3-0.6 s later (BENCHMARKS.md). What waits is what they find: a LAN or IPv6 candidate, a
 * port mapping, the NAT class that tells a hard NAT's peers how to try; a pair that needs one of those (no direct
 * path otherwise) goes direct up to this much later at start-up, on the hub meanwhile where it relays.
 */
export const NAT_START_DEFER_MS = 2000

/** Is some peer still in its first attempt (arming or trying, never failed)? Pure; walks the tracks with forEach. */
export function firstAttemptsPending (tracks: ReadonlyMap<string, PeerTrack>): boolean {
  let pending = false
  tracks.forEach((t) => { if (!pending && t.failures === 0 && (t.phase === 'arming' || t.phase === 'trying')) pending = true })
  return pending
}
