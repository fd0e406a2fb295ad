import { describe, expect, it } from 'vitest'
import { allocateAddress, checkAddress, isHost, parseHubAddress } from '../../src/server/bootstrap/address-pool.js'
import { parsePrefix } from '../../src/shared/ip.js'

const NET = parsePrefix('10.8.0.0/24')

describe('address allocation', () => {
  it('hands out the lowest free host, skipping taken ones', () => {
    expect(allocateAddress(NET, ['10.8.0.1'])).toBe('10.8.0.2')
    expect(allocateAddress(NET, ['10.8.0.1', '10.8.0.2', '10.8.0.4'])).toBe('10.8.0.3')
    expect(allocateAddress(NET, [])).toBe('10.8.0.1')
  })

  it('never hands out the network or broadcast address, and says when the subnet is full (exit 65)', () => {
    const small = parsePrefix('10.8.0.0/30')
    expect(allocateAddress(small, ['10.8.0.1'])).toBe('10.8.0.2')
    expect(() => allocateAddress(small, ['10.8.0.1', '10.8.0.2'])).toThrow(/no free address left in '10.8.0.0\/30'/)
    try { allocateAddress(small, ['10.8.0.1', '10.8.0.2']) } catch (err) { expect((err as { exitCode: number }).exitCode).toBe(65) }
    const all = Array.from({ length: 254 }, (_, i) => `10.8.0.${i + 1}`)
    expect(() => allocateAddress(NET, all)).toThrow(/no free address/)
    expect(allocateAddress(NET, all.slice(0, 253))).toBe('10.8.0.254')
  })

  it('crosses byte boundaries and works for IPv6', () => {
    const wide = parsePrefix('10.8.0.0/23')
    expect(allocateAddress(wide, Array.from({ length: 255 }, (_, i) => `10.8.0.${i + 1}`))).toBe('10.8.1.0')
    expect(allocateAddress(parsePrefix('fd00::/64'), ['fd00::1', 'fd00:0::2'])).toBe('fd00::3')
  })

  it('checks a requested address: inside, a host, free', () => {
    expect(checkAddress(NET, '10.8.0.9', ['10.8.0.1'])).toBe('10.8.0.9')
    expect(() => checkAddress(NET, '10.8.0.1', ['10.8.0.1'])).toThrow(/already taken/)
    expect(() => checkAddress(NET, '10.9.0.9', [])).toThrow(/not a host address inside the mesh/)
    expect(() => checkAddress(NET, '10.8.0.0', [])).toThrow(/not a host address/)
    expect(() => checkAddress(NET, '10.8.0.255', [])).toThrow(/not a host address/)
    expect(() => checkAddress(NET, '10.8.0.x', [])).toThrow(/not an IP address/)
    for (const [bad, code] of [['10.8.0.1', 65], ['10.9.0.1', 64], ['x', 64]] as const) {
      try { checkAddress(NET, bad, ['10.8.0.1']); expect.fail(bad) } catch (err) { expect((err as { exitCode: number }).exitCode).toBe(code) }
    }
  })

  it('parses the hub address of init', () => {
    expect(parseHubAddress('10.8.0.1/24')).toMatchObject({ address: '10.8.0.1', subnet: { text: '10.8.0.0/24' } })
    expect(() => parseHubAddress('10.8.0.1')).toThrow(/with the subnet length/)
    // Subnets that would make broken meshes (the audit's list), and ranges that do work.
    expect(() => parseHubAddress('10.8.0.1/0')).toThrow("--address '10.8.0.1/0': a mesh subnet of /0 is too large (at most /8)")
    expect(() => parseHubAddress('10.8.0.1/1')).toThrow(/too large/)
    for (const bad of ['127.0.0.1/8', '224.0.0.1/24', '0.0.0.1/24', '255.255.255.1/24', '241.0.0.1/24', '169.254.0.1/16', 'fe80::1/64']) {
      expect(() => parseHubAddress(bad), bad).toThrow(/cannot be a mesh/)
    }
    // A wide subnet that takes in such a range, though the hub's own address is outside it.
    expect(() => parseHubAddress('169.1.0.1/8')).toThrow("--address '169.1.0.1/8': the mesh subnet 169.0.0.0/8 takes in 169.254.0.0/16, which cannot be a mesh's (use a private range, e.g. 10.8.0.1/24)")
    for (const good of ['10.0.0.1/8', '100.64.0.1/24', '198.18.0.1/24', '192.168.7.1/24']) expect(parseHubAddress(good).address).toBe(good.split('/')[0])
    expect(() => parseHubAddress('10.8.0.0/24')).toThrow(/network or broadcast/)
    expect(() => parseHubAddress('10.8.0.1/31')).toThrow(/too small/)
    expect(() => parseHubAddress('10.8.0/24')).toThrow(/not an address/)
    expect(isHost(NET, '10.8.0.7')).toBe(true)
    expect(isHost(NET, 'fd00::7')).toBe(false)
  })

  it('never hands out an address inside a prefix routed to another peer (a site behind a spoke)', () => {
    const subnet = parseHubAddress('10.30.0.1/24').subnet
    // The audit's hub: a peer at 10.30.0.2/32 and 10.30.0.4/30; the next free one is .3, then .8.
    expect(allocateAddress(subnet, ['10.30.0.1', '10.30.0.2', '10.30.0.4/30'])).toBe('10.30.0.3')
    expect(allocateAddress(subnet, ['10.30.0.1', '10.30.0.2', '10.30.0.3', '10.30.0.4/30'])).toBe('10.30.0.8')
    expect(() => checkAddress(subnet, '10.30.0.5', ['10.30.0.4/30'])).toThrow("--address '10.30.0.5': already taken (inside '10.30.0.4/30', routed to another peer)")
    // A peer routing everything (or the whole mesh) does not make the mesh's addresses taken.
    expect(allocateAddress(subnet, ['10.30.0.1', '0.0.0.0/0', '10.30.0.0/24'])).toBe('10.30.0.2')
  })
})
