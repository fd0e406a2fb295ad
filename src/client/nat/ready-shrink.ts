import type { Announce } from '../../shared/protocol.js'

/**
 * An announcement whose only change is peers leaving the ready list (their attempts ended: direct, or back on the
 * hub) tells the others nothing they act on at once, yet each announcement is a table change pushed to every other
 * client. While a mesh forms every client would send one per peer that turns direct: N² table changes. Such an
 * announcement waits up to this long, and any other change (a new mapping, a peer being attempted) takes it along.
 */
export const READY_SHRINK_HOLD_MS = 2000

/** Is `next` the same as `last` but for fewer peers in `ready`? Pure. */
export function onlyReadyShrank (last: Announce | undefined, next: Announce): boolean {
  if (last === undefined) return false
  const { ready: lastReady, ...lastRest } = last
  const { ready: nextReady, ...nextRest } = next
  if (JSON.stringify(lastRest) !== JSON.stringify(nextRest)) return false
  if (nextReady.length >= lastReady.length) return false
  const was = new Set(lastReady)
  return nextReady.every((k) => was.has(k))
}
