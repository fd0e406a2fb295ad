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

  it('notified of changes: no look at the version between changes, a report within minIntervalMs of a change, refresh on time', async () => {
    vi.useFakeTimers()
    try {
      let version = 1
      let path: PeerStatus['path'] = 'trying'
      const looks = vi.fn(() => version)
      const sent: Array<{ atMs: number, path: string | undefined }> = []
      const t0 = Date.now()
      const r = new PathReporter({ minIntervalMs: 1000, refreshMs: 60_000 }, { status: () => status(path), version: looks, notified: true, send: async (rep) => { sent.push({ atMs: Date.now() - t0, path: rep.peers[0]?.path }) }, logger: silentLogger() })
      reporters.push(r)
      r.start()
      await vi.advanceTimersByTimeAsync(0)
      expect(sent).toEqual([{ atMs: 0, path: 'trying' }])
      const looked = looks.mock.calls.length
      await vi.advanceTimersByTimeAsync(30_000)
      // Asleep: the version is not even read while nothing is said to change.
      expect(looks.mock.calls.length).toBe(looked)
      // A change 200 ms after a report waits out the minimum interval; a burst of changes is one report.
      path = 'direct'; version++; r.changed()
      await vi.advanceTimersByTimeAsync(0)
      expect(sent.at(-1)).toEqual({ atMs: 30_000, path: 'direct' })
      path = 'via hub'; version++; r.changed()
      await vi.advanceTimersByTimeAsync(200)
      path = 'direct'; version++; r.changed()
      path = 'unreachable'; version++; r.changed()
      await vi.advanceTimersByTimeAsync(799)
      expect(sent).toHaveLength(2)
      await vi.advanceTimersByTimeAsync(1)
      expect(sent).toHaveLength(3)
      expect(sent[2]).toEqual({ atMs: 31_000, path: 'unreachable' })
      // Nothing more until the refresh, 60 s after the last report.
      await vi.advanceTimersByTimeAsync(59_999)
      expect(sent).toHaveLength(3)
      await vi.advanceTimersByTimeAsync(1)
      expect(sent[3]).toEqual({ atMs: 91_000, path: 'unreachable' })
      await r.stop()
    } finally {
      vi.useRealTimers()
    }
  })

  it('notified of changes while reports fail: keeps to the backoff rather than sending on every change', async () => {
    vi.useFakeTimers()
    try {
      let version = 1
      const send = vi.fn(async () => { throw new Error('registry answered 503') })
      const r = new PathReporter({ minIntervalMs: 1000, refreshMs: 60_000 }, { status: () => status('direct'), version: () => version, notified: true, send, logger: silentLogger() })
      reporters.push(r)
      r.start()
      await vi.advanceTimersByTimeAsync(0)
      expect(send).toHaveBeenCalledTimes(1)
      // Backoff 2 s: changes every 100 ms meanwhile do not bring the retry forward.
      for (let i = 0; i < 19; i++) { version++; r.changed(); await vi.advanceTimersByTimeAsync(100) }
      expect(send).toHaveBeenCalledTimes(1)
      await vi.advanceTimersByTimeAsync(100)
      expect(send).toHaveBeenCalledTimes(2)
      await r.stop()
    } finally {
      vi.useRealTimers()
    }
  })
})
