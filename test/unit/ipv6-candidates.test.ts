import { describe, expect, it } from 'vitest'
import { candidateKind } from '../../src/client/paths/candidate-kind.js'
import { orderCandidates } from '../../src/client/paths/candidate-order.js'
import { ipv6RejectReason, MAX_IPV6_CANDIDATES, ownIpv6Endpoints, vetIpv6Candidates } from '../../src/client/paths/ipv6-candidates.js'
import { defaultTiming, reconcile, type PeerTrack } from '../../src/client/paths/reconcile.js'
import { vetTable, type DesiredPeer } from '../../src/client/paths/vet-table.js'
import { discover } from '../../src/client/nat/nat-discovery.js'
import { formatEndpoint, parsePrefix } from '../../src/shared/ip.js'
import type { NetlinkAddress } from '../../src/shared/netlink-addresses.js'
import { announceSchema, type TablePeer } from '../../src/shared/protocol.js'
import { ep, newPeer } from '../helpers/fake-wg.js'
import { testKey } from '../helpers/keys.js'

const MESH = [parsePrefix('100.64.0.0/24'), parsePrefix('fd64::/64'), parsePrefix('2001:db8:64::/48')]
const SELF = testKey('self'); const HUB = testKey('hub'); const B = testKey('b')

describe('ipv6RejectReason: only global unicast outside the mesh', () => {
  const cases: Array<[string, RegExp | undefined]> = [
    ['2001:db8:1:2::2', undefined],
    ['2a00:1450::1', undefined],
    ['fe80::1', /linkLocal/],
    ['fd00::1', /uniqueLocal/],
    ['::1', /loopback/],
    ['::', /unspecified/],
    ['ff02::1', /multicast/],
    ['::ffff:192.0.2.1', /not an IPv6 address/],
    ['192.0.2.1', /not an IPv6 address/],
    ['2002:c000:201::1', /6to4/],
    ['2001:0:4136:e378::1', /Teredo/],
    ['2001:db8:64::5', /inside the mesh/],
    ['64:ff9b::c000:201', /not global unicast/],
    ['nonsense', /not an IP address/]
  ]
  it.each(cases)('%s', (address, expected) => {
    const why = ipv6RejectReason(address, MESH)
    if (expected === undefined) expect(why).toBeUndefined()
    else expect(why).toMatch(expected)
  })
})

describe('vetIpv6Candidates: what a peer announced, untrusted', () => {
  it('keeps bracketed global endpoints, drops the rest with a warning, dedupes, bounds the count', () => {
    const many = Array.from({ length: MAX_IPV6_CANDIDATES + 3 }, (_, i) => `[2001:db8:9::${i + 1}]:51820`)
    const { endpoints, warnings } = vetIpv6Candidates([
      '[2001:db8:1:2::2]:51820', '[2001:db8:1:2::2]:51820', '[fe80::1]:51820', '[fd00::5]:51820', '198.18.11.2:51820',
      '[::ffff:198.18.11.2]:51820', '[2001:db8:64::9]:51820', ...many
    ], MESH)
    expect(endpoints.map(formatEndpoint)).toEqual(['[2001:db8:1:2::2]:51820', ...many.slice(0, MAX_IPV6_CANDIDATES - 1)])
    expect(warnings.join('\n')).toMatch(/'\[fe80::1\]:51820': not global unicast/)
    expect(warnings.join('\n')).toMatch(/'\[fd00::5\]:51820': not global unicast \(uniqueLocal\)/)
    expect(warnings.join('\n')).toMatch(/'198.18.11.2:51820': not an IPv6 address/)
    expect(warnings.join('\n')).toMatch(/'\[::ffff:198.18.11.2\]:51820': not an IPv6 address/)
    expect(warnings.join('\n')).toMatch(/inside the mesh/)
    expect(warnings.join('\n')).toMatch(/more than 4 IPv6 candidates/)
  })
  it('nothing announced: nothing, no warning', () => {
    expect(vetIpv6Candidates(undefined, MESH)).toEqual({ endpoints: [], warnings: [] })
  })
})

let ifindex = 1
function addr (ifname: string, address: string, over: Partial<NetlinkAddress> = {}): NetlinkAddress {
  return { ifname, ifindex: ifindex++, family: address.includes(':') ? 'IPv6' : 'IPv4', address, bits: 64, scope: 'global', tentative: false, deprecated: false, ...over }
}

