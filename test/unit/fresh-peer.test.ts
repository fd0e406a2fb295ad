import { describe, expect, it } from 'vitest'
import { needsFreshPeer } from '../../src/client/paths/fresh-peer.js'
import { defaultTiming, reconcile, type PeerTrack } from '../../src/client/paths/reconcile.js'
import type { DesiredPeer } from '../../src/client/paths/vet-table.js'
import { formatEndpoint } from '../../src/shared/ip.js'
import { ep, newPeer } from '../helpers/fake-wg.js'
import { testKey } from '../helpers/keys.js'

const SELF = testKey('self'); const HUB = testKey('hub'); const B = testKey('b')
const V4 = ep('198.18.12.2:51820')
const V6 = ep('[2001:db8:1:2::2]:51820')

describe('needsFreshPeer: only an IPv6 attempt on a peer already on the interface, never with a preshared key', () => {
  it.each([
    { kind: 'ipv6' as const, onDevice: { hasPresharedKey: false }, expected: true },
    { kind: 'ipv6' as const, onDevice: { hasPresharedKey: true }, expected: false },
    { kind: 'ipv6' as const, onDevice: undefined, expected: false },
    { kind: 'ipv4' as const, onDevice: { hasPresharedKey: false }, expected: false },
    { kind: 'lan' as const, onDevice: { hasPresharedKey: false }, expected: false },
    { kind: 'mapped' as const, onDevice: { hasPresharedKey: false }, expected: false },
    { kind: null, onDevice: { hasPresharedKey: false }, expected: false }
  ])('$kind, on device $onDevice: $expected', ({ kind, onDevice, expected }) => {
    expect(needsFreshPeer(kind, onDevice)).toBe(expected)
  })
})

describe('reconcile: switching a trying peer to its IPv6 candidate re-adds it (WireGuard holds initiations 5 s)', () => {
  const timing = defaultTiming(25)
  const t0 = 1_700_000_000_000
  const hub = newPeer(HUB, { allowedIps: ['100.64.0.0/24'] })
  const want = (over: Partial<DesiredPeer> = {}): DesiredPeer =>
    ({ publicKey: B, endpoint: V4, allowedIps: ['100.64.0.3/32'], online: true, candidates: [], natClass: 'hard', readyFor: false, mayInitiate: true, ...over })
  const run = (peer: DesiredPeer, self: { natClass: string, publicAddress: string | null, ipv6?: boolean }, tracks: Map<string, PeerTrack>, nowMs: number, peers = [hub]) =>
    reconcile({ nowMs, selfKey: SELF, device: { publicKey: SELF, listenPort: 51820, peers }, desired: new Map([[B, peer]]), tracks, timing, self })

  // Before NAT discovery neither side knows the other's IPv6 addresses: the first attempt goes to the IPv4 endpoint.
  const first = run(want(), { natClass: 'unknown', publicAddress: '198.18.11.2' }, new Map(), t0)
  const onDevice = newPeer(B, { endpoint: V4, persistentKeepalive: 25, allowedIps: [] })

  it('the first attempt (IPv4, before discovery) is a plain kick, as before', () => {
    expect(first.changes).toEqual([expect.objectContaining({ publicKey: B, endpoint: V4, kick: true })])
    expect(first.tracks.get(B)?.phase).toBe('trying')
  })

  it('the peer\'s IPv6 announcement 0.3 s later: removed and added back with the IPv6 endpoint in one change set', () => {
    const out = run(want({ ipv6: [V6] }), { natClass: 'hard', publicAddress: '198.18.11.2', ipv6: true }, first.tracks, t0 + 300, [hub, onDevice])
    expect(out.changes).toEqual([
      { publicKey: B, remove: true },
      { publicKey: B, endpoint: V6, persistentKeepalive: 25, allowedIps: [] }
    ])
    expect(out.tracks.get(B)).toMatchObject({ phase: 'trying', endpoint: formatEndpoint(V6), failures: 0 })
  })

  it('with a preshared key (which we do not hold) it stays a kick', () => {
    const psk = { ...onDevice, hasPresharedKey: true }
    const out = run(want({ ipv6: [V6] }), { natClass: 'hard', publicAddress: '198.18.11.2', ipv6: true }, first.tracks, t0 + 300, [hub, psk])
    expect(out.changes).toEqual([expect.objectContaining({ publicKey: B, endpoint: V6, kick: true })])
    expect(out.changes.some((c) => c.remove === true)).toBe(false)
  })

  it('an IPv4 switch (a new IPv4 endpoint from the registry) stays a kick: IPv4 behaviour unchanged', () => {
    const v4b = ep('198.18.12.2:40000')
    const out = run(want({ endpoint: v4b, natClass: 'easy' }), { natClass: 'easy', publicAddress: '198.18.11.2' }, first.tracks, t0 + 300, [hub, onDevice])
    expect(out.changes).toEqual([expect.objectContaining({ publicKey: B, endpoint: v4b, kick: true })])
    expect(out.changes.some((c) => c.remove === true)).toBe(false)
  })
})
