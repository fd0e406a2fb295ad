import { describe, expect, it } from 'vitest'
import { RegistryTable } from '../../src/server/registry/registry-table.js'
import type { WgDevice } from '../../src/shared/wg-dump.js'
import { ep, newPeer } from '../helpers/fake-wg.js'
import { testKey } from '../helpers/keys.js'

const A = testKey('a'); const B = testKey('b'); const C = testKey('c')
const NOW = 1_700_000_000

function device (peers: WgDevice['peers']): WgDevice {
  return { publicKey: testKey('hub'), listenPort: 51820, peers }
}

const parse = (peers: Buffer[]): Array<{ publicKey: string, endpoint: string | null }> => JSON.parse(`[${Buffer.concat(peers).toString()}]`)

describe('RegistryTable', () => {
  it('bumps the version only for changes that matter to clients', () => {
    const t = new RegistryTable()
    expect(t.update(device([newPeer(A, { allowedIps: ['100.64.0.2/32'], endpoint: ep('198.18.11.2:1000'), latestHandshake: NOW - 5 })]), NOW)).toEqual([A])
    expect(t.version).toBe(1)
    // A new handshake time while online is not a change worth waking every client for.
    expect(t.update(device([newPeer(A, { allowedIps: ['100.64.0.2/32'], endpoint: ep('198.18.11.2:1000'), latestHandshake: NOW })]), NOW + 1)).toEqual([])
    expect(t.version).toBe(1)
    expect(t.get(A)?.latestHandshake).toBe(NOW)
    // Going offline (no handshake for 180 s) is.
    expect(t.update(device([newPeer(A, { allowedIps: ['100.64.0.2/32'], endpoint: ep('198.18.11.2:1000'), latestHandshake: NOW })]), NOW + 181)).toEqual([A])
    expect(t.get(A)?.online).toBe(false)
    expect(t.version).toBe(2)
  })

  it('answers deltas with what changed since a version, excluding the caller', () => {
    const t = new RegistryTable()
    t.update(device([newPeer(A), newPeer(B), newPeer(C)]), NOW)
    const full = t.since(0, A)
    expect(full.full).toBe(true)
    expect(parse(full.peers).map((p) => p.publicKey).sort()).toEqual([B, C].sort())

    t.update(device([newPeer(A), newPeer(B, { endpoint: ep('198.18.12.2:2000') })]), NOW)
    const delta = t.since(1, A)
    expect(delta).toMatchObject({ version: 2, full: false, removed: [C] })
    expect(parse(delta.peers)).toEqual([expect.objectContaining({ publicKey: B, endpoint: '198.18.12.2:2000' })])
    expect(t.since(2, A)).toMatchObject({ full: false, removed: [] })
    expect(parse(t.since(2, A).peers)).toEqual([])
  })

  it.each([0, 1, 2])('leaves the caller out of the shared full answer wherever it stands (position %i of 3)', (pos) => {
    const t = new RegistryTable()
    const keys = [A, B, C]
    t.update(device(keys.map((k) => newPeer(k))), NOW)
    const caller = keys[pos]!
    expect(parse(t.since(0, caller).peers).map((p) => p.publicKey)).toEqual(keys.filter((k) => k !== caller))
    // A stranger (not in the table) gets everything.
    expect(parse(t.since(0, testKey('stranger')).peers)).toHaveLength(3)
  })

  it('sends the full table to a client too far behind or ahead (registry restarted)', () => {
    const t = new RegistryTable({ historyVersions: 2 })
    for (let i = 1; i <= 5; i++) t.update(device([newPeer(A, { endpoint: ep(`198.18.11.2:${1000 + i}`) }), newPeer(B)]), NOW)
    expect(t.version).toBe(5)
    // Versions 4 and 5 are kept: a client at 3 can be answered with a delta, one at 2 cannot.
    expect(t.since(3, B).full).toBe(false)
    expect(t.since(2, B).full).toBe(true)
    expect(t.since(99, B).full).toBe(true)
  })

  it('carries announcements and bumps the version when one changes', () => {
    const t = new RegistryTable()
    t.update(device([newPeer(A), newPeer(B)]), NOW)
    const announce = { natClass: 'easy' as const, mappedEndpoint: '198.18.11.2:51820', lanEndpoints: ['198.19.1.2:51820'] }
    expect(t.announce(A, announce)).toBe(true)
    expect(t.announce(A, announce)).toBe(false)
    expect(t.announce(testKey('stranger'), announce)).toBe(false)
    expect(t.get(A)?.announce).toEqual(announce)
    // A later device read keeps the announcement.
    t.update(device([newPeer(A, { endpoint: ep('198.18.11.2:1') }), newPeer(B)]), NOW)
    expect(t.get(A)?.announce).toEqual(announce)
  })

  it('takes the same device object again as unchanged, until time turns it offline', () => {
    const t = new RegistryTable()
    const a = Object.freeze(newPeer(A, { allowedIps: ['100.64.0.2/32'], endpoint: ep('198.18.11.2:1000'), latestHandshake: NOW }))
    expect(t.update(device([a]), NOW)).toEqual([A])
    expect(t.update(device([a]), NOW + 1)).toEqual([])
    expect(t.update(device([a]), NOW + 181)).toEqual([A])
    expect(t.get(A)?.online).toBe(false)
    // An equal but distinct object is compared field by field: unchanged.
    expect(t.update(device([{ ...a }]), NOW + 182)).toEqual([])
    expect(t.update(device([{ ...a, endpoint: ep('198.18.11.2:1001') }]), NOW + 183)).toEqual([A])
  })

  it('moves its address version only when a peer comes, goes or gets other allowed IPs', () => {
    const t = new RegistryTable()
    t.update(device([newPeer(A, { allowedIps: ['100.64.0.2/32'] }), newPeer(B, { allowedIps: ['100.64.0.3/32'] })]), NOW)
    const v0 = t.addressVersion
    t.update(device([newPeer(A, { allowedIps: ['100.64.0.2/32'], endpoint: ep('198.18.11.2:1') }), newPeer(B, { allowedIps: ['100.64.0.3/32'] })]), NOW)
    t.announce(A, { natClass: 'easy', mappedEndpoint: '198.18.11.2:51820', lanEndpoints: [] })
    expect(t.addressVersion).toBe(v0)
    t.update(device([newPeer(A, { allowedIps: ['100.64.0.2/32', '10.0.0.0/24'] }), newPeer(B, { allowedIps: ['100.64.0.3/32'] })]), NOW)
    const v1 = t.addressVersion
    expect(v1).toBeGreaterThan(v0)
    t.update(device([newPeer(A, { allowedIps: ['100.64.0.2/32', '10.0.0.0/24'] })]), NOW)
    const v2 = t.addressVersion
    expect(v2).toBeGreaterThan(v1)
    t.update(device([newPeer(A, { allowedIps: ['100.64.0.2/32', '10.0.0.0/24'] }), newPeer(C)]), NOW)
    expect(t.addressVersion).toBeGreaterThan(v2)
  })
})
