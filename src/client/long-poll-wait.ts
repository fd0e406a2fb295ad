import { MAX_WAIT_S } from '../shared/protocol.js'

/**
 * How long a long-poll asks the registry to hold it (issue 16). Each renewal of a long-poll costs the registry a
 * request (0.1–0.2 ms of its CPU at 10,000 peers, BENCHMARKS.md); a held one costs it nothing. So a client asks for
 * the longest hold the registry grants, and notices a dead or restarted hub through TCP keep-alive on the held
 * connection instead (LONG_POLL_KEEPALIVE_MS): the hub's kernel answers those probes, the registry never sees them.
 * A change is answered at once whatever the wait, so the wait does not delay a change.
 */

/** Longest hold asked for: the registry's cap (an older registry caps it at 60 or 300 s and answers then; that is fine). */
export const LONG_POLL_MAX_S = MAX_WAIT_S
/**
 * Shortest hold asked for. Each long-poll picks its hold at random between this and LONG_POLL_MAX_S, so clients
 * that started together (a hub reboot, a fleet rollout) spread their renewals over a minute within a few rounds
 * instead of renewing in one wave every few minutes.
 */
export const LONG_POLL_MIN_S = LONG_POLL_MAX_S - 60
/**
 * TCP keep-alive idle time on a long-poll's connection: the first probe leaves after 25 s without traffic, then
 * one a second, ten at most (libuv's interval and count), so a hub that is gone is noticed within about 35 s (a
 * whole-request deadline used to do it within 30 s) and a rebooted one at its first probe (its kernel answers RST).
 * 25 s is also what the renewals were: the probes keep the tunnel's NAT mapping to the hub warm as they did.
 * (Node's own agent would leave 1 s, its `keepAliveMsecs` for pooled sockets: a probe a second per client.)
 */
export const LONG_POLL_KEEPALIVE_MS = 25_000

/**
 * Seconds to hold the next long-poll: 0 when the interval is under a second (too short for one; the client then
 * polls after each interval), otherwise a random hold in [LONG_POLL_MIN_S, LONG_POLL_MAX_S]. Not capped by the
 * interval: with push a change arrives at once, and the keep-alive notices a dead hub (docs/protocol.md).
 */
export function longPollWaitS (intervalMs: number, random: () => number = Math.random): number {
  if (intervalMs < 1000) return 0
  const span = LONG_POLL_MAX_S - LONG_POLL_MIN_S
  return LONG_POLL_MIN_S + Math.min(span, Math.floor(random() * (span + 1)))
}
