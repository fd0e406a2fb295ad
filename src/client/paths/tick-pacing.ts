/**
 * Pacing of the client's ticks (read the interface, vet, reconcile, apply) around registry table changes.
 *
 * While a mesh forms, every client announces its NAT (and its ready list) a few times, and each announcement is a
 * table change pushed to every other client: with N clients, each would tick N or more times in the first seconds,
 * each tick a `wg show` and a vetting, N² in all. Changes that arrive close together are worth one tick: a table
 * change ticks at once only if the last tick is at least {@link TABLE_TICK_GAP_MS} ago; otherwise it waits until
 * then, and whatever arrives meanwhile joins that tick. The first table, and a network change, never wait.
 */

/**
 * Least time between a tick and one started by a table change. A change waits at most this long (a peer's new
 * endpoint or "ready" is acted on within it); a burst of announcements costs at most a few ticks a second.
 */
export const TABLE_TICK_GAP_MS = 300

/**
 * A start-up read of the interface is reused by the first tick when it is at most this old: the first table then
 * costs no second `wg show` before the first attempts go out.
 */
export const START_DEVICE_MAX_AGE_MS = 1000

export interface TickPacingInput {
  nowMs: number
  /** When the previous tick started (0: none yet). */
  lastTickMs: number
  /** A table change is waiting to be vetted. */
  tableChanged: boolean
  /** This is the first table (nothing vetted yet): its attempts go out at once. */
  firstTable: boolean
  /** Our own network changed: acted on at once. */
  networkChanged: boolean
  /** When the tick would run anyway (its timer), absolute ms. */
  dueMs: number
}

/** How long to hold a tick that a wake-up asked for (0: run it now). Pure. */
export function tickHoldMs (input: TickPacingInput): number {
  if (!input.tableChanged || input.firstTable || input.networkChanged) return 0
  const at = Math.min(input.lastTickMs + TABLE_TICK_GAP_MS, input.dueMs)
  return Math.max(0, at - input.nowMs)
}

/**
 * A tick started only by a table change (its timer not due, our network unchanged) reuses the last read of the
 * interface when it is at most this old and nothing was written to the interface since: while a mesh forms, most
 * such ticks (other clients announcing their NAT, their ready lists) change nothing, and each `wg show` is a process
 * (through execa about 10 ms of the client's CPU, more on a busy machine). Such a tick decides as of the read's time,
 * so a handshake newer than the read is seen by the next timed tick, at most a second later, and no timer fires
 * early.
 */
export const TABLE_TICK_READ_MAX_AGE_MS = 1000

export interface InterfaceRead<D> {
  device: D
  /** When it was read. */
  atMs: number
  /** The count of writes to the interface when it was read. */
  writes: number
}

/** The read a tick may reuse instead of reading the interface again, or undefined (read it). Pure. */
export function reusableRead<D> (last: InterfaceRead<D> | undefined, input: { nowMs: number, tableOnly: boolean, writes: number }): InterfaceRead<D> | undefined {
  if (last === undefined || !input.tableOnly || last.writes !== input.writes) return undefined
  const age = input.nowMs - last.atMs
  return age >= 0 && age <= TABLE_TICK_READ_MAX_AGE_MS ? last : undefined
}

/**
 * When the next timed tick is due: its wait (nextTickMs) counted from the time the last tick decided as of, which
 * for a tick that reused an earlier read is that read's time, not now. Otherwise every table change (one a few
 * hundred ms while a mesh forms) would push the next fresh read back by a whole wait, and a handshake would be seen
 * seconds late. Never before `nowMs` minus the wait, so a clock that went back cannot make it due at once forever.
 * Pure.
 */
export function nextTickDueMs (input: { nowMs: number, decidedAtMs: number | undefined, waitMs: number }): number {
  const from = input.decidedAtMs === undefined ? input.nowMs : Math.min(input.nowMs, input.decidedAtMs)
  return Math.max(from, input.nowMs - TABLE_TICK_READ_MAX_AGE_MS) + input.waitMs
}
