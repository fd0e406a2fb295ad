import { messageOf } from '../../shared/errors.js'
import type { Logger } from '../../shared/log.js'
import type { PathReport, ReportPath } from '../../shared/protocol.js'
import { Wakeup } from '../../shared/sleep.js'
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
  send: (report: PathReport, signal: AbortSignal) => Promise<void>
  logger: Logger
  observer?: MeshObserver
}

/**
 * Tells the registry this client's path to every peer (POST /v1/report), for the hub's mesh view: when it changed
 * (checked every `minIntervalMs`) and at least every `refreshMs`. Never throws; a failed report is retried.
 */
export class PathReporter {
  private readonly abort = new AbortController()
  private readonly wakeup = new Wakeup()
  private loop: Promise<void> | undefined
  private last = ''
  private lastAtMs = 0
  private failures = 0

  constructor (private readonly init: PathReporterInit, private readonly c: PathReporterComponents) {}

  start (): void { this.loop = this.run() }

  async stop (): Promise<void> {
    this.abort.abort()
    this.wakeup.wake()
    await this.loop
  }

  private async run (): Promise<void> {
    const signal = this.abort.signal
    const minMs = this.init.minIntervalMs ?? REPORT_MIN_INTERVAL_MS
    const refreshMs = this.init.refreshMs ?? REPORT_REFRESH_MS
    let seen: number | undefined
    while (!signal.aborted) {
      const version = this.c.version?.()
      const refreshDue = Date.now() - this.lastAtMs >= refreshMs
      if (version !== undefined && version === seen && this.failures === 0 && !refreshDue) {
        await this.wakeup.wait(minMs, signal)
        continue
      }
      const report = reportOf(this.c.status())
      const text = JSON.stringify(report)
      if (text !== this.last || refreshDue) {
        try {
          await this.c.send(report, signal)
          this.last = text
          this.lastAtMs = Date.now()
          seen = version
          if (this.failures > 0) this.c.logger.info('path reports reach the registry again')
          this.failures = 0
        } catch (err) {
          if (signal.aborted) break
          this.c.observer?.registryError?.('report')
          if (this.failures === 0) this.c.logger.warn(`reporting paths to the registry failed, will retry: ${messageOf(err)}`)
          this.failures++
        }
      } else {
        seen = version
      }
      // After failures (a registry too old to take reports, say), back off: 2 s, 4 s, ... up to the refresh interval.
      await this.wakeup.wait(this.failures === 0 ? minMs : Math.min(refreshMs, minMs * 2 ** this.failures), signal)
    }
  }
}
