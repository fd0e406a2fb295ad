import { describe, expect, it } from 'vitest'
import { IDLE_READ_PEERS_PER_POLL, MAX_IDLE_READ_POLLS, idleReadMs, nextReadDelay } from '../../src/server/registry/read-pacing.js'

describe('idleReadMs', () => {
  it.each([
    [0, 1000, 1000],
    [2, 1000, 1000],
    [IDLE_READ_PEERS_PER_POLL, 1000, 1000],
    [IDLE_READ_PEERS_PER_POLL + 1, 1000, 2000],
    [1000, 1000, 2000],
    [5000, 1000, 10_000],
    [9501, 1000, 20_000],
    [10_000, 1000, 20_000],
    [100_000, 1000, MAX_IDLE_READ_POLLS * 1000],
    [10_000, 200, 4000]
  ])('%i peers, poll %i ms: %i ms', (peers, pollMs, want) => {
    expect(idleReadMs(peers, pollMs)).toBe(want)
  })
})

describe('nextReadDelay', () => {
  const base = { pollMs: 1000, idleMs: 10_000 }
  it.each([
    ['no read yet: at once', { ...base, lastReadAt: undefined, now: 5, prompted: false }, 0],
    ['idle: the idle interval after the last start', { ...base, lastReadAt: 1000, now: 1200, prompted: false }, 9800],
    ['prompted: pollMs after the last start', { ...base, lastReadAt: 1000, now: 1200, prompted: true }, 800],
    ['prompted long after the last read: at once', { ...base, lastReadAt: 1000, now: 5000, prompted: true }, 0],
    ['idle and overdue: at once', { ...base, lastReadAt: 1000, now: 60_000, prompted: false }, 0],
    ['an idle interval under pollMs counts as pollMs', { pollMs: 1000, idleMs: 10, lastReadAt: 1000, now: 1000, prompted: false }, 1000]
  ])('%s', (_name, pacing, want) => {
    expect(nextReadDelay(pacing)).toBe(want)
  })
})
