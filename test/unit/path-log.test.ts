import { describe, expect, it } from 'vitest'
import { PathLog, SUMMARY_EVERY_MS, isPathChange } from '../../src/client/paths/path-log.js'
import type { PathEvent } from '../../src/client/paths/reconcile.js'

const ev = (from: PathEvent['from'], to: PathEvent['to']): PathEvent => ({ publicKey: 'k', from, to, reason: 'r' })

describe('isPathChange', () => {
  it.each([
    { e: ev('new', 'trying'), info: false },
    { e: ev('trying', 'hub'), info: false },
    { e: ev('hub', 'trying'), info: false },
    { e: ev('new', 'arming'), info: false },
    { e: ev('trying', 'direct'), info: true },
    { e: ev('hub', 'direct'), info: true },
    { e: ev('direct', 'hub'), info: true },
    { e: ev('hub', 'removed'), info: true }
  ])('$e.from -> $e.to: info $info', ({ e, info }) => {
    expect(isPathChange(e)).toBe(info)
  })
})

describe('PathLog', () => {
  it('sums up at most once a minute, and says nothing in a quiet minute', () => {
    const log = new PathLog(0)
    const retries = Array.from({ length: 400 }, () => [ev('hub', 'trying'), ev('trying', 'hub')]).flat()
    expect(log.record(retries)).toEqual([])
    expect(log.record([ev('trying', 'direct')])).toHaveLength(1)
    expect(log.summary(SUMMARY_EVERY_MS - 1, [{ phase: 'hub' }])).toBeNull()
    const phases = [...Array<'hub'>(412).fill('hub'), 'direct' as const, 'trying' as const].map((phase) => ({ phase }))
    expect(log.summary(SUMMARY_EVERY_MS, phases)).toBe('1 peers direct, 412 via hub, 1 trying; this minute: 400 attempts, 400 failed, 1 path changes')
    // Nothing happened since: no line, however many peers wait.
    expect(log.summary(2 * SUMMARY_EVERY_MS, phases)).toBeNull()
    log.record([ev('hub', 'trying')])
    expect(log.summary(3 * SUMMARY_EVERY_MS + 1000, phases)).toBe('1 peers direct, 412 via hub, 1 trying; this minute: 1 attempts, 0 failed, 0 path changes')
  })

  it('counts the phases of the tracks themselves, a Map by public key as the client keeps them', () => {
    const log = new PathLog(0)
    log.record([ev('hub', 'trying')])
    const tracks = new Map([['a', { phase: 'direct' as const }], ['b', { phase: 'hub' as const }], ['c', { phase: 'arming' as const }], ['d', { phase: 'hub' as const }]])
    expect(log.summary(SUMMARY_EVERY_MS, tracks)).toBe('1 peers direct, 2 via hub, 1 trying; this minute: 1 attempts, 0 failed, 0 path changes')
  })
})
