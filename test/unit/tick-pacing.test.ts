import { describe, expect, it } from 'vitest'
import { TABLE_TICK_GAP_MS, TABLE_TICK_READ_MAX_AGE_MS, nextTickDueMs, reusableRead, tickHoldMs, type TickPacingInput } from '../../src/client/paths/tick-pacing.js'

const T = 1_000_000
const base: TickPacingInput = { nowMs: T, lastTickMs: T - 50, tableChanged: true, firstTable: false, networkChanged: false, dueMs: T + 1000 }

describe('tickHoldMs: table changes soon after a tick wait for the gap', () => {
  const cases: Array<{ name: string, input: Partial<TickPacingInput>, hold: number }> = [
    { name: 'a change 50 ms after a tick waits for the rest of the gap', input: {}, hold: TABLE_TICK_GAP_MS - 50 },
    { name: 'a change after the gap ticks at once', input: { lastTickMs: T - TABLE_TICK_GAP_MS }, hold: 0 },
    { name: 'a change long after the last tick ticks at once', input: { lastTickMs: T - 60_000 }, hold: 0 },
    { name: 'the first table never waits', input: { firstTable: true }, hold: 0 },
    { name: 'a network change never waits', input: { networkChanged: true }, hold: 0 },
    { name: 'a timer wake-up (no table change) never waits', input: { tableChanged: false }, hold: 0 },
    { name: 'never later than the tick that is due anyway', input: { dueMs: T + 20 }, hold: 20 },
    { name: 'a tick already due runs now', input: { dueMs: T - 5 }, hold: 0 }
  ]
  it.each(cases)('$name', ({ input, hold }) => {
    expect(tickHoldMs({ ...base, ...input })).toBe(hold)
  })

  it('a burst of changes costs one tick per gap, each change waiting at most one gap', () => {
    // 40 announcements over 1.2 s (one every 30 ms), as while 8 clients start: simulate the loop's decisions.
    let lastTickMs = 0
    let pendingSince: number | undefined
    let ticks = 0
    let worstWait = 0
    for (let now = 0; now <= 1500; now += 1) {
      if (now % 30 === 0 && now <= 1200) pendingSince ??= now
      if (pendingSince !== undefined && tickHoldMs({ nowMs: now, lastTickMs, tableChanged: true, firstTable: ticks === 0, networkChanged: false, dueMs: now + 1000 }) === 0) {
        worstWait = Math.max(worstWait, now - pendingSince)
        ticks++
        lastTickMs = now
        pendingSince = undefined
      }
    }
    expect(ticks).toBeLessThanOrEqual(Math.ceil(1200 / TABLE_TICK_GAP_MS) + 1)
    expect(ticks).toBeGreaterThanOrEqual(3)
    expect(worstWait).toBeLessThanOrEqual(TABLE_TICK_GAP_MS)
  })
})

describe('reusableRead: a table-only tick reuses a fresh, unwritten read', () => {
  const last = { device: 'dev', atMs: 10_000, writes: 3 }
  it.each([
    ['a table-only tick, read 400 ms ago, no write since', { nowMs: 10_400, tableOnly: true, writes: 3 }, true],
    ['exactly at the age limit', { nowMs: 10_000 + TABLE_TICK_READ_MAX_AGE_MS, tableOnly: true, writes: 3 }, true],
    ['just over the age limit', { nowMs: 10_001 + TABLE_TICK_READ_MAX_AGE_MS, tableOnly: true, writes: 3 }, false],
    ['a write since the read (the read no longer shows the interface)', { nowMs: 10_400, tableOnly: true, writes: 4 }, false],
    ['a timed tick (a handshake may be due)', { nowMs: 10_400, tableOnly: false, writes: 3 }, false],
    ['a clock that went back', { nowMs: 9_000, tableOnly: true, writes: 3 }, false]
  ])('%s', (_name, input, reused) => {
    expect(reusableRead(last, input)).toBe(reused ? last : undefined)
  })
  it('nothing read yet: read', () => {
    expect(reusableRead(undefined, { nowMs: 1, tableOnly: true, writes: 0 })).toBeUndefined()
  })
})

describe('nextTickDueMs: a tick that reused a read does not put off the next fresh one', () => {
  it.each([
    ['a fresh read: counted from now', { nowMs: 10_000, decidedAtMs: 10_000, waitMs: 1000 }, 11_000],
    ['a failed tick (no decision): counted from now', { nowMs: 10_000, decidedAtMs: undefined, waitMs: 1000 }, 11_000],
    // Table changes at 10.3 s and 10.6 s reused the read of 10.0 s: the fresh read stays due at 11.0 s, not 11.6 s.
    ['a reused read of 600 ms ago: counted from the read', { nowMs: 10_600, decidedAtMs: 10_000, waitMs: 1000 }, 11_000],
    ['a reused read older than the wait: due now', { nowMs: 10_900, decidedAtMs: 10_000, waitMs: 500 }, 10_500],
    ['a decision time in the future (clock went back): counted from now', { nowMs: 10_000, decidedAtMs: 20_000, waitMs: 1000 }, 11_000],
    ['a decision time far in the past: never more than the reuse limit before now', { nowMs: 100_000, decidedAtMs: 0, waitMs: 10_000 }, 100_000 - TABLE_TICK_READ_MAX_AGE_MS + 10_000]
  ])('%s', (_name, input, due) => {
    expect(nextTickDueMs(input)).toBe(due)
  })
})
