import { describe, expect, it } from 'vitest'
import { ParseError } from '../../src/shared/errors.js'
import { parseWgDump } from '../../src/shared/wg-dump.js'
import { testKey } from '../helpers/keys.js'

const PRIV = 'yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk='
const PSK = 'FpCyhws9cxwWoV4xELtfJvjJN+zQVRPISllRWgeopVE='
const IFACE = [PRIV, testKey('hub'), '51820', 'off'].join('\t')

function peerLine (fields: Partial<Record<'key' | 'psk' | 'endpoint' | 'allowed' | 'hs' | 'rx' | 'tx' | 'ka', string>>): string {
  return [fields.key ?? testKey('a'), fields.psk ?? '(none)', fields.endpoint ?? '(none)', fields.allowed ?? '(none)',
    fields.hs ?? '0', fields.rx ?? '0', fields.tx ?? '0', fields.ka ?? 'off'].join('\t')
}

describe('parseWgDump', () => {
  it('reads the interface line and drops the private key', () => {
    const d = parseWgDump(IFACE + '\n')
    expect(d).toEqual({ publicKey: testKey('hub'), listenPort: 51820, peers: [] })
    expect(JSON.stringify(d)).not.toContain(PRIV)
  })

  it.each([
    ['IPv4 endpoint, several allowed IPs', { endpoint: '198.18.11.2:40000', allowed: '100.64.0.2/32,10.1.0.0/24' }, { endpoint: { address: '198.18.11.2', port: 40000 }, allowedIps: ['100.64.0.2/32', '10.1.0.0/24'] }],
    ['IPv6 endpoint', { endpoint: '[2001:db8::1]:51820', allowed: 'fd00::2/128' }, { endpoint: { address: '2001:db8::1', port: 51820 }, allowedIps: ['fd00::2/128'] }],
    ['(none) everywhere', {}, { endpoint: null, allowedIps: [], persistentKeepalive: 0, latestHandshake: 0 }],
    ['keepalive and counters', { ka: '25', hs: '1700000000', rx: '1234', tx: '99' }, { persistentKeepalive: 25, latestHandshake: 1700000000, transferRx: 1234, transferTx: 99 }],
    ['non-canonical prefix is normalised', { allowed: '100.64.0.7/24' }, { allowedIps: ['100.64.0.0/24'] }]
  ])('parses a peer: %s', (_name, fields, expected) => {
    const d = parseWgDump(IFACE + '\n' + peerLine(fields) + '\n')
    expect(d.peers).toHaveLength(1)
    expect(d.peers[0]).toMatchObject(expected)
  })

  it('keeps only the fact that a preshared key exists', () => {
    const d = parseWgDump(IFACE + '\n' + peerLine({ psk: PSK }))
    expect(d.peers[0]?.hasPresharedKey).toBe(true)
    expect(JSON.stringify(d)).not.toContain(PSK)
  })

  it.each([
    ['empty output', '', /empty output/],
    ['short interface line', 'a\tb', /interface line has 2 fields/],
    ['bad listen port', [PRIV, testKey('hub'), '70000', 'off'].join('\t'), /invalid listen port: '70000'/],
    ['short peer line', IFACE + '\n' + 'x\ty', /line 2 has 2 fields/],
    ['bad endpoint', IFACE + '\n' + peerLine({ endpoint: '1.2.3.4:99999' }), /line 2: invalid port in endpoint '1.2.3.4:99999'/],
    ['bad allowed ip', IFACE + '\n' + peerLine({ allowed: '100.64.0.300/32' }), /line 2: invalid prefix: '100.64.0.300'/],
    ['bad handshake', IFACE + '\n' + peerLine({ hs: '-1' }), /invalid latest handshake: '-1'/]
  ])('rejects %s with a one-line error', (_name, text, message) => {
    expect(() => parseWgDump(text)).toThrow(ParseError)
    expect(() => parseWgDump(text)).toThrow(message)
  })

  it('never quotes a malformed key field, which might be a misplaced secret', () => {
    const line = peerLine({ key: PSK.slice(0, 40) })
    let message = ''
    try { parseWgDump(IFACE + '\n' + line) } catch (err) { message = (err as Error).message }
    expect(message).toMatch(/invalid peer public key \(40 characters\)/)
    expect(message).not.toContain(PSK.slice(0, 40))
  })
})

describe('parseWgDumpAsync: the same device, parsed in slices', () => {
  it('yields to the event loop between slices and agrees with parseWgDump', async () => {
    const { parseWgDump: sync, parseWgDumpAsync } = await import('../../src/shared/wg-dump.js')
    const { testKey } = await import('../helpers/keys.js')
    const lines = [`(hidden)\t${testKey('hub')}\t51820\toff`]
    for (let i = 0; i < 1200; i++) lines.push([testKey(`p${i}`), '(none)', `198.18.1.${i % 250}:${1000 + i}`, `100.64.${i >> 8}.${i & 255}/32`, '0', '0', '0', 'off'].join('\t'))
    const text = lines.join('\n') + '\n'
    // Another task on the event loop gets turns while the dump is parsed (12 slices of 100 peers).
    let turns = 0
    let done = false
    const other = (async () => { while (!done) { turns++; await new Promise((resolve) => setImmediate(resolve)) } })()
    const parsed = await parseWgDumpAsync(text, 100)
    done = true
    await other
    expect(turns).toBeGreaterThanOrEqual(10)
    expect(parsed).toEqual(sync(text))
    expect(parsed.peers).toHaveLength(1200)
    await expect(parseWgDumpAsync(text.replace('198.18.1.7:1007', '198.18.1.7:99999'), 100)).rejects.toThrow(/line 9: invalid port/)
  })
})
