import { describe, expect, it } from 'vitest'
import { discover, type DiscoveryInput } from '../../src/client/nat/nat-discovery.js'
import type { StunProbeResult } from '../../src/client/nat/stun-probe.js'
import { parsePrefix } from '../../src/shared/ip.js'
import type { NetlinkAddress } from '../../src/shared/netlink-addresses.js'
import { PROTOCOL_LIMITS } from '../../src/shared/protocol.js'
import { ep } from '../helpers/fake-wg.js'

const LISTEN_PORT = 51820
const IFACE = 'wg0'
const MESH = [parsePrefix('100.64.0.0/24'), parsePrefix('fd64::/64')]
/** The hub's WireGuard endpoint, and two STUN servers. */
const HUB = ep('198.18.0.1:51820')
const STUN_1 = ep('198.18.0.1:3478'); const STUN_2 = ep('198.51.100.2:3478')
/** Our NAT's mapping of the WireGuard port, and another one (a symmetric NAT maps per destination). */
const MAPPED = ep('203.0.113.7:40000'); const MAPPED_OTHER = ep('203.0.113.7:40001')

let ifindex = 1
function addr (ifname: string, address: string, over: Partial<NetlinkAddress> = {}): NetlinkAddress {
  return {
    ifname,
    ifindex: ifindex++,
    family: address.includes(':') ? 'IPv6' : 'IPv4',
    address,
    bits: address.includes(':') ? 64 : 24,
    scope: 'global',
    tentative: false,
    deprecated: false,
    ...over
  }
}

/** A typical host: a LAN address, the tunnel address, loopback and a link-local IPv6 address. */
const HOST: NetlinkAddress[] = [
  addr('lo', '127.0.0.1', { scope: 'host', bits: 8 }),
  addr('lo', '::1', { scope: 'host', bits: 128 }),
  addr('eth0', '192.168.1.10'),
  addr('eth0', 'fe80::1', { scope: 'link' }),
  addr(IFACE, '100.64.0.2')
]

function stun (...samples: Array<[server: typeof STUN_1, mapped: typeof MAPPED]>): StunProbeResult {
  return {
    samples: samples.map(([server, mapped]) => ({ server: `${server.address}:${server.port}`, mapped })),
    failures: [],
    receiverStats: { seen: samples.length, otherPort: 0, malformed: 0, delivered: samples.length, handlerErrors: 0, socketErrors: 0 }
  }
}

function input (over: Partial<DiscoveryInput> = {}): DiscoveryInput {
  return { listenPort: LISTEN_PORT, addresses: HOST, iface: IFACE, meshPrefixes: MESH, hubView: null, stun: stun(), ...over }
}

