import { describe, expect, it } from 'vitest'
import { PARKED_TICK_MS, allParked, isParked, restingTickMs } from '../../src/client/paths/parked-tick.js'
import type { PeerTrack } from '../../src/client/paths/reconcile.js'
import { HEALING_WATCH_MS } from '../../src/client/paths/route-switch.js'

const NOW = 1_000_000
const QUIET = 10_000
const parked: PeerTrack = { phase: 'hub', sinceMs: NOW - 300_000, failures: 6, retryAtMs: Number.POSITIVE_INFINITY, endpoint: '198.18.1.2:51820', targets: '198.18.1.2:51820', rx: 0, rxAtMs: 0, reason: 'gave up' }

describe('isParked', () => {
  it.each<[string, Partial<PeerTrack>, boolean]>([
    ['hub, no retry ever due', {}, true],
    ['hub, a retry due later', { retryAtMs: NOW + 60_000 }, false],
    ['hub, a retry due now', { retryAtMs: NOW }, false],
    ['hub, lost a direct path recently (healing watch)', { lostAtMs: NOW - 1000 }, false],
    ['hub, lost a direct path long ago', { lostAtMs: NOW - HEALING_WATCH_MS - 1 }, true],
    ['hub, a switch instant planned', { promoteAtMs: NOW + 500 }, false],
    ['trying', { phase: 'trying' }, false],
    ['arming', { phase: 'arming' }, false],
    ['direct', { phase: 'direct' }, false]
  ])('%s: %s', (_name, change, want) => {
    expect(isParked({ ...parked, ...change }, NOW)).toBe(want)
  })
})

describe('restingTickMs', () => {
  it('reads rarely when every peer is parked', () => {
    expect(restingTickMs([parked, { ...parked, endpoint: '198.18.1.3:51820' }], NOW, QUIET)).toBe(PARKED_TICK_MS)
    expect(PARKED_TICK_MS).toBeGreaterThan(QUIET)
  })
  it('keeps the quiet interval when one peer is not parked', () => {
    expect(restingTickMs([parked, { ...parked, phase: 'direct' }], NOW, QUIET)).toBe(QUIET)
    expect(restingTickMs([{ ...parked, retryAtMs: NOW + 120_000 }, parked], NOW, QUIET)).toBe(QUIET)
  })
  it('keeps the quiet interval with no peers (adopted or new ones may come)', () => {
    expect(restingTickMs([], NOW, QUIET)).toBe(QUIET)
  })
  it('never shortens a longer quiet interval', () => {
    expect(restingTickMs([parked], NOW, PARKED_TICK_MS * 2)).toBe(PARKED_TICK_MS * 2)
  })
})

describe('allParked', () => {
  it.each<[string, PeerTrack[], boolean]>([
    ['no peers', [], false],
    ['one parked peer', [parked], true],
    ['every peer parked', [parked, { ...parked, endpoint: '198.18.1.3:51820' }], true],
    ['one of them direct', [parked, { ...parked, phase: 'direct' }], false],
    ['one of them with a retry due', [{ ...parked, retryAtMs: NOW + 1000 }, parked], false],
    ['one of them trying', [parked, { ...parked, phase: 'trying' }], false]
  ])('%s', (_name, tracks, want) => {
    expect(allParked(tracks, NOW)).toBe(want)
    // The client passes its tracks as they are, a Map by public key.
    expect(allParked(new Map(tracks.map((t, i) => [`key${i}`, t])), NOW)).toBe(want)
  })
})
