import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { RepeatingTask } from '../../src/shared/repeating-task.js'

const tasks: RepeatingTask[] = []
beforeEach(() => { vi.useFakeTimers() })
afterEach(async () => {
  await Promise.all(tasks.splice(0).map(async (t) => { await t.stop() }))
  vi.useRealTimers()
})

/** A task whose rounds are counted and wait what `waits` says (the last entry repeats). */
function task (waits: number[], over: { round?: (n: number, signal: AbortSignal) => Promise<void>, onError?: (err: unknown) => number } = {}) {
  const signals: AbortSignal[] = []
  let rounds = 0
  const errors: unknown[] = []
  const t = new RepeatingTask({
    round: async (signal) => {
      signals.push(signal)
      const n = rounds++
      await over.round?.(n, signal)
      return waits[Math.min(n, waits.length - 1)]!
    },
    onError: (err) => { errors.push(err); return over.onError?.(err) ?? 1000 }
  })
  tasks.push(t)
  return { t, signals, errors, rounds: () => rounds }
}

describe('RepeatingTask', () => {
  it('runs the first round at start, then each after the wait the previous one asked for', async () => {
    const h = task([1000, 250])
    h.t.start()
    await vi.advanceTimersByTimeAsync(0)
    expect(h.rounds()).toBe(1)
    await vi.advanceTimersByTimeAsync(999)
    expect(h.rounds()).toBe(1)
    await vi.advanceTimersByTimeAsync(1)
    expect(h.rounds()).toBe(2)
    await vi.advanceTimersByTimeAsync(249)
    expect(h.rounds()).toBe(2)
    await vi.advanceTimersByTimeAsync(1)
    expect(h.rounds()).toBe(3)
  })

  it('a wait of Infinity holds no timer and ends only on wake()', async () => {
    const h = task([Number.POSITIVE_INFINITY])
    h.t.start()
    await vi.advanceTimersByTimeAsync(0)
    expect(h.rounds()).toBe(1)
    expect(vi.getTimerCount()).toBe(0)
    await vi.advanceTimersByTimeAsync(3_600_000)
    expect(h.rounds()).toBe(1)
    h.t.wake()
    await vi.advanceTimersByTimeAsync(0)
    expect(h.rounds()).toBe(2)
  })

  it('a wait beyond setTimeout\'s limit (2^31-1 ms) does not fire early', async () => {
    const h = task([3_000_000_000])
    h.t.start()
    await vi.advanceTimersByTimeAsync(2_147_483_648)
    expect(h.rounds()).toBe(1)
    await vi.advanceTimersByTimeAsync(3_000_000_000 - 2_147_483_648 - 1)
    expect(h.rounds()).toBe(1)
    await vi.advanceTimersByTimeAsync(1)
    expect(h.rounds()).toBe(2)
  })

  it('a wake during a round is not lost: the wait after that round is skipped, once', async () => {
    let release: () => void = () => {}
    const h = task([10_000], { round: async (n) => { if (n === 0) await new Promise<void>((resolve) => { release = resolve }) } })
    h.t.start()
    await vi.advanceTimersByTimeAsync(0)
    h.t.wake()
    h.t.wake()
    release()
    await vi.advanceTimersByTimeAsync(0)
    expect(h.rounds()).toBe(2)
    await vi.advanceTimersByTimeAsync(9_999)
    expect(h.rounds()).toBe(2)
    await vi.advanceTimersByTimeAsync(1)
    expect(h.rounds()).toBe(3)
  })

  it('a round that throws is reported and the loop goes on after the wait onError asks for', async () => {
    const h = task([Number.POSITIVE_INFINITY], { round: async (n) => { if (n < 2) throw new Error(`boom ${n}`) }, onError: () => 500 })
    h.t.start()
    await vi.advanceTimersByTimeAsync(0)
    expect(h.errors.map(String)).toEqual(['Error: boom 0'])
    await vi.advanceTimersByTimeAsync(500)
    expect(h.errors.map(String)).toEqual(['Error: boom 0', 'Error: boom 1'])
    await vi.advanceTimersByTimeAsync(500)
    expect(h.rounds()).toBe(3)
    await vi.advanceTimersByTimeAsync(10_000)
    expect(h.rounds()).toBe(3)
    expect(h.t.running).toBe(true)
  })

  it('stop() aborts the round in progress, does not report its failure, and no round runs after it', async () => {
    const h = task([100], {
      round: async (n, signal) => {
        if (n === 1) await new Promise<void>((_resolve, reject) => { signal.addEventListener('abort', () => { reject(new Error('aborted')) }) })
      }
    })
    h.t.start()
    await vi.advanceTimersByTimeAsync(100)
    expect(h.rounds()).toBe(2)
    await h.t.stop()
    expect(h.signals[1]?.aborted).toBe(true)
    expect(h.errors).toEqual([])
    expect(h.t.running).toBe(false)
    await vi.advanceTimersByTimeAsync(1000)
    expect(h.rounds()).toBe(2)
    expect(vi.getTimerCount()).toBe(0)
  })

  it('stop() ends a wait at once, and start() after stop() does nothing', async () => {
    const h = task([60_000])
    h.t.start()
    await vi.advanceTimersByTimeAsync(0)
    await h.t.stop()
    expect(vi.getTimerCount()).toBe(0)
    h.t.start()
    await vi.advanceTimersByTimeAsync(120_000)
    expect(h.rounds()).toBe(1)
  })

  it('a round that asks for no wait still lets timers run before the next round (no starving the event loop)', async () => {
    vi.useRealTimers()
    let timerRan = false
    let roundsBeforeTimer = 0
    const t = new RepeatingTask({ round: async () => { if (!timerRan) roundsBeforeTimer++; return timerRan ? 60_000 : 0 }, onError: () => 0 })
    tasks.push(t)
    setTimeout(() => { timerRan = true }, 0)
    t.start()
    await new Promise((resolve) => setTimeout(resolve, 20))
    expect(timerRan).toBe(true)
    // Starving would be rounds without end (and this test timing out above). A busy machine lets a hundred or so
    // rounds run before a 0 ms timer is due (107 seen in a full suite run), so the bound only rules out starvation.
    expect(roundsBeforeTimer).toBeLessThan(10_000)
  })
})

