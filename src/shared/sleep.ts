/** Wait `ms`, or less if `signal` aborts; never rejects. */
export async function sleep (ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted === true) return
  await new Promise<void>((resolve) => {
    const done = (): void => { clearTimeout(timer); signal?.removeEventListener('abort', done); resolve() }
    const timer = setTimeout(done, ms)
    signal?.addEventListener('abort', done)
  })
}

/** A wake-up call: `wait(ms)` resolves after `ms` or as soon as `wake()` is called, whichever is first. */
export class Wakeup {
  private pending = false
  private resolve: (() => void) | undefined

  wake (): void {
    this.pending = true
    this.resolve?.()
  }

  async wait (ms: number, signal?: AbortSignal): Promise<void> {
    if (this.pending) { this.pending = false; return }
    const inner = new AbortController()
    this.resolve = () => inner.abort()
    const onAbort = (): void => inner.abort()
    signal?.addEventListener('abort', onAbort)
    await sleep(ms, inner.signal)
    signal?.removeEventListener('abort', onAbort)
    this.resolve = undefined
    this.pending = false
  }
}
