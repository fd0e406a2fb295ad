import { describe, expect, it } from 'vitest'
import { resolveExposes, type ResolveContext } from '../../src/server/expose/expose-resolve.js'
import { ExposeSpecError, parseExposeSpec } from '../../src/server/expose/expose-spec.js'
import { testKey } from '../helpers/keys.js'

const NAS = testKey('nas')
const GAME = testKey('game')
const SITE = testKey('site')
const V6 = testKey('v6')

const ctx: ResolveContext = {
  peers: [
    { publicKey: NAS, allowedIps: ['10.8.0.2/32', 'fd00::2/128'] },
    { publicKey: GAME, allowedIps: ['10.8.0.5/32'] },
    { publicKey: SITE, allowedIps: ['192.168.50.0/24'] },
    { publicKey: V6, allowedIps: ['fd00::9/128'] }
  ],
  names: new Map([[NAS, 'nas'], [testKey('gone'), 'gone']]),
  reserved: [
    { port: 51820, proto: 'udp', what: 'WireGuard\'s listen port' },
    { port: 51820, proto: 'tcp', what: 'the registry\'s port' },
    { port: 3478, proto: 'udp', what: 'the STUN server\'s port' }
  ]
}

const resolve = (...texts: string[]) => resolveExposes(texts.map(parseExposeSpec), ctx)

describe('resolveExposes', () => {
  it.each([
    ['443/tcp=nas:443', NAS, '10.8.0.2', 'ipv4', 'nas'],
    [`443/tcp=${GAME}:443`, GAME, '10.8.0.5', 'ipv4', GAME.slice(0, 8)],
    ['27015/udp=10.8.0.5:27015', GAME, '10.8.0.5', 'ipv4', GAME.slice(0, 8)],
    ['80/tcp=192.168.50.7:80', SITE, '192.168.50.7', 'ipv4', SITE.slice(0, 8)],
    ['80/tcp=[fd00::2]:80', NAS, 'fd00::2', 'ipv6', 'nas'],
    [`80/tcp=${V6}:80`, V6, 'fd00::9', 'ipv6', V6.slice(0, 8)],
    ['51822/udp=10.8.0.2:51821', NAS, '10.8.0.2', 'ipv4', 'nas']
  ])('%s goes to the right peer and address', (text, key, address, family, label) => {
    const [e] = resolve(text)
    expect(e).toMatchObject({ peerKey: key, address, family, peerLabel: label })
  })

  it('a UDP expose may use the registry\'s TCP port number, and the other way round', () => {
    expect(resolve('3478/tcp=nas:3478', '51821/udp=nas:1')).toHaveLength(2)
  })

  it('a set of exposes that do not collide', () => {
    const all = resolve('80/tcp=nas:80', '80/udp=nas:80', '8000-8010/tcp=nas:8000', '8011/tcp=nas:1')
    expect(all.map((e) => e.spec.text)).toEqual(['80/tcp=nas:80', '80/udp=nas:80', '8000-8010/tcp=nas:8000', '8011/tcp=nas:1'])
  })

  it.each([
    [['443/tcp=ghost:443'], /'443\/tcp=ghost:443': no peer named 'ghost'/],
    [['443/tcp=gone:443'], /peer 'gone' is not a peer of the interface/],
    [[`443/tcp=${testKey('stranger')}:443`], /is not a peer of the interface/],
    [['443/tcp=10.9.9.9:443'], /no peer has '10.9.9.9' in its allowed IPs/],
    [[`443/tcp=${SITE}:443`], /no single tunnel address/],
    [['51820/udp=nas:51820'], /port 51820\/udp is WireGuard's listen port/],
    [['51820/tcp=nas:51820'], /port 51820\/tcp is the registry's port/],
    [['3470-3480/udp=nas:3470'], /port 3478\/udp is the STUN server's port/],
    [['80/tcp=nas:80', '80/tcp=10.8.0.5:80'], /'80\/tcp=10.8.0.5:80': 80\/tcp overlaps '80\/tcp=nas:80'/],
    [['8000-8010/tcp=nas:8000', '8010-8020/tcp=nas:9000'], /8010-8020\/tcp overlaps '8000-8010\/tcp=nas:8000'/],
    [['9000/udp=nas:1', '8990-9000/udp=nas:1'], /overlaps/]
  ])('refuses %j', (texts, why) => {
    let error: unknown
    try { resolve(...texts) } catch (err) { error = err }
    expect(error).toBeInstanceOf(ExposeSpecError)
    expect((error as ExposeSpecError).exitCode).toBe(64)
    expect((error as Error).message).toMatch(why)
  })
})
