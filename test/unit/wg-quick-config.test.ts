import { describe, expect, it } from 'vitest'
import { ParseError } from '../../src/shared/errors.js'
import { addInterfaceEntry, addPeerSection, interfaceSection, makeSection, parseWgQuickConfig, peersOf, removeInterfaceEntry, removePeerSection, renderWgQuickConfig, valuesOf } from '../../src/shared/wg-quick-config.js'
import { testKey } from '../helpers/keys.js'

const PRIV = testKey('private')
const A = testKey('a'); const B = testKey('b')

/** Every key the project reads or writes, repeated keys, comments before and inside sections, inline comments. */
const FULL = `# made by hand
# second comment

[Interface]
# hub of the office
Address = 10.8.0.1/24, fd00::1/64
Address = 10.9.0.1/24
ListenPort = 51820
PrivateKey = ${PRIV}
FwMark = 0x1234
DNS = 10.8.0.53, example.internal
DNS = 9.9.9.9
MTU = 1420
Table = off
PreUp = echo pre-up %i
PostUp = sysctl -q -w net.ipv4.ip_forward=1; iptables -w -I FORWARD -i %i -o %i -j ACCEPT
PostUp = echo second
PreDown = echo pre-down
PostDown = iptables -w -D FORWARD -i %i -o %i -j ACCEPT
SaveConfig = false

[Peer]
PublicKey = ${A}
PresharedKey = ${testKey('psk')}
AllowedIPs = 10.8.0.2/32
AllowedIPs = 10.8.1.0/24, fd00::2/128
Endpoint = 198.18.11.2:51820 # the router
PersistentKeepalive = 25

[Peer]
PublicKey = ${B}
AllowedIPs = 10.8.0.3/32
Endpoint = [2001:db8::1]:51820
PersistentKeepalive = off
`

