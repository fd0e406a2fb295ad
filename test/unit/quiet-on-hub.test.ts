import { describe, expect, it } from 'vitest'
import { candidatesOf, defaultTiming, reconcile, type PeerTrack } from '../../src/client/paths/reconcile.js'
import { peerTargets } from '../../src/client/paths/peer-targets.js'
import { quietOnHub, type QuietInput } from '../../src/client/paths/quiet-on-hub.js'
import type { DesiredPeer } from '../../src/client/paths/vet-table.js'
import type { WgPeer } from '../../src/shared/wg-dump.js'
import { ep, newPeer } from '../helpers/fake-wg.js'
import { testKey } from '../helpers/keys.js'

const SELF = testKey('self'); const B = testKey('b')
const T0 = 1_700_000_000_000
const TARGETS = '198.18.12.2:51820'

const want = (over: Partial<DesiredPeer> = {}): DesiredPeer => ({ publicKey: B, endpoint: ep(TARGETS), allowedIps: ['100.64.0.3/32'], online: true, candidates: [], natClass: 'easy', readyFor: false, mayInitiate: true, ...over })
/** A peer parked on the hub since T0 (or waiting for its retry at T0 + 60 s). */
const parked = (over: Partial<PeerTrack> = {}): PeerTrack => ({ phase: 'hub', sinceMs: T0, failures: 4, retryAtMs: Number.POSITIVE_INFINITY, endpoint: TARGETS, targets: TARGETS, rx: 0, rxAtMs: T0, reason: 'parked', classes: 'easy/easy', ...over })
const device = (over: Partial<WgPeer> = {}): WgPeer => newPeer(B, { endpoint: ep(TARGETS), transferTx: 1184, ...over })
const quiet = (over: Partial<QuietInput> = {}): QuietInput => ({ nowMs: T0 + 30_000, targets: TARGETS, classes: 'easy/easy', punching: false, handshakeSlackMs: 1000, ...over })

describe('quietOnHub: a peer waiting on the hub with nothing to do', () => {
  const cases: Array<[string, PeerTrack, WgPeer, DesiredPeer, QuietInput, boolean]> = [
    ['parked, nothing new', parked(), device(), want(), quiet(), true],
    ['backing off, retry not due yet', parked({ failures: 1, retryAtMs: T0 + 60_000 }), device(), want(), quiet(), true],
    ['its retry is due', parked({ failures: 1, retryAtMs: T0 + 60_000 }), device(), want(), quiet({ nowMs: T0 + 60_000 }), false],
    ['not on the hub (trying)', parked({ phase: 'trying' }), device(), want(), quiet(), false],
    ['not on the hub (direct)', parked({ phase: 'direct' }), device(), want(), quiet(), false],
    ['received something', parked(), device({ transferRx: 92 }), want(), quiet(), false],
    ['a handshake since it went back to the hub', parked(), device({ latestHandshake: T0 / 1000 + 5 }), want(), quiet(), false],
    ['a handshake within the clock slack before', parked(), device({ latestHandshake: T0 / 1000 - 1 }), want(), quiet(), false],
    ['an old handshake', parked(), device({ latestHandshake: T0 / 1000 - 120 }), want(), quiet(), true],
    ['new candidates from the registry', parked(), device(), want(), quiet({ targets: '198.18.12.9:51820' }), false],
    ['no candidates any more (nothing to move to)', parked(), device(), want(), quiet({ targets: null }), true],
    ['a NAT class changed', parked(), device(), want(), quiet({ classes: 'easy/hard' }), false],
    ['no classes recorded yet', parked({ classes: undefined }), device(), want(), quiet({ classes: 'easy/hard' }), true],
    ['the peer is ready for us, not yet seen (punching)', parked({ retryAtMs: T0 + 60_000 }), device(), want({ readyFor: true }), quiet({ punching: true }), false],
    ['the peer is ready for us, not yet seen (no punching: recorded only)', parked(), device(), want({ readyFor: true }), quiet(), false],
    ['the peer\'s ready already seen', parked({ readySeen: true }), device(), want({ readyFor: true }), quiet({ punching: true }), true],
    ['the peer no longer ready', parked({ readySeen: true }), device(), want(), quiet(), false]
  ]
  it.each(cases)('%s', (_name, track, onDevice, w, q, expected) => {
    expect(quietOnHub(track, onDevice, w, q)).toBe(expected)
  })

  it('reconcile keeps a quiet peer\'s track as the same object, and still acts on one that is not', () => {
    const w = want()
    const tracks = new Map([[B, parked({ failures: 1, retryAtMs: T0 + 60_000 })]])
    const run = (nowMs: number, onDevice: WgPeer): ReturnType<typeof reconcile> => reconcile({
      nowMs, selfKey: SELF, timing: defaultTiming(25), tracks, desired: new Map([[B, w]]),
      device: { publicKey: SELF, listenPort: 51820, peers: [onDevice] }, self: { natClass: 'easy', publicAddress: '198.18.1.2' }
    })
    const at = run(T0 + 30_000, device())
    expect(at.tracks.get(B)).toBe(tracks.get(B))
    expect(at.changes).toEqual([])
    // The retry falls due: an attempt.
    expect(run(T0 + 60_000, device()).tracks.get(B)?.phase).toBe('trying')
    // The peer's own attempt got through: direct.
    expect(run(T0 + 30_000, device({ latestHandshake: T0 / 1000 + 20 })).tracks.get(B)?.phase).toBe('direct')
  })
})

describe('peerTargets: candidates kept per vetted peer', () => {
  it('computes once per peer and public address, and agrees with candidatesOf', () => {
    const w = want({ candidates: [ep('192.168.1.7:51820')] })
    let calls = 0
    const count = (p: string | null) => (d: DesiredPeer): ReturnType<typeof candidatesOf> => { calls++; return candidatesOf(d, p) }
    const away = peerTargets(w, '198.18.1.2', count('198.18.1.2'))
    expect(peerTargets(w, '198.18.1.2', count('198.18.1.2'))).toBe(away)
    expect(calls).toBe(1)
    expect(away).toEqual({ candidates: candidatesOf(w, '198.18.1.2'), targets: TARGETS })
    // Behind the same public address as the peer: its LAN candidate first.
    const home = peerTargets(w, '198.18.12.2', count('198.18.12.2'))
    expect(calls).toBe(2)
    expect(home.targets).toBe(`192.168.1.7:51820,${TARGETS}`)
    // Another vetted object (a new table) is computed afresh.
    peerTargets({ ...w }, '198.18.12.2', count('198.18.12.2'))
    expect(calls).toBe(3)
    expect(peerTargets(want({ endpoint: null }), '', (d) => candidatesOf(d, null))).toEqual({ candidates: [], targets: null })
  })
})
