import { messageOf } from '../../shared/errors.js'
import type { Logger } from '../../shared/log.js'
import type { PathReport, ReportPath } from '../../shared/protocol.js'
import { RepeatingTask } from '../../shared/repeating-task.js'
import type { MeshObserver } from './mesh-observer.js'
import type { ClientStatus, PathStatus } from './status.js'

/** Shortest time between two reports: a burst of path changes becomes one report. */
export const REPORT_MIN_INTERVAL_MS = 1000
/** A report goes out at least this often, so the hub can tell a silent client from a stale one (REPORT_STALE_S). */
export const REPORT_REFRESH_MS = 60_000

const REPORT_PATH: Record<PathStatus, ReportPath> = { direct: 'direct', 'via hub': 'hub', trying: 'trying', unreachable: 'unreachable' }

/** The report for a status: every peer's path and the endpoint used for it. Pure. */
export function reportOf (status: ClientStatus): PathReport {
  return { peers: status.peers.map((p) => ({ publicKey: p.publicKey, path: REPORT_PATH[p.path], endpoint: p.path === 'direct' || p.path === 'trying' ? p.endpoint : null })) }
}

export interface PathReporterInit {
  minIntervalMs?: number
  refreshMs?: number
}

export interface PathReporterComponents {
  status: () => ClientStatus
  /**
   * Changes whenever a peer's path or endpoint may have changed. When given, the status (every peer, sorted) is built
   * and compared only after it changed or when a refresh is due: with 10,000 peers that is a megabyte of JSON a second
   * saved while nothing happens.
   */
  version?: () => number
  /**
   * With `version`: the caller calls {@link PathReporter.changed} whenever the version changes, so the reporter
   * sleeps until a refresh is due instead of looking at the version every `minIntervalMs`. @default false
   */
  notified?: boolean
  send: (report: PathReport, signal: AbortSignal) => Promise<void>
  logger: Logger
  observer?: MeshObserver
}

/**
 * Tells the registry this client's path to every peer (POST /v1/report), for the hub's mesh view: when it changed
 * (checked every `minIntervalMs`) and at least every `refreshMs`. Never throws; a failed report is retried.
 */
export class PathReporter {
  private readonly task: RepeatingTask
  private last = ''
  private lastAtMs = Number.NEGATIVE_INFINITY
  private failures = 0
  /** After a failed report: not before this (Date.now()), whatever changes meanwhile. */
  private retryAtMs = 0
  /** The version last reported (or found unchanged). */
  private seen: number | undefined

  constructor (private readonly init: PathReporterInit, private readonly c: PathReporterComponents) {
    this.task = new RepeatingTask({ round: async (signal) => await this.round(signal), onError: (err) => {
      this.c.logger.warn(`building the path report failed, will retry: ${messageOf(err)}`)
      return this.init.refreshMs ?? REPORT_REFRESH_MS
    } })
  }

  start (): void { this.task.start() }

  /** A path or endpoint may have changed (the version moved): report soon, within `minIntervalMs` of the last report. */
  changed (): void { this.task.wake() }

  async stop (): Promise<void> { await this.task.stop() }

  /** One look: report if something changed or a refresh is due; resolves to the wait before the next look. */
  private async round (signal: AbortSignal): Promise<number> {
    const minMs = this.init.minIntervalMs ?? REPORT_MIN_INTERVAL_MS
    const refreshMs = this.init.refreshMs ?? REPORT_REFRESH_MS
    const version = this.c.version?.()
    const sinceMs = Date.now() - this.lastAtMs
    const refreshDue = sinceMs >= refreshMs
    if (version !== undefined && version === this.seen && this.failures === 0 && !refreshDue) {
      // Nothing changed: told of changes, sleep until the refresh; else look again after minMs.
      return this.c.notified === true ? refreshMs - sinceMs : minMs
    }
    // A burst of changes becomes one report: at most one every minMs; after failures, keep to the backoff.
    if (this.failures > 0 && Date.now() < this.retryAtMs) return this.retryAtMs - Date.now()
    if (sinceMs < minMs && this.failures === 0) return minMs - sinceMs
    const report = reportOf(this.c.status())
    const text = JSON.stringify(report)
    if (text !== this.last || refreshDue) {
      try {
        await this.c.send(report, signal)
        this.last = text
        this.lastAtMs = Date.now()
        this.seen = version
        if (this.failures > 0) this.c.logger.info('path reports reach the registry again')
        this.failures = 0
      } catch (err) {
        if (signal.aborted) return 0
        this.c.observer?.registryError?.('report')
        if (this.failures === 0) this.c.logger.warn(`reporting paths to the registry failed, will retry: ${messageOf(err)}`)
        this.failures++
      }
    } else {
      this.seen = version
    }
    // After failures (a registry too old to take reports, say), back off: 2 s, 4 s, ... up to the refresh interval.
    if (this.failures > 0) {
      const backoffMs = Math.min(refreshMs, minMs * 2 ** this.failures)
      this.retryAtMs = Date.now() + backoffMs
      return backoffMs
    }
    return this.c.notified === true && version !== undefined ? Math.max(minMs, refreshMs - (Date.now() - this.lastAtMs)) : minMs
  }
}
