/**
 * Node's setTimeout takes at most 2^31-1 ms (about 24.8 days) and fires after 1 ms when given more: a longer wait
 * is cut into pieces of this.
 */
const MAX_TIMER_MS = 2_147_483_647

export interface RepeatingTaskInit {
  /**
   * One round. Resolves to how long to wait before the next round, in ms (0 or less: at once, after pending I/O);
   * `Infinity` waits until {@link RepeatingTask.wake} (or stop()).
   */
  round: (signal: AbortSignal) => Promise<number>
  /** A round threw (not because of stop()): report it, and say how long to wait before the next round, in ms. */
  onError: (err: unknown) => number
}

/**
 * A background loop: run a round, wait as long as it asks or until woken, run the next, until stopped. A wake
 * during a round cuts the wait after it (none is lost). Its loop never throws. The waits hold one timer and no
 * other allocation, so a loop that sleeps until something is due costs nothing in between.
 */
export class RepeatingTask {
  private readonly abort = new AbortController()
  private loop: Promise<void> | undefined
  /** A wake came while no wait was pending: the next wait returns at once. */
  private pending = false
  private resolveWait: (() => void) | undefined
  private timer: ReturnType<typeof setTimeout> | undefined

  constructor (private readonly init: RepeatingTaskInit) {}

  /** Aborted by stop(): for the rounds' I/O. */
  get signal (): AbortSignal { return this.abort.signal }

  get running (): boolean { return this.loop !== undefined && !this.abort.signal.aborted }

  /** Start the loop (the first round runs at once); a second call does nothing. */
  start (): void {
    if (this.loop !== undefined || this.abort.signal.aborted) return
    this.loop = this.run()
  }

  /** Run the next round now: end the wait in progress, or skip the next one if a round is running. */
  wake (): void {
    if (this.resolveWait !== undefined) this.endWait()
    else this.pending = true
  }

  /** Abort the round in progress (through its signal), end the wait, and resolve once the loop has ended. */
  async stop (): Promise<void> {
    this.abort.abort()
    if (this.resolveWait !== undefined) this.endWait()
    await this.loop
  }

  private endWait (): void {
    clearTimeout(this.timer)
    this.timer = undefined
    const resolve = this.resolveWait
    this.resolveWait = undefined
    resolve?.()
  }

  private async run (): Promise<void> {
    const signal = this.abort.signal
    while (!signal.aborted) {
      let waitMs: number
      try {
        waitMs = await this.init.round(signal)
      } catch (err) {
        if (signal.aborted) break
        waitMs = this.init.onError(err)
      }
      if (signal.aborted) break
      await this.wait(waitMs)
    }
  }

  private async wait (ms: number): Promise<void> {
    if (this.pending) { this.pending = false; return }
    // No wait asked: still let timers and I/O run first, so a loop of rounds that do not await anything real cannot starve them.
    if (!(ms > 0)) { await new Promise<void>((resolve) => { setImmediate(resolve) }); return }
    const until = Date.now() + ms
    await new Promise<void>((resolve) => {
      this.resolveWait = resolve
      const arm = (): void => {
        const left = until - Date.now()
        if (left <= 0) { this.endWait(); return }
        if (left === Number.POSITIVE_INFINITY) return
        this.timer = setTimeout(left > MAX_TIMER_MS ? arm : () => { this.endWait() }, Math.min(left, MAX_TIMER_MS))
      }
      arm()
    })
  }
}
