import { SourceRateLimiter } from '../../shared/rate-limiter.js'

/**
 * What one caller may take of the registry. A caller is a tunnel source address (connections) or the peer it
 * belongs to (requests, full tables): WireGuard vouches for both, so a peer cannot pose as many.
 */
export interface CallerLimitsInit {
  /**
   * Open TCP connections from one source address; more are closed at once, before any byte is read.
   * A client needs two (a long-poll and an announcement). @default 16
   */
  maxConnectionsPerSource: number
  /** Requests of one peer in progress at once (long-polls included); more get 429 at once. @default 4 */
  maxRequestsPerPeer: number
  /**
   * Full tables (a few MB at 10,000 peers) one peer may fetch: a token bucket of this many a minute, sustained...
   * A client fetches one at start, after a registry restart and after a failure. @default 6
   */
  fullFetchesPerMinute: number
  /** ...and in a burst. @default 6 */
  fullFetchBurst: number
}

export const DEFAULT_CALLER_LIMITS: CallerLimitsInit = {
  maxConnectionsPerSource: 16,
  maxRequestsPerPeer: 4,
  fullFetchesPerMinute: 6,
  fullFetchBurst: 6
}

/**
 * Per-caller counters of the registry: cheap checks made before any work, so one peer hammering the registry
 * costs it a map lookup per attempt and cannot take it from the others. Pure apart from the injected clock.
 */
export class CallerLimits {
  readonly limits: CallerLimitsInit
  private readonly connections = new Map<string, number>()
  private readonly requests = new Map<string, number>()
  private readonly fullFetches: SourceRateLimiter

  constructor (init: Partial<CallerLimitsInit> = {}, now: () => number = Date.now) {
    this.limits = { ...DEFAULT_CALLER_LIMITS, ...init }
    this.fullFetches = new SourceRateLimiter(this.limits.fullFetchesPerMinute / 60, this.limits.fullFetchBurst, now)
  }

  /** A connection from `source` opens: false when it must be closed at once. Call `closeConnection` when it closes. */
  openConnection (source: string): boolean {
    const n = this.connections.get(source) ?? 0
    if (n >= this.limits.maxConnectionsPerSource) return false
    this.connections.set(source, n + 1)
    return true
  }

  closeConnection (source: string): void {
    decrement(this.connections, source)
  }

  /** A request of `peer` begins: a release function, or undefined when the peer has too many in progress. */
  beginRequest (peer: string): (() => void) | undefined {
    const n = this.requests.get(peer) ?? 0
    if (n >= this.limits.maxRequestsPerPeer) return undefined
    this.requests.set(peer, n + 1)
    let released = false
    return () => {
      if (released) return
      released = true
      decrement(this.requests, peer)
    }
  }

  /** May `peer` have a full table now? Takes a token when it may. */
  takeFullFetch (peer: string): boolean {
    return this.fullFetches.take(peer)
  }

  /** Seconds until `peer` may fetch a full table again (for Retry-After). */
  get fullFetchRetryAfterS (): number {
    return Math.ceil(60 / this.limits.fullFetchesPerMinute)
  }

  /** Open connections and requests in progress, over all callers (for tests and status). */
  get load (): { connections: number, requests: number } {
    let connections = 0; let requests = 0
    for (const n of this.connections.values()) connections += n
    for (const n of this.requests.values()) requests += n
    return { connections, requests }
  }
}

function decrement (map: Map<string, number>, key: string): void {
  const n = (map.get(key) ?? 0) - 1
  if (n <= 0) map.delete(key)
  else map.set(key, n)
}