describe('ownIpv6Endpoints and discover: our global IPv6 addresses with the WireGuard port', () => {
  const addresses = [
    addr('lo', '::1', { scope: 'host' }),
    addr('eth0', '198.19.1.2'),
    addr('eth0', 'fe80::1', { scope: 'link' }),
    addr('eth0', '2001:db8:1:1::2'),
    addr('eth0', 'fd12::2'),
    addr('eth0', '2001:db8:1:1::3', { tentative: true }),
    addr('eth0', '2001:db8:1:1::4', { deprecated: true }),
    addr('wg0', '2001:db8:64::2'),
    addr('eth1', '2001:db8:64::7'),
    addr('eth1', '2001:db8:5::2')
  ]
  it('keeps usable global unicast ones only', () => {
    expect(ownIpv6Endpoints(addresses, { iface: 'wg0', listenPort: 51821, meshPrefixes: MESH })).toEqual(['[2001:db8:1:1::2]:51821', '[2001:db8:5::2]:51821'])
  })
  it('discover announces them as ipv6Endpoints (schema-valid), and leaves the field out without IPv6', () => {
    const found = discover({ listenPort: 51820, addresses, iface: 'wg0', meshPrefixes: MESH, hubView: null, stun: null })
    expect(found.announce.ipv6Endpoints).toEqual(['[2001:db8:1:1::2]:51820', '[2001:db8:5::2]:51820'])
    expect(announceSchema.parse(found.announce)).toEqual(found.announce)
    const v4only = discover({ listenPort: 51820, addresses: addresses.filter((a) => a.family === 'IPv4'), iface: 'wg0', meshPrefixes: MESH, hubView: null, stun: null })
    expect('ipv6Endpoints' in v4only.announce).toBe(false)
  })
  it('an announcement without the field (older client) is still valid', () => {
    expect(announceSchema.parse({ natClass: 'hard', mappedEndpoint: null, lanEndpoints: [] }).ipv6Endpoints).toBeUndefined()
  })
})

function want (over: Partial<DesiredPeer> = {}): DesiredPeer {
  return { publicKey: B, endpoint: ep('198.18.12.2:51820'), allowedIps: ['100.64.0.3/32'], online: true, candidates: [], natClass: 'hard', readyFor: false, mayInitiate: true, ...over }
}
const V6 = ep('[2001:db8:1:2::2]:51820')
const V6B = ep('[2001:db8:1:2::3]:51820')

describe('orderCandidates: IPv6 first when both sides have it', () => {
  const v4 = [ep('198.18.12.2:51820')]
  const cases: Array<{ name: string, peer: DesiredPeer, self: { ipv6?: boolean } | undefined, expected: string[] }> = [
    { name: 'both have IPv6: the peer\'s first IPv6 candidate, then IPv4', peer: want({ ipv6: [V6, V6B] }), self: { ipv6: true }, expected: ['[2001:db8:1:2::2]:51820', '198.18.12.2:51820'] },
    { name: 'we have none: IPv4 only', peer: want({ ipv6: [V6] }), self: { ipv6: false }, expected: ['198.18.12.2:51820'] },
    { name: 'self unknown: IPv4 only', peer: want({ ipv6: [V6] }), self: undefined, expected: ['198.18.12.2:51820'] },
    { name: 'the peer has none: IPv4 only', peer: want(), self: { ipv6: true }, expected: ['198.18.12.2:51820'] },
    { name: 'the peer is unknown to the hub (no endpoint): nothing new', peer: want({ endpoint: null, ipv6: [V6] }), self: { ipv6: true }, expected: ['198.18.12.2:51820'] }
  ]
  it.each(cases)('$name', ({ peer, self, expected }) => {
    expect(orderCandidates(peer, self, v4).map(formatEndpoint)).toEqual(expected)
  })
  it('candidateKind names the IPv6 candidate', () => {
    expect(candidateKind(want({ ipv6: [V6] }), '[2001:db8:1:2::2]:51820')).toBe('ipv6')
    expect(candidateKind(want({ ipv6: [V6] }), '198.18.12.2:51820')).toBe('ipv4')
    expect(candidateKind(want(), '[2001:db8:1:2::2]:51820')).toBeNull()
    // A public host announces its public address as a LAN one too: the endpoint the hub sees is ipv4, not lan.
    expect(candidateKind(want({ candidates: [ep('198.18.12.2:51820')] }), '198.18.12.2:51820')).toBe('ipv4')
    expect(candidateKind(want({ candidates: [ep('198.19.2.2:51820')] }), '198.19.2.2:51820')).toBe('lan')
  })
})