describe('discover: NAT class from the STUN samples and the hub view', () => {
  const PUBLIC_HOST = [...HOST, addr('eth1', '203.0.113.7')]
  const cases: Array<{ name: string, input: DiscoveryInput, natClass: string, mapped: string | null, reason: RegExp }> = [
    {
      name: 'easy: a STUN server and the hub see the same mapping',
      input: input({ stun: stun([STUN_2, MAPPED]), hubView: { hub: HUB, mapped: MAPPED } }),
      natClass: 'easy', mapped: '203.0.113.7:40000', reason: /same mapping 203\.0\.113\.7:40000 seen by 2 servers/
    },
    {
      name: 'easy: two STUN servers agree, no hub view yet',
      input: input({ stun: stun([STUN_1, MAPPED], [STUN_2, MAPPED]) }),
      natClass: 'easy', mapped: '203.0.113.7:40000', reason: /seen by 2 servers/
    },
    {
      name: 'easy: the hub\'s STUN port and its WireGuard port are different servers',
      input: input({ stun: stun([STUN_1, MAPPED]), hubView: { hub: HUB, mapped: MAPPED } }),
      natClass: 'easy', mapped: '203.0.113.7:40000', reason: /seen by 2 servers/
    },
    {
      name: 'hard: the hub sees another port than the STUN server',
      input: input({ stun: stun([STUN_2, MAPPED]), hubView: { hub: HUB, mapped: MAPPED_OTHER } }),
      natClass: 'hard', mapped: '203.0.113.7:40000', reason: /differs by destination/
    },
    {
      name: 'hard: two STUN servers disagree',
      input: input({ stun: stun([STUN_1, MAPPED], [STUN_2, MAPPED_OTHER]), hubView: null }),
      natClass: 'hard', mapped: '203.0.113.7:40000', reason: /differs by destination/
    },
    {
      name: 'public: everyone sees a local address and the listen port',
      input: input({ addresses: PUBLIC_HOST, stun: stun([STUN_2, ep('203.0.113.7:51820')]), hubView: { hub: HUB, mapped: ep('203.0.113.7:51820') } }),
      natClass: 'public', mapped: '203.0.113.7:51820', reason: /local endpoint/
    },
    {
      name: 'not public: a local address but another port (a port-mapping firewall)',
      input: input({ addresses: PUBLIC_HOST, stun: stun([STUN_2, MAPPED]), hubView: { hub: HUB, mapped: MAPPED } }),
      natClass: 'easy', mapped: '203.0.113.7:40000', reason: /same mapping/
    },
    {
      name: 'not public: the listen port but an address that is not ours',
      input: input({ stun: stun([STUN_2, ep('203.0.113.7:51820')]), hubView: { hub: HUB, mapped: ep('203.0.113.7:51820') } }),
      natClass: 'easy', mapped: '203.0.113.7:51820', reason: /same mapping/
    },
    {
      name: 'unknown: no sample at all',
      input: input({ stun: stun(), hubView: null }),
      natClass: 'unknown', mapped: null, reason: /no mapping samples/
    },
    {
      name: 'unknown: one server only (the hub)',
      input: input({ stun: stun(), hubView: { hub: HUB, mapped: MAPPED } }),
      natClass: 'unknown', mapped: null, reason: /only one server/
    },
    {
      name: 'unknown: the same server twice is one server',
      input: input({ stun: stun([HUB, MAPPED]), hubView: { hub: HUB, mapped: MAPPED } }),
      natClass: 'unknown', mapped: '203.0.113.7:40000', reason: /only one server/
    }
  ]

  it.each(cases)('$name', ({ input, natClass, mapped, reason }) => {
    const found = discover(input)
    expect(found.announce.natClass).toBe(natClass)
    expect(found.announce.mappedEndpoint).toBe(mapped)
    expect(found.reason).toMatch(reason)
    expect(found.reason).not.toMatch(/raw sockets/)
  })

  const noStun: Array<{ name: string, hubView: DiscoveryInput['hubView'], addresses: NetlinkAddress[], natClass: string }> = [
    { name: 'no hub view either', hubView: null, addresses: HOST, natClass: 'unknown' },
    { name: 'the hub view alone cannot tell easy from hard', hubView: { hub: HUB, mapped: MAPPED }, addresses: HOST, natClass: 'unknown' },
    { name: 'the hub view alone can tell public', hubView: { hub: HUB, mapped: ep('203.0.113.7:51820') }, addresses: PUBLIC_HOST, natClass: 'public' }
  ]

  it.each(noStun)('without raw sockets (stun: null) the reason says so: $name', ({ hubView, addresses, natClass }) => {
    const found = discover(input({ stun: null, hubView, addresses }))
    expect(found.announce.natClass).toBe(natClass)
    expect(found.announce.mappedEndpoint).toBeNull()
    expect(found.reason).toMatch(/no STUN: raw sockets unavailable/)
    // LAN endpoints do not need raw sockets.
    expect(found.announce.lanEndpoints).toContain('192.168.1.10:51820')
  })
})