describe('wg-quick config', () => {
  it('round-trips every key the project reads or writes, repeated sections and keys, and comments', () => {
    const config = parseWgQuickConfig(FULL)
    expect(renderWgQuickConfig(config)).toBe(FULL)
    expect(parseWgQuickConfig(renderWgQuickConfig(config))).toEqual(config)
    const iface = interfaceSection(config)
    expect(valuesOf(iface, 'Address')).toEqual(['10.8.0.1/24', 'fd00::1/64', '10.9.0.1/24'])
    expect(valuesOf(iface, 'DNS')).toEqual(['10.8.0.53', 'example.internal', '9.9.9.9'])
    expect(valuesOf(iface, 'PostUp')).toEqual(['sysctl -q -w net.ipv4.ip_forward=1; iptables -w -I FORWARD -i %i -o %i -j ACCEPT', 'echo second'])
    expect(valuesOf(iface, 'ListenPort')).toEqual(['51820'])
    const peers = peersOf(config)
    expect(peers.map((p) => p.publicKey)).toEqual([A, B])
    expect(peers[0]).toMatchObject({ allowedIps: ['10.8.0.2/32', '10.8.1.0/24', 'fd00::2/128'], endpoint: '198.18.11.2:51820', persistentKeepalive: 25, hasPresharedKey: true })
    expect(peers[1]).toMatchObject({ endpoint: '[2001:db8::1]:51820', persistentKeepalive: 0, hasPresharedKey: false })
  })

  it('matches keys case-insensitively and keeps their case, and normalises whitespace', () => {
    const config = parseWgQuickConfig(`[interface]\n  privatekey=${PRIV}\naddress   =10.8.0.1/24\n[PEER]\npublickey = ${A}\nallowedips = 10.8.0.2/32\n`)
    expect(valuesOf(interfaceSection(config), 'Address')).toEqual(['10.8.0.1/24'])
    expect(peersOf(config)[0]?.allowedIps).toEqual(['10.8.0.2/32'])
    expect(renderWgQuickConfig(config)).toBe(`[Interface]\nprivatekey = ${PRIV}\naddress = 10.8.0.1/24\n[Peer]\npublickey = ${A}\nallowedips = 10.8.0.2/32\n`)
  })

  it('adds and removes peers and hook lines, leaving the rest as it was', () => {
    const config = parseWgQuickConfig(FULL)
    addPeerSection(config, makeSection('Peer', [['PublicKey', testKey('c')], ['AllowedIPs', '10.8.0.4/32']]))
    addInterfaceEntry(config, 'PostUp', 'echo third')
    const text = renderWgQuickConfig(config)
    expect(text).toContain(`PersistentKeepalive = off\n\n[Peer]\nPublicKey = ${testKey('c')}\nAllowedIPs = 10.8.0.4/32\n`)
    expect(text).toContain('PostUp = echo second\nPostUp = echo third\nPreDown')
    expect(removePeerSection(config, testKey('c'))).toBe(true)
    expect(removeInterfaceEntry(config, 'PostUp', 'echo third')).toBe(1)
    expect(renderWgQuickConfig(config)).toBe(FULL)
    expect(removePeerSection(config, testKey('nobody'))).toBe(false)
    expect(removePeerSection(config, A)).toBe(true)
    expect(peersOf(config).map((p) => p.publicKey)).toEqual([B])
  })

  it.each([
    ['a key before any section', `ListenPort = 1\n[Interface]\nPrivateKey = ${PRIV}\n`, /line 1: 'ListenPort' before any/],
    ['an unknown section', `[Interface]\nPrivateKey = ${PRIV}\n[Peers]\n`, /line 3: unknown section '\[Peers\]'/],
    ['an unknown key', `[Interface]\nPrivateKey = ${PRIV}\nListenPot = 5\n`, /line 3: unknown key 'ListenPot' in \[Interface\]/],
    ['a peer key in [Interface]', `[Interface]\nEndpoint = 1.2.3.4:5\n`, /unknown key 'Endpoint' in \[Interface\]/],
    ['a line without =', `[Interface]\nPrivateKey\n`, /line 2: not a 'Key = value' line/],
    ['a bad port', `[Interface]\nListenPort = 70000\n`, /ListenPort '70000' is not a port/],
    ['a bad prefix', `[Interface]\nAddress = 10.8.0.300/24\n`, /Address '10.8.0.300\/24' holds '10.8.0.300\/24', not an IP prefix/],
    ['a bad allowed IP in a list', `[Interface]\n[Peer]\nPublicKey = ${A}\nAllowedIPs = 10.8.0.2/32, nope\n`, /holds 'nope'/],
    ['a bad endpoint', `[Interface]\n[Peer]\nPublicKey = ${A}\nEndpoint = 1.2.3.4\n`, /Endpoint '1.2.3.4' is not host:port/],
    ['a bad keepalive', `[Interface]\n[Peer]\nPublicKey = ${A}\nPersistentKeepalive = soon\n`, /PersistentKeepalive 'soon'/],
    ['a bad SaveConfig', `[Interface]\nSaveConfig = yes\n`, /SaveConfig 'yes' is neither true nor false/],
    ['a bad public key', `[Interface]\n[Peer]\nPublicKey = abc\n`, /PublicKey 'abc' is not a WireGuard key/],
    ['two ListenPorts', `[Interface]\nListenPort = 1\nListenPort = 2\n`, /line 3: ListenPort given twice/],
    ['no [Interface]', `[Peer]\nPublicKey = ${A}\n`, /no \[Interface\] section/],
    ['two [Interface]', `[Interface]\n[Interface]\n`, /more than one \[Interface\]/],
    ['a peer without key', `[Interface]\n[Peer]\nAllowedIPs = 10.8.0.2/32\n`, /\[Peer\] section 1 has no PublicKey/],
    ['a duplicate peer', `[Interface]\n[Peer]\nPublicKey = ${A}\n[Peer]\nPublicKey = ${A}\n`, /appears twice/]
  ])('rejects %s, naming the line', (_what, text, message) => {
    expect(() => parseWgQuickConfig(text, 'wg0.conf')).toThrow(ParseError)
    expect(() => parseWgQuickConfig(text, 'wg0.conf')).toThrow(message)
  })

  it('never quotes a malformed private or preshared key', () => {
    const secret = 'c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA'
    for (const text of [`[Interface]\nPrivateKey = ${secret}\n`, `[Interface]\n[Peer]\nPublicKey = ${A}\nPresharedKey = ${secret}\n`]) {
      let message = ''
      try { parseWgQuickConfig(text) } catch (err) { message = (err as Error).message }
      expect(message).toMatch(/is not a WireGuard key/)
      expect(message).not.toContain(secret)
    }
  })
})
