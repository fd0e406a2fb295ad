/** Sources tracked by a rate limiter; past this the least recently seen is forgotten. Bounds memory under spoofing. */
export const RATE_LIMIT_MAX_SOURCES = 10_000

/**
 * Token bucket per source address: `ratePerSecond` tokens a second, up to `burst`.
 * Pure apart from the injected clock.
 */
export class SourceRateLimiter {
  private readonly buckets = new Map<string, { tokens: number, at: number }>()

  constructor (
    private readonly ratePerSecond: number,
    private readonly burst: number,
    private readonly now: () => number = Date.now,
    private readonly maxSources = RATE_LIMIT_MAX_SOURCES
  ) {}

  /** Take one token for `source`; false when its bucket is empty. */
  take (source: string): boolean {
    const now = this.now()
    const bucket = this.buckets.get(source)
    let tokens = this.burst
    if (bucket !== undefined) {
      tokens = Math.min(this.burst, bucket.tokens + (now - bucket.at) * this.ratePerSecond / 1000)
      this.buckets.delete(source) // re-inserted below: Map order becomes least recently seen first
    } else if (this.buckets.size >= this.maxSources) {
      const oldest = this.buckets.keys().next()
      if (oldest.done !== true) this.buckets.delete(oldest.value)
    }
    const allowed = tokens >= 1
    this.buckets.set(source, { tokens: allowed ? tokens - 1 : tokens, at: now })
    return allowed
  }

  get size (): number { return this.buckets.size }
}
