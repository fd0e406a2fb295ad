/**
 * How often the NAT mapping is checked while every peer is parked on the hub (issue 18): nothing is direct, so a
 * mapping that moves breaks no path, and what it would delay (a peer that becomes reachable punching to our new
 * mapping) wakes the check at once anyway: a table change or a network change un-parks a peer, and the client then
 * checks again immediately and goes back to the usual interval. Meanwhile the hub learns a moved mapping from our
 * next packet to it, and the registry's answer (our endpoint as the hub sees it) wakes the check too. At 1,000
 * parked peers one check every 2 s (a STUN exchange, a raw receive socket opened for one round trip, the announcement
 * compared) was about a fifth of the client's CPU at rest.
 */
export const NAT_RECHECK_AT_REST_MS = 10_000

/**
 * The wait before the next NAT check: `recheckMs` as a rule, {@link NAT_RECHECK_AT_REST_MS} (if longer) while at
 * rest (every peer parked on the hub). Pure.
 */
export function natRecheckMs (recheckMs: number, atRest: boolean, restingMs = NAT_RECHECK_AT_REST_MS): number {
  return atRest ? Math.max(recheckMs, restingMs) : recheckMs
}
