import { describe, expect, it } from 'vitest'
import { vetTable, type VetContext } from '../../src/client/paths/vet-table.js'
import { parsePrefix } from '../../src/shared/ip.js'
import type { TablePeer } from '../../src/shared/protocol.js'
import { newPeer } from '../helpers/fake-wg.js'
import { testKey } from '../helpers/keys.js'

const SELF = testKey('self'); const HUB = testKey('hub'); const B = testKey('b'); const C = testKey('c'); const MANUAL = testKey('manual')

function ctx (over: Partial<VetContext> = {}): VetContext {
  return {
    selfKey: SELF,
    registryKey: HUB,
    meshPrefixes: [parsePrefix('100.64.0.0/24')],
    registryAddresses: ['100.64.0.1'],
    hubPrefixes: [parsePrefix('100.64.0.0/24')],
    managed: new Set(),
    device: { publicKey: SELF, listenPort: 51820, peers: [newPeer(HUB, { allowedIps: ['100.64.0.0/24'] }), newPeer(MANUAL, { allowedIps: ['100.64.0.50/32'] })] },
    ...over
  }
}

function peer (publicKey: string, allowedIps: string[], endpoint: string | null = '198.18.12.2:51820'): TablePeer {
  return { publicKey, endpoint, allowedIps, latestHandshake: 0, online: true, announce: null }
}

describe('vetTable: the registry is untrusted', () => {
  it('accepts a normal peer', () => {
    const { desired, warnings } = vetTable([peer(B, ['100.64.0.3/32'])], ctx())
    expect(warnings).toEqual([])
    expect(desired.get(B)).toMatchObject({ allowedIps: ['100.64.0.3/32'], endpoint: { address: '198.18.12.2', port: 51820 } })
  })

  it('carries a peer\'s router port mapping as a candidate, and none when it announced none', () => {
    const withMapping = { ...peer(B, ['100.64.0.3/32']), announce: { natClass: 'hard' as const, mappedEndpoint: null, lanEndpoints: [], ready: [], portMapping: '198.18.12.2:40001' } }
    const without = { ...peer(C, ['100.64.0.4/32']), announce: { natClass: 'easy' as const, mappedEndpoint: null, lanEndpoints: [], ready: [] } }
    const { desired } = vetTable([withMapping, without], ctx())
    expect(desired.get(B)?.mapped).toEqual({ address: '198.18.12.2', port: 40001 })
    expect(desired.get(C)?.mapped).toBeNull()
  })

  it('marks a peer that has announced nothing (its wgnat not running yet, or a wg-nat client) as silent, and only it', () => {
    const announced = { ...peer(C, ['100.64.0.4/32']), announce: { natClass: 'unknown' as const, mappedEndpoint: null, lanEndpoints: [], ready: [] } }
    const { desired } = vetTable([peer(B, ['100.64.0.3/32']), announced], ctx())
    expect(desired.get(B)?.silent).toBe(true)
    expect(desired.get(C)?.silent).toBeUndefined()
  })

  it.each([
    ['outside the mesh (a LAN)', '192.168.1.0/24', /outside the mesh/],
    ['the default route', '0.0.0.0/0', /outside the mesh/],
    ['the whole mesh (would take the hub\'s route)', '100.64.0.0/24', /hub peer's own allowed IPs/],
    ['the registry\'s own address', '100.64.0.1/32', /registry's address/],
    ['a prefix covering the registry', '100.64.0.0/25', /registry's address/],
    ['a peer configured by hand', '100.64.0.50/32', /someone else/]
  ])('drops an allowed IP that is %s', (_name, prefix, why) => {
    const { desired, warnings } = vetTable([peer(B, [prefix, '100.64.0.3/32'])], ctx())
    expect(desired.get(B)?.allowedIps).toEqual(['100.64.0.3/32'])
    expect(warnings).toEqual([expect.stringMatching(why)])
    expect(warnings[0]).toContain(`'${parsePrefix(prefix).text}'`)
  })

  it('never takes one of the hub peer\'s own allowed IPs, even inside a larger mesh prefix', () => {
    const c = ctx({ meshPrefixes: [parsePrefix('10.8.0.0/16')], hubPrefixes: [parsePrefix('10.8.0.0/16'), parsePrefix('10.8.1.1/32')], registryAddresses: ['10.8.0.1'] })
    const { desired, warnings } = vetTable([peer(B, ['10.8.1.1/32', '10.8.0.9/32'])], c)
    expect(desired.get(B)?.allowedIps).toEqual(['10.8.0.9/32'])
    expect(warnings).toEqual([expect.stringMatching(/'10\.8\.1\.1\/32'.*hub peer's own allowed IPs/)])
  })

  it('skips a peer left with no usable allowed IPs', () => {
    const { desired } = vetTable([peer(B, ['10.0.0.0/8'])], ctx())
    expect(desired.has(B)).toBe(false)
  })

  it('never touches itself, the hub, or a peer it did not add', () => {
    const { desired, warnings } = vetTable([peer(SELF, ['100.64.0.2/32']), peer(HUB, ['100.64.0.9/32']), peer(MANUAL, ['100.64.0.51/32'])], ctx())
    expect(desired.size).toBe(0)
    expect(warnings).toEqual([expect.stringMatching(/someone else; not touching it/)])
  })

  it('takes a peer it manages, even though it is on the interface', () => {
    const c = ctx({ managed: new Set([B]) })
    c.device.peers.push(newPeer(B, { allowedIps: ['100.64.0.3/32'] }))
    expect(vetTable([peer(B, ['100.64.0.3/32'])], c).desired.has(B)).toBe(true)
  })

  it('lets two table peers not claim the same address', () => {
    const { desired, warnings } = vetTable([peer(B, ['100.64.0.3/32']), peer(C, ['100.64.0.3/32', '100.64.0.4/32'])], ctx())
    expect(desired.get(C)?.allowedIps).toEqual(['100.64.0.4/32'])
    expect(warnings).toEqual([expect.stringMatching(/another peer in the table claims it/)])
  })
})
