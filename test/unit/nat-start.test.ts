import type { NetworkInterfaceInfo } from 'node:os'
import { describe, expect, it } from 'vitest'
import { parsePrefix } from '../../src/shared/ip.js'
import { firstAttemptsPending, hasGlobalIpv6, needsNatNow } from '../../src/client/nat/nat-start.js'
import type { DesiredPeer } from '../../src/client/paths/vet-table.js'
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

describe('needsNatNow', () => {
  const peer = (extra: Partial<DesiredPeer>): DesiredPeer => ({ publicKey: 'k', endpoint: { address: '198.18.2.2', port: 51820 }, allowedIps: [], online: true, candidates: [], natClass: 'easy', readyFor: false, mayInitiate: true, ...extra })
  const SELF = '198.18.1.2'
  it.each<[string, DesiredPeer[], boolean]>([
    ['no peers', [], false],
    ['easy peers elsewhere', [peer({}), peer({ natClass: 'public' })], false],
    ['a peer that has announced nothing yet', [peer({ natClass: 'unknown', silent: true })], false],
    ['a peer behind a hard NAT', [peer({}), peer({ natClass: 'hard' })], true],
    ['a peer with IPv6 endpoints', [peer({ ipv6: [{ address: '2001:db8::2', port: 51820 }] })], true],
    ['a peer with an empty IPv6 list', [peer({ ipv6: [] })], false],
    ['a peer with a port mapping', [peer({ mapped: { address: '198.18.2.2', port: 40000 } })], true],
    ['a peer behind our own public address', [peer({ endpoint: { address: SELF, port: 40001 } })], true],
    ['a peer with no endpoint', [peer({ endpoint: null })], false]
  ])('%s', (_name, peers, want) => {
    expect(needsNatNow(new Map(peers.map((p, i) => [`key${i}`, p])), SELF)).toBe(want)
  })
  it('does not take a peer for one behind our address while ours is not known', () => {
    expect(needsNatNow(new Map([['k', peer({ endpoint: null })]]), null)).toBe(false)
  })
})

describe('hasGlobalIpv6', () => {
  const MESH = [parsePrefix('100.64.0.0/24'), parsePrefix('2001:db8:ffff::/48')]
  const v6 = (address: string, internal = false): NetworkInterfaceInfo => ({ address, netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '00:00:00:00:00:00', internal, cidr: `${address}/64`, scopeid: 0 })
  const v4 = (address: string): NetworkInterfaceInfo => ({ address, netmask: '255.255.255.0', family: 'IPv4', mac: '00:00:00:00:00:00', internal: false, cidr: `${address}/24` })
  it.each<[string, NodeJS.Dict<NetworkInterfaceInfo[]>, boolean]>([
    ['IPv4 only', { eth0: [v4('198.19.1.2')] }, false],
    ['a global IPv6 address on the LAN interface', { eth0: [v4('198.19.1.2'), v6('2001:db8:1::2')] }, true],
    ['link-local only', { eth0: [v6('fe80::1')] }, false],
    ['a unique local address only', { eth0: [v6('fd00::2')] }, false],
    ['loopback', { lo: [v6('::1', true)] }, false],
    ['global IPv6 only on the WireGuard interface', { wg0: [v6('2001:db8:2::1')], eth0: [v4('198.19.1.2')] }, false],
    ['an address inside the mesh', { eth0: [v6('2001:db8:ffff::5')] }, false],
    ['6to4', { eth0: [v6('2002:c000:204::1')] }, false],
    ['Teredo', { eth0: [v6('2001:0:4136:e378::1')] }, false],
    ['the top of 2000::/3', { eth0: [v6('3fff:1::2')] }, true],
    ['just below 2000::/3 (a short first group)', { eth0: [v6('1fff::2'), v6('2ff::1')] }, false],
    ['just above 2000::/3', { eth0: [v6('4000::1')] }, false]
  ])('%s', (_name, interfaces, want) => {
    expect(hasGlobalIpv6(interfaces, 'wg0', MESH)).toBe(want)
  })
})
