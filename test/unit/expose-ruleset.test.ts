import { describe, expect, it } from 'vitest'
import { resolveExposes } from '../../src/server/expose/expose-resolve.js'
import { exposeKey, exposeTableName, parseRuleComment, renderDeleteTable, renderExposeRuleset } from '../../src/server/expose/expose-ruleset.js'
import { parseExposeSpec } from '../../src/server/expose/expose-spec.js'
import { testKey } from '../helpers/keys.js'

const NAS = testKey('nas')
const exposes = (...texts: string[]) => resolveExposes(texts.map(parseExposeSpec), {
  peers: [{ publicKey: NAS, allowedIps: ['10.8.0.2/32', 'fd00::2/128'] }],
  names: new Map([[NAS, 'nas']]),
  reserved: []
})
const rulesOf = (script: string, chain: string): string[] => {
  const lines = script.split('\n')
  const start = lines.indexOf(`  chain ${chain} {`)
  const end = lines.indexOf('  }', start)
  return lines.slice(start + 1, end).map((l) => l.trim()).filter((l) => !l.startsWith('type '))
}

describe('exposeTableName', () => {
  it.each([
    ['wg0', 'wgnat_expose_wg0'],
    ['wgab1-0', 'wgnat_expose_wgab1_2d0'],
    ['wg.home', 'wgnat_expose_wg_2ehome'],
    ['wg_0', 'wgnat_expose_wg_5f0']
  ])('%s -> %s', (iface, name) => { expect(exposeTableName(iface)).toBe(name) })

  it.each(['', 'wg"0', 'wg 0', 'a-very-long-interface'])('refuses %j', (iface) => {
    expect(() => exposeTableName(iface)).toThrow(/not a name --expose can use/)
  })
})

describe('renderExposeRuleset', () => {
  const opts = { iface: 'wg0', preserveSource: false, guardFamilies: [] }

  it('replaces the table in one transaction: create, delete, create with the rules', () => {
    const script = renderExposeRuleset(exposes('443/tcp=nas:443'), opts)
    const lines = script.split('\n')
    expect(lines.slice(0, 3)).toEqual(['table inet wgnat_expose_wg0 {}', 'delete table inet wgnat_expose_wg0', 'table inet wgnat_expose_wg0 {'])
    expect(script).toContain('type nat hook prerouting priority dstnat; policy accept;')
    expect(script).toContain('type filter hook forward priority filter; policy accept;')
    expect(script).toContain('type nat hook postrouting priority srcnat; policy accept;')
  })

  it('one port: DNAT on the hub\'s own addresses from outside the tunnel, counted accepts both ways, masquerade', () => {
    const script = renderExposeRuleset(exposes('8080/tcp=nas:80'), opts)
    expect(rulesOf(script, 'prerouting')).toEqual([
      'iifname != "wg0" fib daddr type local meta nfproto ipv4 tcp dport 8080 counter dnat ip to 10.8.0.2:80 comment "wgnat conn 8080/tcp=10.8.0.2:80"'
    ])
    expect(rulesOf(script, 'forward')).toEqual([
      'oifname "wg0" meta nfproto ipv4 ct status dnat meta l4proto tcp ct original proto-dst 8080 ip daddr 10.8.0.2 tcp dport 80 counter accept comment "wgnat in 8080/tcp=10.8.0.2:80"',
      'iifname "wg0" meta nfproto ipv4 ct status dnat meta l4proto tcp ct original proto-dst 8080 ip saddr 10.8.0.2 tcp sport 80 counter accept comment "wgnat out 8080/tcp=10.8.0.2:80"'
    ])
    expect(rulesOf(script, 'postrouting')).toEqual([
      'oifname "wg0" meta nfproto ipv4 ct status dnat meta l4proto tcp ct original proto-dst 8080 ip daddr 10.8.0.2 tcp dport 80 masquerade comment "wgnat snat 8080/tcp=10.8.0.2:80"'
    ])
  })

  it('--expose-preserve-source: no masquerade at all', () => {
    const script = renderExposeRuleset(exposes('8080/tcp=nas:80', '53/udp=nas:53'), { ...opts, preserveSource: true })
    expect(rulesOf(script, 'postrouting')).toEqual([])
    expect(rulesOf(script, 'prerouting')).toHaveLength(2)
    expect(script).not.toContain('masquerade')
  })

  it('a range onto the same ports keeps the port; a shifted range maps port for port', () => {
    const script = renderExposeRuleset(exposes('8000-8002/udp=nas:8000', '9000-9002/tcp=nas:7000'), opts)
    const pre = rulesOf(script, 'prerouting')
    expect(pre[0]).toContain('udp dport 8000-8002 counter dnat ip to 10.8.0.2 comment')
    expect(pre[1]).toContain('tcp dport 9000-9002 counter dnat ip addr . port to tcp dport map { 9000 : 10.8.0.2 . 7000, 9001 : 10.8.0.2 . 7001, 9002 : 10.8.0.2 . 7002 }')
    expect(rulesOf(script, 'forward')[2]).toContain('ct original proto-dst 9000-9002 ip daddr 10.8.0.2 tcp dport 7000-7002')
  })

  it('an IPv6 target: ip6 matches and a bracketed DNAT address', () => {
    const script = renderExposeRuleset(exposes('443/tcp=[fd00::2]:443'), opts)
    expect(rulesOf(script, 'prerouting')[0]).toContain('meta nfproto ipv6 tcp dport 443 counter dnat ip6 to [fd00::2]:443 comment "wgnat conn 443/tcp=[fd00::2]:443"')
    expect(rulesOf(script, 'forward')[0]).toContain('ip6 daddr fd00::2 tcp dport 443')
  })

  it('guards only the families wgnat turned forwarding on for, after the exposes\' accepts', () => {
    const none = renderExposeRuleset(exposes('443/tcp=nas:443'), opts)
    expect(none).not.toContain('drop')
    const v4 = rulesOf(renderExposeRuleset(exposes('443/tcp=nas:443'), { ...opts, guardFamilies: ['ipv4'] }), 'forward')
    expect(v4.slice(2)).toEqual([
      'meta nfproto ipv4 meta l4proto icmp ct state related accept comment "wgnat guard ipv4"',
      'meta nfproto ipv4 iifname "wg0" oifname != "wg0" counter drop comment "wgnat guard ipv4"',
      'meta nfproto ipv4 iifname != "wg0" oifname "wg0" counter drop comment "wgnat guard ipv4"'
    ])
  })

  it('no exposes: an empty table (still replacing whatever was there)', () => {
    const script = renderExposeRuleset([], opts)
    expect(script).toContain('delete table inet wgnat_expose_wg0')
    expect(['prerouting', 'forward', 'postrouting'].map((c) => rulesOf(script, c))).toEqual([[], [], []])
  })

  it('every comment parses back to its role and expose', () => {
    const es = exposes('8080/tcp=nas:80', '8000-8002/udp=[fd00::2]:9000')
    const comments = [...renderExposeRuleset(es, { ...opts, guardFamilies: ['ipv4'] }).matchAll(/comment "([^"]*)"/g)].map((m) => parseRuleComment(m[1]!))
    expect(comments).not.toContain(undefined)
    expect(new Set(comments.map((c) => c!.key))).toEqual(new Set([...es.map(exposeKey), 'ipv4']))
    expect(exposeKey(es[1]!)).toBe('8000-8002/udp=[fd00::2]:9000-9002')
  })

  it('deleting is safe when the table is gone', () => {
    expect(renderDeleteTable('wg0')).toBe('table inet wgnat_expose_wg0 {}\ndelete table inet wgnat_expose_wg0\n')
  })
})
