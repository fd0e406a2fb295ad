import { describe, expect, it } from 'vitest'
import { WaiterWheel } from '../../src/server/registry/waiter-wheel.js'

interface W { deadline: number, name: string }
const w = (name: string, deadline: number): W => ({ name, deadline })
const names = (ws: W[]): string[] => ws.map((x) => x.name)

describe('WaiterWheel', () => {
  it.each([
    // deadlines (ms), sweep time (ms), expired (earliest seconds first), left
    [[['a', 500], ['b', 1500], ['c', 2500]], 1600, ['a', 'b'], 1],
    [[['a', 1000], ['b', 1001]], 1000, ['a'], 1], // at the deadline: expired; a millisecond later in the same second: not yet
    [[['a', 1999], ['b', 1000]], 1999, ['a', 'b'], 0], // the same second: both, in the order they came
    [[['a', 5000]], 4999, [], 1],
    [[['a', -20], ['b', 0]], 0, ['a', 'b'], 0], // deadlines already past when added
    [[], 10_000, [], 0]
  ] as Array<[Array<[string, number]>, number, string[], number]>)('deadlines %j, swept at %i: %j expire', (deadlines, now, want, left) => {
    const wheel = new WaiterWheel<W>(1000)
    for (const [n, d] of deadlines) wheel.add(w(n, d))
    expect(names(wheel.takeExpired(now))).toEqual(want)
    expect(wheel.size).toBe(left)
    // Taken once only.
    expect(wheel.takeExpired(now)).toEqual([])
  })

  it('sweeps in order across many seconds, never returns a waiter twice, and forgets deleted ones', () => {
    const wheel = new WaiterWheel<W>(1000)
    const all = Array.from({ length: 1000 }, (_, i) => w(`w${i}`, (i * 7919) % 900_000))
    for (const x of all) wheel.add(x)
    expect(wheel.size).toBe(1000)
    const gone = all.filter((_, i) => i % 10 === 0)
    for (const x of gone) expect(wheel.delete(x)).toBe(true)
    expect(wheel.delete(gone[0] as W)).toBe(false)
    expect(wheel.size).toBe(900)
    const taken: W[] = []
    for (let now = 0; now <= 900_000; now += 1000) {
      const batch = wheel.takeExpired(now)
      for (const x of batch) expect(x.deadline).toBeLessThanOrEqual(now)
      taken.push(...batch)
    }
    expect(taken.length).toBe(900)
    expect(new Set(taken).size).toBe(900)
    expect(taken.some((x) => gone.includes(x))).toBe(false)
    expect(wheel.size).toBe(0)
  })

  it('takeAll empties it; a waiter added after is swept as usual', () => {
    const wheel = new WaiterWheel<W>(1000)
    wheel.add(w('a', 100)); wheel.add(w('b', 900_000))
    expect(names(wheel.takeAll()).sort()).toEqual(['a', 'b'])
    expect(wheel.size).toBe(0)
    wheel.add(w('c', 3000))
    expect(names(wheel.takeExpired(2999))).toEqual([])
    expect(names(wheel.takeExpired(3000))).toEqual(['c'])
  })
})
