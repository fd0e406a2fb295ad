import { describe, expect, it } from 'vitest'
import { reportOf } from '../../src/client/observe/path-reporter.js'
import type { ClientStatus } from '../../src/client/observe/status.js'
import { buildMeshView, pairPath, renderMeshView, type PairPath } from '../../src/server/mesh/mesh-view.js'
import { PathReports, REPORT_STALE_S } from '../../src/server/mesh/path-reports.js'
import { reportSchema, type TablePeer } from '../../src/shared/protocol.js'
import { testKey } from '../helpers/keys.js'

const [A, B, C] = [testKey('a'), testKey('b'), testKey('c')].sort() as [string, string, string]
const peer = (key: string, natClass: 'easy' | 'hard', endpoint: string): TablePeer => ({
  publicKey: key, endpoint, allowedIps: [], latestHandshake: 1, online: true,
  announce: { natClass, mappedEndpoint: null, lanEndpoints: [], ready: [] }
})
const TABLE = [peer(C, 'hard', '198.18.13.2:1'), peer(A, 'easy', '198.18.11.2:1'), peer(B, 'easy', '198.18.12.2:1')]
const init = { iface: 'wg0', publicKey: testKey('hub'), relay: true, nowS: 1000 }

describe('pairPath: a pair is as good as its worse side says; a side that did not report does not count', () => {
  it.each([
    ['direct', 'direct', 'direct'], ['direct', 'trying', 'trying'], ['trying', 'hub', 'hub'], ['hub', 'unreachable', 'unreachable'],
    ['direct', 'unknown', 'direct'], ['unknown', 'hub', 'hub'], ['unknown', 'unknown', 'unknown']
  ] as Array<[PairPath, PairPath, PairPath]>)('%s + %s = %s', (a, b, want) => {
    expect(pairPath(a, b)).toBe(want)
    expect(pairPath(b, a)).toBe(want)
  })
})

describe('buildMeshView', () => {
  it('lists every pair once, a < b, with what each side says and the endpoint it uses', () => {
    const reports = new PathReports()
    reports.put(A, { peers: [{ publicKey: B, path: 'direct', endpoint: '198.18.12.2:1' }, { publicKey: C, path: 'hub', endpoint: null }] }, 990)
    reports.put(B, { peers: [{ publicKey: A, path: 'direct', endpoint: '198.18.11.2:1' }] }, 995)
    const v = buildMeshView(init, TABLE, reports)
    expect(v.nodes.map((n) => n.publicKey)).toEqual([A, B, C])
    expect(v.nodes.map((n) => n.natClass)).toEqual(['easy', 'easy', 'hard'])
    expect(v.pairs.map((p) => [p.a, p.b, p.path, p.aSays, p.bSays])).toEqual([
      [A, B, 'direct', 'direct', 'direct'], [A, C, 'hub', 'hub', 'unknown'], [B, C, 'unknown', 'unknown', 'unknown']
    ])
    expect(v.pairs[0]).toMatchObject({ aEndpoint: '198.18.12.2:1', bEndpoint: '198.18.11.2:1' })
  })

  it('a reporter names only its own view: a report about itself is dropped', () => {
    const reports = new PathReports()
    reports.put(A, { peers: [{ publicKey: A, path: 'unreachable', endpoint: null }] }, 999)
    expect(reports.get(A)?.peers.size).toBe(0)
  })

  it('stale reports count as not reported; reporters that left are forgotten', () => {
    const reports = new PathReports()
    reports.put(A, { peers: [{ publicKey: B, path: 'direct', endpoint: null }] }, init.nowS - REPORT_STALE_S - 1)
    expect(buildMeshView(init, TABLE, reports).pairs[0]?.path).toBe('unknown')
    reports.put(A, { peers: [{ publicKey: B, path: 'direct', endpoint: null }] }, init.nowS - REPORT_STALE_S)
    expect(buildMeshView(init, TABLE, reports).pairs[0]?.path).toBe('direct')
    reports.retain(new Set([B]))
    expect(reports.get(A)).toBeUndefined()
  })

  it('renders a matrix (row says about column) and a pair list from the same structure', () => {
    const reports = new PathReports()
    reports.put(A, { peers: [{ publicKey: B, path: 'direct', endpoint: '198.18.12.2:1' }, { publicKey: C, path: 'hub', endpoint: null }] }, 990)
    const text = renderMeshView(buildMeshView(init, TABLE, reports))
    const s = (k: string): string => k.slice(0, 8)
    const lines = text.split('\n')
    expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^${s(A).replace(/[+/]/g, '\\$&')}\\s+-\\s+direct\\s+via hub$`)))
    expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^${s(B).replace(/[+/]/g, '\\$&')}\\s+\\?\\s+-\\s+\\?$`)))
    expect(text).toContain(`${s(A)} - ${s(C)}  via hub  easy/hard`)
    expect(text).toContain('10s ago')
    expect(text).not.toContain(A) // short keys only
  })
})

describe('reportOf', () => {
  it('maps the status paths to the wire and validates', () => {
    const status: ClientStatus = {
      interface: 'wg0', publicKey: A,
      registry: { url: '', reachable: true, version: 1, relay: true, lastSyncS: 0 },
      self: { endpoint: null, natClass: 'easy', mappedEndpoint: null },
      peers: [
        { publicKey: B, path: 'via hub', endpoint: '198.18.12.2:1', natClass: 'easy', latestHandshake: 0, sinceS: 0, reason: '' },
        { publicKey: C, path: 'direct', endpoint: '198.18.13.2:1', natClass: 'hard', latestHandshake: 0, sinceS: 0, reason: '' }
      ]
    }
    const r = reportOf(status)
    expect(r).toEqual({ peers: [{ publicKey: B, path: 'hub', endpoint: null }, { publicKey: C, path: 'direct', endpoint: '198.18.13.2:1' }] })
    expect(reportSchema.safeParse(r).success).toBe(true)
  })

  it.each([
    [{ peers: [{ publicKey: 'x', path: 'direct', endpoint: null }] }],
    [{ peers: [{ publicKey: testKey('a'), path: 'via hub', endpoint: null }] }],
    [{ peers: [{ publicKey: testKey('a'), path: 'direct', endpoint: 'nowhere' }] }],
    [{ peers: [{ publicKey: testKey('a'), path: 'direct', endpoint: null, name: 'x' }] }],
    [{ peers: [], self: 'b' }]
  ])('the schema refuses the almost valid %j', (body) => {
    expect(reportSchema.safeParse(body).success).toBe(false)
  })
})
