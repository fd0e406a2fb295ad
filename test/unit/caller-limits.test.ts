import { describe, expect, it } from 'vitest'
import { CallerLimits } from '../../src/server/registry/caller-limits.js'

describe('CallerLimits', () => {
  it('counts connections per source and gives a place back on close', () => {
    const l = new CallerLimits({ maxConnectionsPerSource: 2 })
    expect([l.openConnection('a'), l.openConnection('a'), l.openConnection('a'), l.openConnection('b')]).toEqual([true, true, false, true])
    l.closeConnection('a')
    expect(l.openConnection('a')).toBe(true)
    l.closeConnection('a'); l.closeConnection('a'); l.closeConnection('b')
    expect(l.load.connections).toBe(0)
  })

  it('bounds requests in progress per peer; a release counts once', () => {
    const l = new CallerLimits({ maxRequestsPerPeer: 2 })
    const r1 = l.beginRequest('p'); const r2 = l.beginRequest('p')
    expect(r1).toBeDefined(); expect(r2).toBeDefined()
    expect(l.beginRequest('p')).toBeUndefined()
    expect(l.beginRequest('q')).toBeDefined()
    r1?.(); r1?.()
    expect(l.load.requests).toBe(2)
    expect(l.beginRequest('p')).toBeDefined()
    expect(l.beginRequest('p')).toBeUndefined()
  })

  it('full tables: a burst, then one per 60/rate seconds', () => {
    let now = 0
    const l = new CallerLimits({ fullFetchesPerMinute: 6, fullFetchBurst: 3 }, () => now)
    expect([1, 2, 3, 4].map(() => l.takeFullFetch('p'))).toEqual([true, true, true, false])
    expect(l.takeFullFetch('q')).toBe(true)
    now += 9_000
    expect(l.takeFullFetch('p')).toBe(false)
    now += 1_500
    expect(l.takeFullFetch('p')).toBe(true)
    expect(l.fullFetchRetryAfterS).toBe(10)
  })
})
