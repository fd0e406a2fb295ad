import { execFileSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { parseHubEndpoint } from '../../src/server/bootstrap/endpoint-arg.js'
import { fullTunnelHooks, hubConfig, hubFacts, spokeConfig, takenAddresses } from '../../src/server/bootstrap/hub-config.js'
import { generateKeyPair, publicKeyOf } from '../../src/server/bootstrap/key-pair.js'
import { peerRows, renderPeers, withPolicy } from '../../src/server/bootstrap/peers-command.js'
import { evaluatePolicy } from '../../src/server/policy/evaluate-policy.js'
import { parsePolicy } from '../../src/server/policy/parse-policy.js'
import { resolvePeer } from '../../src/server/bootstrap/resolve-peer.js'
import { PEER_NAME_RE } from '../../src/server/inventory/peer-names.js'
import { parsePrefix } from '../../src/shared/ip.js'
import { isWgKey } from '../../src/shared/wg-dump.js'
import { parseWgQuickConfig, peersOf, renderWgQuickConfig } from '../../src/shared/wg-quick-config.js'
import { testKey } from '../helpers/keys.js'

describe('peer names', () => {
  it.each(['a', 'alice', 'web-1', 'a'.repeat(32), 'x9'])('accepts %s', (name) => { expect(PEER_NAME_RE.test(name)).toBe(true) })
  it.each(['', 'Alice', '1abc', '-a', 'a-', 'a_b', 'a.b', 'a'.repeat(33), 'a b', 'ä'])('rejects %j', (name) => { expect(PEER_NAME_RE.test(name)).toBe(false) })
})

describe('hub endpoint', () => {
  it.each([
    ['vpn.example.com', 'vpn.example.com:51820'],
    ['vpn.example.com:443', 'vpn.example.com:443'],
    ['198.18.1.2', '198.18.1.2:51820'],
    ['198.18.1.2:1', '198.18.1.2:1'],
    ['[2001:db8::1]:51821', '[2001:db8::1]:51821'],
    ['2001:db8::1', '[2001:db8::1]:51820']
  ])('%s -> %s', (text, want) => { expect(parseHubEndpoint(text, 51820)).toBe(want) })
  it.each(['', 'host:0', 'host:65536', 'host:x', 'bad_host', '1.2.3.256', '[1.2.3.4]:5', '-a.com', 'a..b',
    // Addresses no spoke elsewhere reaches the hub at (the audit's list).
    '[fe80::1%eth0]:51820', 'fe80::1', '0.0.0.0', '[::]', '127.0.0.1:51820', '[::1]:51820', '224.0.0.1', '169.254.1.1'])('rejects %j with exit 64', (text) => {
    try { parseHubEndpoint(text, 51820); expect.fail(text) } catch (err) { expect((err as { exitCode: number }).exitCode).toBe(64) }
  })
})

describe('keys', () => {
  it('generates clamped pairs whose public key matches `wg pubkey`', () => {
    const pair = generateKeyPair()
    expect(isWgKey(pair.privateKey) && isWgKey(pair.publicKey)).toBe(true)
    const raw = Buffer.from(pair.privateKey, 'base64')
    expect(raw[0]! & 7).toBe(0)
    expect(raw[31]! & 0xc0).toBe(0x40)
    expect(generateKeyPair().privateKey).not.toBe(pair.privateKey)
    let wgSays: string | undefined
    try { wgSays = execFileSync('wg', ['pubkey'], { input: pair.privateKey + '\n' }).toString().trim() } catch { /* no wg here */ }
    if (wgSays !== undefined) expect(publicKeyOf(pair.privateKey)).toBe(wgSays)
    // RFC 7748 test vector (Alice).
    expect(publicKeyOf(Buffer.from('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a', 'hex').toString('base64')))
      .toBe(Buffer.from('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a', 'hex').toString('base64'))
  })
})

describe('hub and spoke configs', () => {
  const hubPriv = generateKeyPair().privateKey
  it('the hub config parses back, with forwarding hooks and the facts add-peer needs', () => {
    const text = renderWgQuickConfig(hubConfig({ privateKey: hubPriv, address: '10.8.0.1/24', listenPort: 51820, forward: true }))
    const parsed = parseWgQuickConfig(text)
    expect(renderWgQuickConfig(parsed)).toBe(text)
    expect(text).toMatch(/^PostUp = sysctl -q -w net.ipv4.ip_forward=1; iptables -w -I FORWARD -i %i -o %i -j ACCEPT$/m)
    expect(text).toMatch(/^PostDown = iptables -w -D FORWARD -i %i -o %i -j ACCEPT$/m)
    expect(hubFacts(parsed, 'x')).toMatchObject({ address: '10.8.0.1', subnet: { text: '10.8.0.0/24' }, listenPort: 51820, privateKey: hubPriv })
    const noForward = renderWgQuickConfig(hubConfig({ privateKey: hubPriv, address: '10.8.0.1/24', listenPort: 1, forward: false }))
    expect(noForward).not.toContain('PostUp')
  })

  it('the spoke config: its address in the subnet, the hub with endpoint, the mesh as allowed IPs, keepalive 25', () => {
    const spokePriv = generateKeyPair().privateKey
    const init = { name: 'alice', privateKey: spokePriv, address: '10.8.0.2', subnet: parsePrefix('10.8.0.0/24'), hubPublicKey: testKey('hub'), endpoint: 'vpn.example.com:51820', fullTunnel: false }
    const config = parseWgQuickConfig(renderWgQuickConfig(spokeConfig(init)))
    expect(renderWgQuickConfig(config)).toBe([
      '# alice: spoke of the wgnat hub at vpn.example.com:51820',
      '[Interface]', `PrivateKey = ${spokePriv}`, 'Address = 10.8.0.2/24', '',
      '[Peer]', `PublicKey = ${testKey('hub')}`, 'Endpoint = vpn.example.com:51820', 'AllowedIPs = 10.8.0.0/24', 'PersistentKeepalive = 25', ''
    ].join('\n'))
    expect(peersOf(parseWgQuickConfig(renderWgQuickConfig(spokeConfig({ ...init, fullTunnel: true }))))[0]?.allowedIps).toEqual(['0.0.0.0/0'])
  })

  it('full-tunnel hooks are scoped to the spoke and undo what they do', () => {
    const { up, down } = fullTunnelHooks('10.8.0.7')
    expect(up).toContain('-t nat -A POSTROUTING -s 10.8.0.7/32 ! -o %i -j MASQUERADE')
    expect(down.split('; ')).toEqual(up.split('; ').map((c) => c.replace(' -A ', ' -D ').replace(' -I ', ' -D ')))
  })

  it('finds taken addresses and resolves a peer by name, key or address', () => {
    const config = parseWgQuickConfig(`[Interface]\nAddress = 10.8.0.1/24\n[Peer]\nPublicKey = ${testKey('a')}\nAllowedIPs = 10.8.0.2/32, 192.168.5.0/24\n[Peer]\nPublicKey = ${testKey('b')}\nAllowedIPs = 10.8.0.3/32\n`)
    expect(takenAddresses(config)).toEqual(['10.8.0.2', '192.168.5.0/24', '10.8.0.3'])
    const names = new Map([[testKey('b'), 'bob']])
    const peers = peersOf(config)
    expect(resolvePeer('bob', peers, names, 'wg0').publicKey).toBe(testKey('b'))
    expect(resolvePeer(testKey('a'), peers, names, 'wg0').publicKey).toBe(testKey('a'))
    expect(resolvePeer('10.8.0.2', peers, names, 'wg0').publicKey).toBe(testKey('a'))
    expect(() => resolvePeer('carol', peers, names, 'wg0')).toThrow("no peer 'carol' on wg0")
    expect(() => resolvePeer('192.168.5.1', peers, names, 'wg0')).toThrow(/no peer/)
    expect(() => resolvePeer('Bob!', peers, names, 'wg0')).toThrow(/not a name, a public key or a tunnel address/)
  })

  it('lists saved and live peers, names or none, and says where they disagree', () => {
    const config = parseWgQuickConfig(`[Interface]\nAddress = 10.8.0.1/24\n[Peer]\nPublicKey = ${testKey('a')}\nAllowedIPs = 10.8.0.2/32\n[Peer]\nPublicKey = ${testKey('b')}\nAllowedIPs = 10.8.0.3/32\n`)
    const rows = peerRows(peersOf(config), [
      { publicKey: testKey('a'), allowedIps: ['10.8.0.2/32'], endpoint: '198.18.11.2:51820', latestHandshake: 990 },
      { publicKey: testKey('c'), allowedIps: ['10.8.0.9/32'], endpoint: null, latestHandshake: 0 }
    ], new Map([[testKey('a'), 'alice']]))
    expect(rows).toEqual([
      { name: 'alice', address: '10.8.0.2', publicKey: testKey('a'), allowedIps: ['10.8.0.2/32'], endpoint: '198.18.11.2:51820', latestHandshake: 990, saved: true, live: true },
      { name: null, address: '10.8.0.3', publicKey: testKey('b'), allowedIps: ['10.8.0.3/32'], endpoint: null, latestHandshake: 0, saved: true, live: false },
      { name: null, address: '10.8.0.9', publicKey: testKey('c'), allowedIps: ['10.8.0.9/32'], endpoint: null, latestHandshake: 0, saved: false, live: true }
    ])
    const text = renderPeers({ interface: 'wg0', up: true, peers: rows }, 1000)
    expect(text).toMatch(/^alice +10\.8\.0\.2 +\S+ +198\.18\.11\.2:51820 +10s ago$/m)
    expect(text).toMatch(/^- +10\.8\.0\.3 .*never +not on the live interface$/m)
    expect(text).toMatch(/not in the saved config$/m)
    expect(text).not.toContain('MAY OPEN TO')
  })

  it('with --policy, shows whom each peer may open connections to (admin: one to many, one way)', () => {
    const config = parseWgQuickConfig(`[Interface]\nAddress = 10.8.0.1/24\n` + ['a', 'b', 'c'].map((k, i) => `[Peer]\nPublicKey = ${testKey(k)}\nAllowedIPs = 10.8.0.${i + 2}/32\n`).join(''))
    const names = new Map([[testKey('a'), 'laptop'], [testKey('b'), 'nas'], [testKey('c'), 'cam']])
    const rows = peerRows(peersOf(config), undefined, names)
    const policy = parsePolicy(JSON.stringify({ groups: { admins: ['laptop'], devices: ['nas', '10.8.0.4'] }, rules: [{ from: ['admins'], to: ['devices'] }] }), 'p.json', names)
    const shown = withPolicy(rows, evaluatePolicy(policy, rows, names))
    expect(shown.map((r) => [r.name, r.mayOpen])).toEqual([['laptop', ['nas', 'cam']], ['nas', []], ['cam', []]])
    const text = renderPeers({ interface: 'wg0', up: false, peers: shown }, 1000)
    expect(text).toContain('MAY OPEN TO (POLICY)')
    expect(text).toMatch(/^laptop +10\.8\.0\.2 +\S+ +- +- +nas,cam$/m)
    expect(text).toMatch(/^nas +10\.8\.0\.3 +\S+ +- +- +-$/m)
  })
})
