import { mkdtemp, rm, utimes } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { peerStatus, renderStatus, type ClientStatus } from '../../src/client/observe/status.js'
import { vetTable } from '../../src/client/paths/vet-table.js'
import { writePeerNames } from '../../src/server/inventory/peer-names.js'
import { watchPeerNames } from '../../src/server/inventory/peer-names-watch.js'
import { RegistryTable } from '../../src/server/registry/registry-table.js'
import { parsePrefix } from '../../src/shared/ip.js'
import { createLogger } from '../../src/shared/log.js'
import { tableResponseSchema, type TablePeer } from '../../src/shared/protocol.js'
import { wgnatKeepaliveResponse } from '../../src/server/registry/wgnat-compat.js'
import { ep, newPeer } from '../helpers/fake-wg.js'
import { testKey } from '../helpers/keys.js'

const A = testKey('a'); const B = testKey('b'); const SELF = testKey('self'); const HUB = testKey('hub')
const NOW = 1_700_000_000
const device = { publicKey: HUB, listenPort: 51820, peers: [newPeer(A, { allowedIps: ['100.64.0.2/32'], endpoint: ep('198.18.11.2:1') }), newPeer(B, { allowedIps: ['100.64.0.3/32'] })] }
const entries = (t: RegistryTable, caller: string): TablePeer[] => JSON.parse(`[${Buffer.concat(t.since(0, caller).peers).toString()}]`)

describe('peer names in the registry', () => {
  it('serves a name for named peers only, and a new or changed name bumps the version', () => {
    const t = new RegistryTable()
    t.update(device, NOW, new Map([[A, 'alice']]))
    expect(entries(t, SELF).map((p) => [p.publicKey, p.name])).toEqual([[A, 'alice'], [B, undefined]])
    expect(JSON.stringify(t.get(B))).not.toContain('name')
    const v = t.version
    expect(t.update(device, NOW, new Map([[A, 'alice']]))).toEqual([])
    expect(t.update(device, NOW, new Map([[A, 'alice'], [B, 'bob']]))).toEqual([B])
    expect(t.version).toBe(v + 1)
    expect(t.update(device, NOW, new Map([[B, 'bob']]))).toEqual([A])
    expect(t.get(A)?.name).toBeUndefined()
    // An announce keeps the name.
    t.announce(B, { natClass: 'easy', mappedEndpoint: null, lanEndpoints: [], ready: [] })
    expect(t.get(B)?.name).toBe('bob')
  })

  it('old clients and wg-nat answers are unchanged: a table without names parses, the compat answer has no name', () => {
    const old = { epoch: 'e', version: 1, now: NOW, relay: false, full: true, self: { publicKey: SELF, endpoint: null, allowedIps: [], latestHandshake: 0, online: false }, peers: [{ publicKey: A, endpoint: null, allowedIps: ['100.64.0.2/32'], latestHandshake: 0, online: false }], removed: [] }
    expect(tableResponseSchema.parse(old).peers[0]?.name).toBeUndefined()
    const t = new RegistryTable()
    t.update(device, NOW, new Map([[A, 'alice']]))
    expect(JSON.stringify(wgnatKeepaliveResponse(t.peers(), B))).not.toContain('alice')
  })

  it('the client keeps a valid name, drops a bad one with a warning, and shows names in status', () => {
    const peer = (publicKey: string, name: string | undefined): TablePeer => ({ publicKey, endpoint: '198.18.12.2:51820', allowedIps: [publicKey === A ? '100.64.0.2/32' : '100.64.0.3/32'], latestHandshake: 0, online: true, announce: null, ...(name === undefined ? {} : { name }) })
    const ctx = { selfKey: SELF, registryKey: HUB, meshPrefixes: [parsePrefix('100.64.0.0/24')], registryAddresses: ['100.64.0.1'], hubPrefixes: [parsePrefix('100.64.0.0/24')], managed: new Set<string>(), device: { publicKey: SELF, listenPort: 1, peers: [newPeer(HUB, { allowedIps: ['100.64.0.0/24'] })] } }
    const { desired, warnings } = vetTable([peer(A, 'alice'), peer(B, 'Bob; rm -rf /')], ctx)
    expect(desired.get(A)?.name).toBe('alice')
    expect(desired.get(B)?.name).toBeUndefined()
    expect(desired.has(B)).toBe(true)
    expect(warnings).toEqual([`peer ${B.slice(0, 8)}: ignoring its name from the registry (not a valid peer name)`])
    const s: ClientStatus = {
      interface: 'wg0', publicKey: SELF, registry: { url: 'http://x', reachable: true, version: 1, relay: true, lastSyncS: NOW }, self: { endpoint: null, natClass: 'easy', mappedEndpoint: null },
      peers: [peerStatus(A, undefined, desired.get(A), 0, true), peerStatus(B, undefined, desired.get(B), 0, true)]
    }
    expect(s.peers[0]?.name).toBe('alice')
    const text = renderStatus(s, NOW)
    expect(text).toMatch(/^alice +via hub/m)
    expect(text).toMatch(new RegExp(`^${B.slice(0, 8).replace(/[+/]/g, '\\$&')} +via hub`, 'm'))
  })

  it('the registry re-reads the names file when it changes, one stat per poll otherwise', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'wgnat-names-'))
    try {
      const names = watchPeerNames(dir, 'wg0', createLogger({ name: 't', level: 'silent', format: 'json' }))
      expect((await names()).size).toBe(0)
      await writePeerNames(dir, 'wg0', new Map([[A, 'alice']]))
      expect([...(await names())]).toEqual([[A, 'alice']])
      await writePeerNames(dir, 'wg0', new Map([[A, 'anna']]))
      const path = join(dir, 'wg0.names.json')
      await utimes(path, new Date(), new Date(Date.now() + 5000))
      expect([...(await names())]).toEqual([[A, 'anna']])
      await rm(path)
      expect((await names()).size).toBe(0)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
