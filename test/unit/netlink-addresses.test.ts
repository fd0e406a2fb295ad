import { describe, expect, it } from 'vitest'
import { listAddresses, parseAddressMessage } from '../../src/shared/netlink-addresses.js'

const names = new Map([[1, 'lo'], [7, 'wg0']])

describe('parseAddressMessage', () => {
  it.each([
    {
      name: 'IPv4 on a broadcast link',
      message: { kind: 'address' as const, data: { family: 2, prefixlen: 24, scope: 0, index: 7 }, attrs: { address: Buffer.from([192, 0, 2, 5]), local: Buffer.from([192, 0, 2, 5]), label: 'wg0' } },
      expected: { ifname: 'wg0', ifindex: 7, family: 'IPv4', address: '192.0.2.5', bits: 24, scope: 'global', tentative: false, deprecated: false }
    },
    {
      name: 'IPv4 point-to-point: IFA_LOCAL is ours, IFA_ADDRESS is the peer',
      message: { kind: 'address' as const, data: { family: 2, prefixlen: 32, scope: 0, index: 7 }, attrs: { address: Buffer.from([10, 0, 0, 2]), local: Buffer.from([10, 0, 0, 1]) } },
      expected: { address: '10.0.0.1', bits: 32 }
    },
    {
      name: 'IPv6 link-local, tentative, name from the link table (IPv6 has no label)',
      message: { kind: 'address' as const, data: { family: 10, prefixlen: 64, scope: 253, index: 7 }, attrs: { address: Buffer.from('fe800000000000000000000000000001', 'hex'), flags: { tentative: true as const } } },
      expected: { ifname: 'wg0', family: 'IPv6', address: 'fe80::1', scope: 'link', tentative: true }
    },
    {
      name: 'unknown interface index',
      message: { kind: 'address' as const, data: { family: 2, prefixlen: 8, scope: 254, index: 42 }, attrs: { local: Buffer.from([127, 0, 0, 1]) } },
      expected: { ifname: 'if42', scope: 'host' }
    }
  ])('$name', ({ message, expected }) => {
    expect(parseAddressMessage(message, names)).toMatchObject(expected)
  })

  it.each([
    { name: 'another family (AF_PACKET)', data: { family: 17, prefixlen: 0, index: 1 }, attrs: { address: Buffer.alloc(6) } },
    { name: 'no address', data: { family: 2, prefixlen: 8, index: 1 }, attrs: {} },
    { name: 'address of the wrong length', data: { family: 10, prefixlen: 64, index: 1 }, attrs: { address: Buffer.alloc(4) } }
  ])('skips $name', ({ data, attrs }) => {
    expect(parseAddressMessage({ kind: 'address', data, attrs }, names)).toBeUndefined()
  })
})

describe('listAddresses', () => {
  it('lists the loopback address of this network namespace with its prefix length (no root needed)', async () => {
    const addresses = await listAddresses()
    expect(addresses).toContainEqual(expect.objectContaining({ ifname: 'lo', family: 'IPv4', address: '127.0.0.1', bits: 8, scope: 'host' }))
  })

  it('rejects when aborted before it starts', async () => {
    await expect(listAddresses({ signal: AbortSignal.abort() })).rejects.toThrow()
  })
})