describe('discover: LAN endpoints', () => {
  const cases: Array<{ name: string, address: NetlinkAddress, expected: string[] }> = [
    { name: 'a global IPv4 address on the LAN', address: addr('eth0', '192.168.1.10'), expected: ['192.168.1.10:51820'] },
    { name: 'a global IPv6 address, in brackets', address: addr('eth0', '2001:db8:0:0::10'), expected: ['[2001:db8::10]:51820'] },
    { name: 'an address on a bridge', address: addr('br0', '10.1.2.3'), expected: ['10.1.2.3:51820'] },
    { name: 'a public address on the host', address: addr('eth1', '203.0.113.7'), expected: ['203.0.113.7:51820'] },
    { name: 'the WireGuard interface\'s own address', address: addr(IFACE, '10.99.0.2'), expected: [] },
    { name: 'the WireGuard interface\'s IPv6 address', address: addr(IFACE, '2001:db8:1::2'), expected: [] },
    { name: 'loopback', address: addr('lo', '127.0.0.1', { scope: 'host' }), expected: [] },
    { name: 'any address on lo, whatever its scope', address: addr('lo', '192.0.2.53'), expected: [] },
    { name: 'a loopback-range address with global scope on another interface', address: addr('dummy0', '127.0.0.2'), expected: [] },
    { name: 'IPv6 loopback with global scope on another interface', address: addr('dummy0', '::1'), expected: [] },
    { name: 'IPv6 link-local', address: addr('eth0', 'fe80::1', { scope: 'link' }), expected: [] },
    { name: 'IPv4 with link scope', address: addr('eth0', '169.254.7.7', { scope: 'link' }), expected: [] },
    { name: 'site scope', address: addr('eth0', 'fec0::1', { scope: 'site' }), expected: [] },
    { name: 'host scope', address: addr('eth0', '192.168.1.11', { scope: 'host' }), expected: [] },
    { name: 'nowhere scope', address: addr('eth0', '192.168.1.12', { scope: 'nowhere' }), expected: [] },
    { name: 'a tentative IPv6 address (DAD not done)', address: addr('eth0', '2001:db8::11', { tentative: true }), expected: [] },
    { name: 'a deprecated IPv6 address', address: addr('eth0', '2001:db8::12', { deprecated: true }), expected: [] },
    { name: 'an IPv4 address inside the mesh on another interface', address: addr('eth1', '100.64.0.77'), expected: [] },
    { name: 'an IPv6 address inside the mesh on another interface', address: addr('eth1', 'fd64::77'), expected: [] },
    { name: 'an address next to the mesh, outside it', address: addr('eth1', '100.64.1.77'), expected: ['100.64.1.77:51820'] }
  ]

  it.each(cases)('$name', ({ address, expected }) => {
    expect(discover(input({ addresses: [address] })).announce.lanEndpoints).toEqual(expected)
  })

  it('keeps the order of the interface list and carries the listen port', () => {
    const addresses = [...HOST, addr('eth0', '2001:db8::10'), addr('wlan0', '10.0.0.5'), addr(IFACE, 'fd64::2')]
    for (const listenPort of [51820, 1, 65535]) {
      expect(discover(input({ addresses, listenPort })).announce.lanEndpoints).toEqual([
        `192.168.1.10:${listenPort}`,
        `[2001:db8::10]:${listenPort}`,
        `10.0.0.5:${listenPort}`
      ])
    }
  })

  it(`announces at most PROTOCOL_LIMITS.maxCandidates (${PROTOCOL_LIMITS.maxCandidates}), the first ones`, () => {
    const many = Array.from({ length: PROTOCOL_LIMITS.maxCandidates + 5 }, (_, i) => addr(`veth${i}`, `10.20.${i}.1`))
    const lan = discover(input({ addresses: [addr(IFACE, '100.64.0.2'), ...many] })).announce.lanEndpoints
    expect(lan).toHaveLength(PROTOCOL_LIMITS.maxCandidates)
    expect(lan).toEqual(many.slice(0, PROTOCOL_LIMITS.maxCandidates).map((a) => `${a.address}:${LISTEN_PORT}`))
  })

  it('no usable address: an empty list, not an error', () => {
    expect(discover(input({ addresses: [] })).announce.lanEndpoints).toEqual([])
    expect(discover(input({ addresses: HOST.filter((a) => a.ifname !== 'eth0' || a.scope !== 'global') })).announce.lanEndpoints).toEqual([])
  })
})
