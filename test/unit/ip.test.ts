import { describe, expect, it } from 'vitest'
import { firstHost, formatEndpoint, parseEndpoint, parsePrefix, prefixContains, prefixesOverlap } from '../../src/shared/ip.js'

describe('ip helpers', () => {
  it.each([
    ['100.64.0.1/32', '100.64.0.1'],
    ['10.8.0.0/24', '10.8.0.1'],
    ['10.8.0.77/24', '10.8.0.1'],
    ['fd00::/64', 'fd00::1'],
    ['fd00::5/128', 'fd00::5']
  ])('firstHost(%s) = %s (wg-nat dialled the network address)', (prefix, host) => {
    expect(firstHost(parsePrefix(prefix))).toBe(host)
  })

  it('containment and overlap', () => {
    expect(prefixContains(parsePrefix('100.64.0.0/24'), parsePrefix('100.64.0.9/32'))).toBe(true)
    expect(prefixContains(parsePrefix('100.64.0.0/24'), parsePrefix('100.64.0.0/16'))).toBe(false)
    expect(prefixContains(parsePrefix('100.64.0.0/24'), parsePrefix('fd00::1/128'))).toBe(false)
    expect(prefixesOverlap(parsePrefix('100.64.0.0/16'), parsePrefix('100.64.3.0/24'))).toBe(true)
    expect(prefixesOverlap(parsePrefix('100.64.1.0/24'), parsePrefix('100.64.3.0/24'))).toBe(false)
  })

  it('endpoints round trip and reject junk with the value quoted', () => {
    expect(formatEndpoint(parseEndpoint('[2001:db8::1]:51820'))).toBe('[2001:db8::1]:51820')
    expect(parseEndpoint('198.18.0.3:28600')).toEqual({ address: '198.18.0.3', port: 28600 })
    expect(() => parseEndpoint('example.com:80')).toThrow("invalid endpoint address: 'example.com'")
    expect(() => parseEndpoint('1.2.3.4')).toThrow("invalid endpoint: '1.2.3.4'")
    expect(() => parseEndpoint('1.2.3.4:0')).toThrow('invalid port')
  })
})

describe('parseIp: the IPv4-compatible form wg prints for ::/96 addresses', () => {
  it('reads ::1.2.3.4 as the IPv6 address ::102:304, not as the mapped ::ffff:1.2.3.4', async () => {
    const { parseIp, parsePrefix } = await import('../../src/shared/ip.js')
    expect(parseIp('::1.2.3.4').toString()).toBe('::102:304')
    expect(parsePrefix('::0.0.0.0/33').text).toBe('::/33')
    expect(parseIp('::ffff:1.2.3.4').toString()).toBe('1.2.3.4')
    expect(parseIp('64:ff9b::1.2.3.4').toString()).toBe('64:ff9b::102:304')
  })
})
