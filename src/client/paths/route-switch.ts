import type { PeerChange, StagedSet } from '../../shared/wg.js'
import type { PeerTrack } from './reconcile.js'

/**
 * The switch of a healed pair from the hub to its direct path, on its own timer (issue 11: no loss on the way back).
 *
 * WireGuard's allowed IPs are both the routing table and the inbound filter: a packet is accepted only from the peer
 * that holds its inner source address. So while one side of a pair has moved the other's address to the direct peer
 * and the other side has not, each drops what the other sends, both ways (the first sends direct, the second's
 * direct peer does not hold that source; the second sends through the hub, the first's hub peer no longer holds
 * that source). Both sides must switch at one instant. reconcile() computes it alike on both sides (PROMOTE_DELAY_S
 * after the handshake's second, whichever side the handshake came from); this timer makes the `wg set` happen at
 * that instant, not at the next read of the interface (a read and a state-file write later, at the mercy of the
 * tick schedule), and the next tick records the new phase.
 */

/**
 * A pair that lost its direct path sits on the hub while WireGuard keeps retrying the probe's handshake (every 5 s,
 * for REKEY_ATTEMPT_TIME, 90 s): the first retry after the path heals completes it, on both sides at once. The
 * interface is read this often in that time, so both sides see the handshake well before the switch instant.
 */
export const HEALING_TICK_MS = 1000
/** How long after a lost path the hub phase is read every HEALING_TICK_MS: WireGuard's 90 s of retries and slack. */
export const HEALING_WATCH_MS = 95_000
/** The tick after a timed switch comes this long after it: the switch is on the interface when it reads it. */
export const SWITCH_SETTLE_MS = 150
/**
 * The switch's `wg` is started this long before the instant and waits on its stdin (WgControl.stage): starting a
 * process takes from a few to a few hundred milliseconds depending on the load, and each side of the pair would
 * switch that much late, by different amounts. At the instant only a write is left.
 */
export const STAGE_AHEAD_MS = 1000

/** The read interval a hub-phase peer asks for while it may heal by WireGuard's own retries; undefined: none. */
export function healingTickMs (track: PeerTrack, nowMs: number): number | undefined {
  if (track.phase !== 'hub' || track.lostAtMs === undefined || (track.promoteAtMs ?? 0) > 0) return undefined
  return nowMs - track.lostAtMs < HEALING_WATCH_MS ? HEALING_TICK_MS : undefined
}

export interface PlannedSwitch {
  publicKey: string
  atMs: number
  change: PeerChange
}

/**
 * Pure: the switches due, from the tracks reconcile() left: every trying or hub peer with a switch instant gets its
 * allowed IPs (and its keepalive, which a hub-phase peer has off) at that instant.
 */
export function plannedSwitches (tracks: ReadonlyMap<string, PeerTrack>, desired: ReadonlyMap<string, { allowedIps: string[] }> | null, keepaliveS: number): PlannedSwitch[] {
  const out: PlannedSwitch[] = []
  if (desired === null) return out
  // forEach: this runs every tick over every peer, cold at rest, where a for-of allocates per peer (issue 16).
  tracks.forEach((t, publicKey) => {
    const atMs = t.promoteAtMs ?? 0
    const want = desired.get(publicKey)
    if (atMs <= 0 || want === undefined || (t.phase !== 'trying' && t.phase !== 'hub')) return
    out.push({ publicKey, atMs, change: { publicKey, allowedIps: want.allowedIps, persistentKeepalive: keepaliveS } })
  })
  return out
}

export interface RouteSwitchTimerComponents {
  /** Apply the changes to the interface (one `wg set`). */
  apply: (changes: PeerChange[]) => Promise<void>
  /** Make the changes ready to apply at once (WgControl.stage); undefined: not supported, `apply` at the instant. */
  stage?: (changes: PeerChange[]) => StagedSet | undefined
  /** Called after each switch, applied or not: the next read of the interface records (or retries) it. */
  done: (err?: unknown) => void
  /** @default Date.now */
  nowMs?: () => number
}

/**
 * Keeps one timer per planned switch; re-planning with the same instant keeps the timer, a new instant re-arms it.
 * STAGE_AHEAD_MS before the instant the change is staged; at the instant it is committed (or applied, unstaged).
 */
export class RouteSwitchTimer {
  private readonly timers = new Map<string, { atMs: number, timer: NodeJS.Timeout, staged?: StagedSet }>()
  private readonly nowMs: () => number
  private stopped = false

  constructor (private readonly components: RouteSwitchTimerComponents) {
    this.nowMs = components.nowMs ?? Date.now
  }

  /** Arm the switches planned now; cancel the ones no longer planned. */
  plan (switches: PlannedSwitch[]): void {
    if (this.stopped) return
    const keep = new Set<string>()
    for (const s of switches) {
      keep.add(s.publicKey)
      const armed = this.timers.get(s.publicKey)
      if (armed?.atMs === s.atMs) continue
      if (armed !== undefined) this.cancel(s.publicKey)
      const entry: { atMs: number, timer: NodeJS.Timeout, staged?: StagedSet } = { atMs: s.atMs, timer: setTimeout(() => { this.stage(s, entry) }, Math.max(0, s.atMs - STAGE_AHEAD_MS - this.nowMs())) }
      this.timers.set(s.publicKey, entry)
    }
    for (const key of [...this.timers.keys()]) if (!keep.has(key)) this.cancel(key)
  }

  /** Instants of the armed switches, by key (status, tests). */
  armed (): Map<string, number> {
    return new Map([...this.timers].map(([k, v]) => [k, v.atMs]))
  }

  stop (): void {
    this.stopped = true
    for (const key of [...this.timers.keys()]) this.cancel(key)
  }

  private cancel (key: string): void {
    const armed = this.timers.get(key)
    if (armed === undefined) return
    clearTimeout(armed.timer)
    armed.staged?.cancel()
    this.timers.delete(key)
  }

  private stage (s: PlannedSwitch, entry: { atMs: number, timer: NodeJS.Timeout, staged?: StagedSet }): void {
    try {
      entry.staged = this.components.stage?.([s.change])
    } catch {
      entry.staged = undefined
    }
    entry.timer = setTimeout(() => { this.fire(s, entry) }, Math.max(0, s.atMs - this.nowMs()))
  }

  private fire (s: PlannedSwitch, entry: { staged?: StagedSet }): void {
    // Fired: the entry stays (a later plan() for the same instant must not arm it again; the next tick sees the
    // routes on and drops it), without anything left to cancel.
    const staged = entry.staged
    entry.staged = undefined
    const applied = staged === undefined
      ? this.components.apply([s.change])
      : staged.commit().catch(async () => { await this.components.apply([s.change]) })
    applied.then(() => { this.components.done() }, (err: unknown) => { this.components.done(err) })
  }
}
