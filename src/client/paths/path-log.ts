import type { PathEvent, PathPhase } from './reconcile.js'

/**
 * What the client says about paths, so that a person can read it with 1,000 peers: a path change (a peer gaining or
 * losing its direct path, a peer removed) once, at info; attempts and their failures at debug only, counted and
 * summed up in at most one info line a minute, and only in a minute where something happened. Pure: the caller
 * logs what it returns.
 */
export interface PathLogLine { level: 'info' | 'debug', text: string }

/** At most one summary line per this long. */
export const SUMMARY_EVERY_MS = 60_000

/** An event worth a line at info: the path a peer's traffic takes changed, or the peer is gone. */
export function isPathChange (e: PathEvent): boolean {
  return e.to === 'direct' || e.from === 'direct' || e.to === 'removed'
}

export class PathLog {
  private attempts = 0
  private failed = 0
  private changed = 0
  private lastSummaryMs: number

  constructor (nowMs: number) { this.lastSummaryMs = nowMs }

  /** Count the events of one reconcile; returns the info-level ones (path changes) and the rest at debug. */
  record (events: PathEvent[]): PathEvent[] {
    const changes: PathEvent[] = []
    for (const e of events) {
      if (e.to === 'trying' || e.to === 'arming') this.attempts++
      if (e.from === 'trying' && e.to === 'hub') this.failed++
      if (isPathChange(e)) { this.changed++; changes.push(e) }
    }
    return changes
  }

  /**
   * The summary line, when a minute has passed since the last one and something happened in it; else null. `tracks`
   * (the client's Map of them) are read only then, walked with forEach: nothing is built per tick.
   */
  summary (nowMs: number, tracks: { forEach: (fn: (t: { phase: PathPhase }) => void) => void }): string | null {
    if (nowMs - this.lastSummaryMs < SUMMARY_EVERY_MS) return null
    const quiet = this.attempts === 0 && this.failed === 0 && this.changed === 0
    const minutes = Math.max(1, Math.round((nowMs - this.lastSummaryMs) / 60_000))
    const counts = { direct: 0, hub: 0, trying: 0 }
    tracks.forEach(({ phase: p }) => {
      if (p === 'direct') counts.direct++
      else if (p === 'hub') counts.hub++
      else counts.trying++
    })
    const text = `${counts.direct} peers direct, ${counts.hub} via hub, ${counts.trying} trying; ` +
      `${minutes === 1 ? 'this minute' : `these ${minutes} minutes`}: ${this.attempts} attempts, ${this.failed} failed, ${this.changed} path changes`
    this.lastSummaryMs = nowMs
    this.attempts = 0; this.failed = 0; this.changed = 0
    return quiet ? null : text
  }
}
