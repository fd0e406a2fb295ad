import { describe, expect, it } from 'vitest'
import { meshPrefixes } from '../../src/client/mesh-client.js'
import { peerStatus, renderStatus, type ClientStatus } from '../../src/client/observe/status.js'
import { parsePrefix } from '../../src/shared/ip.js'
import { ep } from '../helpers/fake-wg.js'
import { testKey } from '../helpers/keys.js'

const B = testKey('b')
const track = (phase: 'trying' | 'direct' | 'hub') => ({ phase, sinceMs: 1_700_000_000_000, failures: 0, retryAtMs: 0, endpoint: '198.18.12.2:51820', rx: 0, rxAtMs: 0, reason: 'because' })
const want = { publicKey: B, endpoint: ep('198.18.12.2:51820'), allowedIps: ['100.64.0.3/32'], online: true, candidates: [], natClass: 'easy', readyFor: false }

describe('status', () => {
  it.each([
    ['direct', true, 'direct'], ['trying', true, 'trying'], ['hub', true, 'via hub'], ['hub', false, 'unreachable']
  ] as const)('a %s peer with relay=%s shows as %s', (phase, relay, path) => {
    expect(peerStatus(B, track(phase), want, 0, relay).path).toBe(path)
  })

  it('an untracked pair of symmetric NATs says why it is not tried', () => {
    expect(peerStatus(B, undefined, { ...want, natClass: 'hard' }, 0, true, 'hard').reason).toBe('both behind symmetric NATs: no direct path possible')
    expect(peerStatus(B, undefined, { ...want, natClass: 'hard' }, 0, true, 'easy').reason).toBe('not tried yet')
  })

  it('an untracked peer without endpoint says why', () => {
    expect(peerStatus(B, undefined, { ...want, endpoint: null }, 0, true)).toMatchObject({ path: 'via hub', endpoint: null, reason: 'no endpoint known to the hub' })
  })

  it('renders one line per peer from the same structure --json prints', () => {
    const s: ClientStatus = {
      interface: 'wg0',
      publicKey: testKey('self'),
      registry: { url: 'http://100.64.0.1:51820', reachable: true, version: 7, relay: true, lastSyncS: 1_700_000_100 },
      self: { endpoint: '198.18.11.2:51820', natClass: 'easy', mappedEndpoint: null },
      peers: [peerStatus(B, track('direct'), want, 1_700_000_090, true)]
    }
    const text = renderStatus(s, 1_700_000_100)
    expect(text).toContain('registry http://100.64.0.1:51820  reachable  version 7')
    expect(text).toMatch(new RegExp(`${B.slice(0, 8)}\\s+direct\\s+198\\.18\\.12\\.2:51820\\s+easy\\s+10s ago`))
    expect(text).not.toContain(B) // only the short key
    expect(text).toMatch(/\bago\s+yes\s+ipv4\s+because/)
  })

  it('names the candidate a direct or trying peer uses: mapped, lan or ipv4', () => {
    const w = { ...want, natClass: 'hard', mapped: ep('198.18.12.2:40001'), candidates: [ep('198.19.2.2:51820')] }
    const on = (endpoint: string, phase: 'trying' | 'direct' | 'hub' = 'direct') => peerStatus(B, { ...track(phase), endpoint }, w, 0, true).candidate
    expect(on('198.18.12.2:40001')).toBe('mapped')
    expect(on('198.19.2.2:51820', 'trying')).toBe('lan')
    expect(on('198.18.12.2:51820')).toBe('ipv4')
    expect(on('198.18.12.2:40001', 'hub')).toBeNull()
    expect(on('203.0.113.9:1')).toBeNull()
  })

  it('shows the port mapping on the first line', () => {
    const s: ClientStatus = {
      interface: 'wg0', publicKey: testKey('self'),
      registry: { url: 'http://100.64.0.1:51820', reachable: true, version: 7, relay: true, lastSyncS: 0 },
      self: { endpoint: '198.18.12.2:1024', natClass: 'hard', mappedEndpoint: null, portMapping: { protocol: 'pcp', endpoint: '198.18.12.2:51820', gateway: '198.19.2.1', lifetimeS: 7200, renewAtS: 0 } },
      peers: []
    }
    expect(renderStatus(s, 0).split('\n')[0]).toContain('port mapping 198.18.12.2:51820 (pcp)')
  })

  it('says why the NAT class is unknown, with the fix, when raw sockets are off', () => {
    const base: ClientStatus = {
      interface: 'wg0',
      publicKey: testKey('self'),
      registry: { url: 'http://100.64.0.1:51820', reachable: true, version: 7, relay: true, lastSyncS: 1_700_000_100 },
      self: { endpoint: '198.18.11.2:51820', natClass: 'unknown', mappedEndpoint: null, natReason: 'only one view', rawProblem: 'raw sockets unavailable: addon did not load; fix: cd /x && npm rebuild raw-socket' },
      peers: []
    }
    expect(renderStatus(base, 1_700_000_100)).toContain('NAT unknown because raw sockets unavailable: addon did not load; fix: cd /x && npm rebuild raw-socket\n')
    expect(renderStatus({ ...base, self: { ...base.self, rawProblem: null } }, 1_700_000_100)).toContain('NAT unknown: only one view\n')
    expect(renderStatus({ ...base, self: { ...base.self, rawProblem: null, natClass: 'easy' } }, 1_700_000_100)).not.toContain('only one view')
  })
})

describe('meshPrefixes', () => {
  it('adds the interface\'s own subnet to a /32 hub peer, but not host addresses', () => {
    const got = meshPrefixes([parsePrefix('100.64.0.1/32')], [{ address: '100.64.0.2', bits: 24 }, { address: '198.19.1.2', bits: 32 }])
    expect(got.map((p) => p.text)).toEqual(['100.64.0.1/32', '100.64.0.0/24'])
  })
  it('does not repeat a subnet the hub peer already covers', () => {
    expect(meshPrefixes([parsePrefix('100.64.0.0/24')], [{ address: '100.64.0.2', bits: 24 }]).map((p) => p.text)).toEqual(['100.64.0.0/24'])
  })
})
