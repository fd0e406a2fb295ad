/**
 * Held long-polls by the second their deadline falls in, so the registry's once-a-second sweep looks only at the
 * seconds that have passed instead of walking every waiter (0.67 ms a second at 10,000 held polls, issue 16).
 * Pure: callers pass the time.
 */
export class WaiterWheel<T extends { readonly deadline: number }> {
  private readonly buckets = new Map<number, Set<T>>()
  private count = 0

  /** @param bucketMs the width of one bucket: the sweep's interval. */
  constructor (private readonly bucketMs: number) {}

  get size (): number { return this.count }

  add (waiter: T): void {
    const key = this.keyOf(waiter.deadline)
    let bucket = this.buckets.get(key)
    if (bucket === undefined) { bucket = new Set(); this.buckets.set(key, bucket) }
    if (bucket.has(waiter)) return
    bucket.add(waiter)
    this.count++
  }

  /** Forget `waiter` (an aborted wait); false when it was not there. */
  delete (waiter: T): boolean {
    const key = this.keyOf(waiter.deadline)
    const bucket = this.buckets.get(key)
    if (bucket === undefined || !bucket.delete(waiter)) return false
    this.count--
    if (bucket.size === 0) this.buckets.delete(key)
    return true
  }

  /** Remove and return every waiter whose deadline is at or before `now`, earliest seconds first. */
  takeExpired (now: number): T[] {
    const out: T[] = []
    const last = this.keyOf(now)
    // At most one key per second of the longest hold (MAX_WAIT_S: 900), not one per waiter.
    const due = [...this.buckets.keys()].filter((k) => k <= last).sort((a, b) => a - b)
    for (const key of due) {
      const bucket = this.buckets.get(key) as Set<T>
      for (const w of bucket) {
        if (w.deadline > now) continue
        bucket.delete(w)
        out.push(w)
      }
      if (bucket.size === 0) this.buckets.delete(key)
    }
    this.count -= out.length
    return out
  }

  /** Remove and return every waiter. */
  takeAll (): T[] {
    const out: T[] = []
    for (const bucket of this.buckets.values()) for (const w of bucket) out.push(w)
    this.buckets.clear()
    this.count = 0
    return out
  }

  private keyOf (deadline: number): number {
    return Math.floor(deadline / this.bucketMs)
  }
}
