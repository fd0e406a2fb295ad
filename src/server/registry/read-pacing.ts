/**
 * When the registry reads its interface next (issue 16). A read of a 10,000-peer wireguard-go interface costs about
 * 90 ms of CPU (starting `wg` from a big process, `wg` itself, comparing its 10,000 lines), so reading it every second
 * is 9 % of a core for a table that almost never changes. The registry reads a big interface less often while nothing
 * suggests a change, and once a `pollMs` when something does:
 * - idle: every `pollMs` per {@link IDLE_READ_PEERS_PER_POLL} peers, at most {@link MAX_IDLE_READ_POLLS} `pollMs`
 *   (with the default `--poll` of 1 s: every second up to 500 peers, 2 s up to 1,000, 20 s from 9,501 peers on).
 *   A read's cost grows with the peers, so idle reads cost about the same at any size: about 0.5 % of a core,
 *   `wg` included (measured at 10,000 peers, BENCHMARKS.md);
 * - prompted (a peer changed its announcement, asked for the full table, or made a request while the table shows it
 *   offline or without an endpoint: each means its packets reach the hub from where the table may not know yet, a
 *   client starting, moving or coming up): `pollMs` after the start of the last read, at once if that is past.
 * Pure: the service keeps the clock and the timer.
 */

/** Peers that add one `pollMs` to the idle interval: up to this many, the interface is read every `pollMs`. */
export const IDLE_READ_PEERS_PER_POLL = 500
/** The idle interval is at most this many `pollMs` (20 s with the default 1 s). */
export const MAX_IDLE_READ_POLLS = 20

/** The interval between reads while nothing prompts one, for an interface of `peers` peers. */
export function idleReadMs (peers: number, pollMs: number): number {
  const polls = Math.min(MAX_IDLE_READ_POLLS, Math.max(1, Math.ceil(peers / IDLE_READ_PEERS_PER_POLL)))
  return polls * pollMs
}

export interface ReadPacing {
  /** When the last read started (ms, any clock); undefined before the first. */
  lastReadAt: number | undefined
  now: number
  /** Something since the last read started suggests the interface changed. */
  prompted: boolean
  /** The idle interval in force (see idleReadMs). */
  idleMs: number
  pollMs: number
}

/** How long from `now` until the next read should start (0: at once). Reads start at least `pollMs` apart. */
export function nextReadDelay (p: ReadPacing): number {
  if (p.lastReadAt === undefined) return 0
  const interval = p.prompted ? p.pollMs : Math.max(p.pollMs, p.idleMs)
  return Math.max(0, p.lastReadAt + interval - p.now)
}
