import { afterEach, describe, expect, it, vi } from 'vitest'
import { PathReporter } from '../../src/client/observe/path-reporter.js'
import type { ClientStatus, PeerStatus } from '../../src/client/observe/status.js'
import { silentLogger } from '../../src/shared/log.js'
import type { PathReport } from '../../src/shared/protocol.js'
import { testKey } from '../helpers/keys.js'

const B = testKey('b')
const status = (path: PeerStatus['path']): ClientStatus => ({
  interface: 'wg0', publicKey: testKey('a'),
  registry: { url: '', reachable: true, version: 1, relay: true, lastSyncS: 0 },
  self: { endpoint: null, natClass: 'easy', mappedEndpoint: null },
  peers: [{ publicKey: B, path, endpoint: '198.18.12.2:1', natClass: 'easy', latestHandshake: 0, sinceS: 0, reason: '' }]
})

const reporters: PathReporter[] = []
afterEach(async () => { await Promise.all(reporters.splice(0).map(async (r) => { await r.stop() })) })

describe('PathReporter', () => {
  it('reports at start and on change, not while nothing changes; refreshes after refreshMs', async () => {
    let path: PeerStatus['path'] = 'trying'
    const sent: PathReport[] = []
    const r = new PathReporter({ minIntervalMs: 5, refreshMs: 400 }, { status: () => status(path), send: async (rep) => { sent.push(rep) }, logger: silentLogger() })
    reporters.push(r)
    r.start()
    await vi.waitFor(() => { expect(sent).toHaveLength(1) }, { timeout: 500, interval: 2 })
    expect(sent[0]?.peers[0]).toEqual({ publicKey: B, path: 'trying', endpoint: '198.18.12.2:1' })
    await new Promise((resolve) => setTimeout(resolve, 60))
    expect(sent).toHaveLength(1)
    path = 'direct'
    await vi.waitFor(() => { expect(sent).toHaveLength(2) }, { timeout: 500, interval: 2 })
    expect(sent[1]?.peers[0]?.path).toBe('direct')
    await vi.waitFor(() => { expect(sent).toHaveLength(3) }, { timeout: 1500, interval: 5 })
    expect(sent[2]).toEqual(sent[1])
  })

  it('with a version, builds the status only after the version changed or when a refresh is due', async () => {
    let version = 1
    let path: PeerStatus['path'] = 'trying'
    const built = vi.fn(() => status(path))
    const sent: PathReport[] = []
    const r = new PathReporter({ minIntervalMs: 5, refreshMs: 600 }, { status: built, version: () => version, send: async (rep) => { sent.push(rep) }, logger: silentLogger() })
    reporters.push(r)
    r.start()
    await vi.waitFor(() => { expect(sent).toHaveLength(1) }, { timeout: 500, interval: 2 })
    await new Promise((resolve) => setTimeout(resolve, 100))
    // About 20 turns of 5 ms: the status was built for the first report only.
    expect(built).toHaveBeenCalledTimes(1)
    // A path that changes without the version changing is not seen until the refresh...
    path = 'direct'
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(sent).toHaveLength(1)
    // ...and at once when the version moves.
    version++
    await vi.waitFor(() => { expect(sent).toHaveLength(2) }, { timeout: 500, interval: 2 })
    expect(sent[1]?.peers[0]?.path).toBe('direct')
    // A version change with the same report: built again, not sent again.
    const before = built.mock.calls.length
    version++
    await vi.waitFor(() => { expect(built.mock.calls.length).toBe(before + 1) }, { timeout: 500, interval: 2 })
    expect(sent).toHaveLength(2)
    await vi.waitFor(() => { expect(sent).toHaveLength(3) }, { timeout: 1500, interval: 5 })
  })

  it('counts failures, warns once, and backs off instead of retrying every interval', async () => {
    const errors = vi.fn()
    const logger = silentLogger()
    const warn = vi.spyOn(logger, 'warn')
    const send = vi.fn(async () => { throw new Error('registry answered 404') })
    const r = new PathReporter({ minIntervalMs: 10, refreshMs: 10_000 }, { status: () => status('direct'), send, logger, observer: { registryError: errors } })
    reporters.push(r)
    r.start()
    await new Promise((resolve) => setTimeout(resolve, 350))
    // 10 ms, then 20, 40, 80, 160 ms waits: about 5 attempts in 350 ms, not 35.
    expect(send.mock.calls.length).toBeGreaterThanOrEqual(2)
    expect(send.mock.calls.length).toBeLessThanOrEqual(7)
    expect(errors).toHaveBeenCalledWith('report')
    expect(warn).toHaveBeenCalledTimes(1)
  })
})
