import { describe, expect, it } from 'vitest'
import { defaultTiming, reconcile, type PeerTrack, type ReconcileInput } from '../../src/client/paths/reconcile.js'
import { QuietReads } from '../../src/client/paths/quiet-reads.js'
import type { DesiredPeer } from '../../src/client/paths/vet-table.js'
import type { WgPeer } from '../../src/shared/wg-dump.js'
import { ep, newPeer } from '../helpers/fake-wg.js'
import { testKey } from '../helpers/keys.js'

const SELF = testKey('self'); const HUB = testKey('hub')
const T0 = 1_700_000_000_000
const timing = defaultTiming(25)
const keys = [testKey('a'), testKey('b'), testKey('c')]
const endpointOf = (i: number): string => `198.18.12.${i + 2}:51820`
const want = (i: number, over: Partial<DesiredPeer> = {}): DesiredPeer => ({ publicKey: keys[i]!, endpoint: ep(endpointOf(i)), allowedIps: [`100.64.0.${i + 3}/32`], online: true, candidates: [], natClass: 'easy', readyFor: false, mayInitiate: true, ...over })
const parked = (i: number, over: Partial<PeerTrack> = {}): PeerTrack => ({ phase: 'hub', sinceMs: T0, failures: 4, retryAtMs: Number.POSITIVE_INFINITY, endpoint: endpointOf(i), targets: endpointOf(i), rx: 0, rxAtMs: T0, reason: 'parked', classes: 'easy/easy', ...over })
const onDevice = (i: number, over: Partial<WgPeer> = {}): WgPeer => newPeer(keys[i]!, { endpoint: ep(endpointOf(i)), transferTx: 1184, ...over })
const hubPeer = (rx: number): WgPeer => newPeer(HUB, { endpoint: ep('198.18.0.1:51820'), allowedIps: ['100.64.0.0/16'], transferRx: rx })

/** Three peers parked on the hub, and the reconcile input that reads them. */
function rest (over: { tracks?: PeerTrack[] } = {}): ReconcileInput {
  const desired = new Map(keys.map((k, i) => [k, want(i)]))
  const tracks = new Map((over.tracks ?? keys.map((_, i) => parked(i))).map((t, i) => [keys[i]!, t]))
  return { nowMs: T0 + 200_000, selfKey: SELF, device: { publicKey: SELF, listenPort: 51820, peers: [hubPeer(1), ...keys.map((_, i) => onDevice(i))] }, desired, tracks, timing, self: { natClass: 'easy', publicAddress: '198.18.11.2' }, hubRelays: true }
}

/** Reconcile `input` through `q` as the client does; whether it was skipped. */
function run (q: QuietReads, input: ReconcileInput): { out: ReturnType<typeof reconcile>, skipped: boolean } {
  const reused = q.reuse(input)
  return { out: reused ?? q.record(input, reconcile(input)), skipped: reused !== undefined }
}

describe('QuietReads', () => {
  it('skips a read that could only repeat the last quiet one, and gives what reconcile would', () => {
    const q = new QuietReads()
    const first = rest()
    const a = run(q, first)
    expect(a.skipped).toBe(false)
    expect(a.out.changes).toEqual([])
    // The next read: the same peer objects (an unchanged dump line), the tracks the client took, time moved on.
    const next = { ...first, nowMs: first.nowMs + 30_000, tracks: a.out.tracks }
    const b = run(q, next)
    expect(b.skipped).toBe(true)
    expect(b.out.tracks).toBe(a.out.tracks)
    expect(b.out).toEqual(reconcile(next))
    // And again: the memory holds while nothing changes.
    expect(run(q, { ...next, nowMs: next.nowMs + 30_000 }).skipped).toBe(true)
  })

  it('lets a peer we do not manage (the hub, its counters moving) change freely', () => {
    const q = new QuietReads()
    const first = rest()
    const a = run(q, first)
    const device = { ...first.device, peers: [hubPeer(99_999), ...first.device.peers.slice(1).reverse()] }
    expect(run(q, { ...first, device, tracks: a.out.tracks }).skipped).toBe(true)
  })

  it.each<[string, (input: ReconcileInput, tracks: Map<string, PeerTrack>) => ReconcileInput]>([
    ['a managed peer\'s line changed (a new object)', (i, tracks) => ({ ...i, tracks, device: { ...i.device, peers: [...i.device.peers.slice(0, 3), onDevice(2)] } })],
    ['a managed peer received data', (i, tracks) => ({ ...i, tracks, device: { ...i.device, peers: [...i.device.peers.slice(0, 3), onDevice(2, { transferRx: 92 })] } })],
    ['a managed peer is gone from the interface', (i, tracks) => ({ ...i, tracks, device: { ...i.device, peers: i.device.peers.slice(0, 3) } })],
    ['a new table', (i, tracks) => ({ ...i, tracks, desired: new Map(i.desired) })],
    ['other tracks than the last output', (i, tracks) => ({ ...i, tracks: new Map(tracks) })],
    ['the network changed', (i, tracks) => ({ ...i, tracks, networkChanged: true })],
    ['our NAT class changed', (i, tracks) => ({ ...i, tracks, self: { natClass: 'hard', publicAddress: '198.18.11.2' } })],
    ['our public address changed', (i, tracks) => ({ ...i, tracks, self: { natClass: 'easy', publicAddress: '198.18.11.3' } })],
    ['punching turned on', (i, tracks) => ({ ...i, tracks, punching: true })],
    ['the hub stopped relaying', (i, tracks) => ({ ...i, tracks, hubRelays: false })]
  ])('runs the reconcile again when %s', (_what, change) => {
    const q = new QuietReads()
    const first = rest()
    const a = run(q, first)
    const next = change(first, a.out.tracks)
    const b = run(q, next)
    expect(b.skipped).toBe(false)
    expect(b.out).toEqual(reconcile(next))
  })

  it('runs the reconcile once a retry is due, and remembers nothing that changed something', () => {
    const q = new QuietReads()
    const first = rest({ tracks: [parked(0), parked(1), parked(2, { retryAtMs: T0 + 230_000, failures: 1 })] })
    const a = run(q, first)
    expect(a.out.changes).toEqual([])
    // Before the retry is due: skipped; at it: the attempt starts (a change), so that read is not remembered.
    expect(run(q, { ...first, tracks: a.out.tracks, nowMs: T0 + 229_999 }).skipped).toBe(true)
    const due = run(q, { ...first, tracks: a.out.tracks, nowMs: T0 + 230_000 })
    expect(due.skipped).toBe(false)
    expect(due.out.changes.map((c) => c.publicKey)).toContain(keys[2])
    expect(run(q, { ...first, tracks: due.out.tracks, nowMs: T0 + 230_001 }).skipped).toBe(false)
  })

  it('remembers only reads where every peer was parked on the hub, its track kept as it was', () => {
    const q = new QuietReads()
    // One peer direct: its checks depend on the time, so no read is skipped.
    const first = rest({ tracks: [parked(0), parked(1), { ...parked(2), phase: 'direct', reason: 'handshake from the peer' }] })
    const a = run(q, first)
    expect(run(q, { ...first, tracks: a.out.tracks, nowMs: first.nowMs + 1 }).skipped).toBe(false)
  })
})
