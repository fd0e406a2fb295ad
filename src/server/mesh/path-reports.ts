import type { PathReport, ReportPath } from '../../shared/protocol.js'

/** A report older than this is stale (clients send one at least every REPORT_REFRESH_MS, 60 s): shown as unknown. */
export const REPORT_STALE_S = 180

export interface StoredReport {
  /** Hub's clock, unix seconds, when the report arrived. */
  atS: number
  /** Peer key -> what the reporter says about its path to that peer. */
  peers: Map<string, { path: ReportPath, endpoint: string | null }>
}

/**
 * The latest path report of each peer, keyed by the reporter's key (taken from its tunnel source address, never
 * from the body: a client can only report about itself). Entries about the reporter itself are dropped.
 */
export class PathReports {
  private readonly byReporter = new Map<string, StoredReport>()

  put (reporter: string, report: PathReport, nowS: number): void {
    const peers = new Map<string, { path: ReportPath, endpoint: string | null }>()
    for (const p of report.peers) if (p.publicKey !== reporter) peers.set(p.publicKey, { path: p.path, endpoint: p.endpoint })
    this.byReporter.set(reporter, { atS: nowS, peers })
  }

  get (reporter: string): StoredReport | undefined { return this.byReporter.get(reporter) }

  /** Forget reporters that are no longer peers. */
  retain (keys: ReadonlySet<string>): void {
    for (const k of this.byReporter.keys()) if (!keys.has(k)) this.byReporter.delete(k)
  }
}
