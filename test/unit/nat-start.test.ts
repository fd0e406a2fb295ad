import { describe, expect, it } from 'vitest'
import { firstAttemptsPending } from '../../src/client/nat/nat-start.js'
import type { PeerTrack } from '../../src/client/paths/reconcile.js'

const track = (phase: PeerTrack['phase'], failures: number): PeerTrack => ({ phase, failures, endpoint: '198.18.1.2:51820', sinceMs: 0, retryAtMs: 0, handshakeAtStart: 0, reason: 'test' } as unknown as PeerTrack)

describe('firstAttemptsPending', () => {
  it.each<[string, PeerTrack[], boolean]>([
    ['no peers', [], false],
    ['a first attempt under way', [track('trying', 0)], true],
    ['a peer arming for its first attempt', [track('arming', 0)], true],
    ['every peer direct', [track('direct', 0), track('direct', 0)], false],
    ['a first attempt failed, the peer on the hub', [track('hub', 1)], false],
    ['a retry under way (not a first attempt)', [track('trying', 1), track('direct', 0)], false],
    ['one direct, one still on its first attempt', [track('direct', 0), track('trying', 0)], true]
  ])('%s', (_name, tracks, want) => {
    expect(firstAttemptsPending(new Map(tracks.map((t, i) => [`key${i}`, t])))).toBe(want)
  })
})