describe('reconcile with IPv6 candidates', () => {
  const timing = defaultTiming(25)
  const device = { publicKey: SELF, listenPort: 51820, peers: [newPeer(HUB, { allowedIps: ['100.64.0.0/24'] })] }
  const run = (peer: DesiredPeer, self: { natClass: string, publicAddress: string | null, ipv6?: boolean }, tracks = new Map<string, PeerTrack>(), nowMs = 1_700_000_000_000, peers = device.peers) =>
    reconcile({ nowMs, selfKey: SELF, device: { ...device, peers }, desired: new Map([[B, peer]]), tracks, timing, self })

  it('hard-hard with IPv6 on both sides: the first attempt goes to the IPv6 candidate (no longer hopeless)', () => {
    const out = run(want({ ipv6: [V6] }), { natClass: 'hard', publicAddress: '198.18.11.2', ipv6: true })
    expect(out.changes).toEqual([expect.objectContaining({ publicKey: B, endpoint: V6, kick: true })])
    expect(out.tracks.get(B)?.reason).toMatch(/IPv6 endpoint/)
  })
  it('hard-hard with IPv6 on one side only: no attempt at all (hopeless, as before)', () => {
    expect(run(want({ ipv6: [V6] }), { natClass: 'hard', publicAddress: '198.18.11.2', ipv6: false }).changes).toEqual([])
    expect(run(want(), { natClass: 'hard', publicAddress: '198.18.11.2', ipv6: true }).changes).toEqual([])
  })
  it('an IPv6 attempt that gets no handshake falls back to the IPv4 endpoint on the next try', () => {
    const t0 = 1_700_000_000_000
    const peer = want({ natClass: 'easy', ipv6: [V6] })
    const self = { natClass: 'easy', publicAddress: '198.18.11.2', ipv6: true }
    const first = run(peer, self, new Map(), t0)
    expect(first.tracks.get(B)?.endpoint).toBe('[2001:db8:1:2::2]:51820')
    const onDevice = newPeer(B, { endpoint: V6, persistentKeepalive: 25 })
    const failed = run(peer, self, first.tracks, t0 + timing.directTimeoutMs, [...device.peers, onDevice])
    expect(failed.tracks.get(B)?.phase).toBe('hub')
    const retryAt = failed.tracks.get(B)?.retryAtMs ?? 0
    const retry = run(peer, self, failed.tracks, retryAt, [...device.peers, onDevice])
    expect(retry.tracks.get(B)?.endpoint).toBe('198.18.12.2:51820')
  })
})

describe('vetTable: announced IPv6 endpoints vetted into DesiredPeer.ipv6', () => {
  const peer = (ipv6Endpoints: string[]): TablePeer => ({
    publicKey: B, endpoint: '198.18.12.2:51820', allowedIps: ['100.64.0.3/32'], latestHandshake: 0, online: true,
    announce: { natClass: 'hard', mappedEndpoint: null, lanEndpoints: [], ready: [], ipv6Endpoints }
  })
  const ctx = { selfKey: SELF, registryKey: HUB, meshPrefixes: [parsePrefix('100.64.0.0/24')], registryAddresses: ['100.64.0.1'], hubPrefixes: [parsePrefix('100.64.0.0/24')], managed: new Set<string>(), device: { publicKey: SELF, listenPort: 51820, peers: [] } }
  it('keeps the good one, warns about the link-local one', () => {
    const { desired, warnings } = vetTable([peer(['[fe80::2]:51820', '[2001:db8:1:2::2]:51820'])], ctx)
    expect(desired.get(B)?.ipv6?.map(formatEndpoint)).toEqual(['[2001:db8:1:2::2]:51820'])
    expect(warnings).toEqual([expect.stringMatching(/ignoring IPv6 candidate '\[fe80::2\]:51820'/)])
  })
  it('none announced: no ipv6 field', () => {
    expect(vetTable([peer([])], ctx).desired.get(B)?.ipv6).toBeUndefined()
  })
})
