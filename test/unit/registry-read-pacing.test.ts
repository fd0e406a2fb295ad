import { request } from 'node:http'
import type { LeanHttpServer } from '../../src/server/registry/lean-http.js'
import { afterEach, describe, expect, it } from 'vitest'
import { closeAll, listenOn, registryHandler } from '../../src/server/registry/registry-http.js'
import { RegistryService } from '../../src/server/registry/registry-service.js'
import { silentLogger } from '../../src/shared/log.js'
import { FakeWg, ep, newPeer } from '../helpers/fake-wg.js'
import { testKey } from '../helpers/keys.js'

const A = testKey('a'); const B = testKey('b'); const C = testKey('c')
const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))
const POLL_MS = 40
const IDLE_MS = 60_000

/** A hub whose idle interval is far beyond the test: every read in it was prompted (or is the first). */
function hub (): FakeWg {
  const fake = new FakeWg()
  const now = Math.floor(Date.now() / 1000)
  fake.addDevice('wg0', {
    publicKey: testKey('hub'),
    listenPort: 51820,
    peers: [
      newPeer(A, { allowedIps: ['100.64.0.2/32'], endpoint: ep('198.18.11.2:1000'), latestHandshake: now }),
      newPeer(B, { allowedIps: ['100.64.0.3/32'], endpoint: ep('198.18.12.2:1000'), latestHandshake: now }),
      newPeer(C, { allowedIps: ['100.64.0.4/32'] })
    ]
  })
  return fake
}

const PORT = 20000 + Math.floor(Math.random() * 20000)

function call (from: string, method: string, path: string, body?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: PORT, method, path, localAddress: from, agent: false }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    })
    req.on('error', reject)
    req.end(body)
  })
}

const announce = (port: number): Parameters<RegistryService['announce']>[1] => ({ natClass: 'easy', mappedEndpoint: `198.18.11.2:${port}`, lanEndpoints: [], ready: [] })

describe('RegistryService read pacing (issue 16)', () => {
  let service: RegistryService | undefined
  afterEach(() => service?.stop())

  it('reads no more than the first time while nothing prompts a read', async () => {
    const fake = hub()
    service = new RegistryService({ iface: 'wg0', pollMs: POLL_MS, idleReadMs: IDLE_MS }, { wg: fake, logger: silentLogger() })
    await service.start()
    await fake.set('wg0', [{ publicKey: A, endpoint: ep('198.18.11.2:2000') }])
    // Requests from peers the table shows online, with an endpoint: no read.
    service.noteRequest(A)
    service.noteRequest(B)
    await sleep(POLL_MS * 5)
    expect(fake.showCalls).toBe(1)
    expect(service.table.get(A)?.endpoint).toBe('198.18.11.2:1000')
  })

  it('a changed announcement has the interface read within pollMs: the announcing peer\'s new endpoint is served', async () => {
    const fake = hub()
    service = new RegistryService({ iface: 'wg0', pollMs: POLL_MS, idleReadMs: IDLE_MS }, { wg: fake, logger: silentLogger() })
    await service.start()
    service.announce(A, announce(1000))
    await sleep(POLL_MS * 3)
    expect(fake.showCalls).toBe(2)
    // A's router rebooted: its packets (the announcement) now reach the hub from another port.
    await fake.set('wg0', [{ publicKey: A, endpoint: ep('198.18.11.2:2000') }])
    const t = Date.now()
    service.announce(A, announce(2000))
    const v = service.table.version
    await service.changedSince(v, 5000)
    expect(Date.now() - t).toBeLessThan(2000)
    expect(service.table.get(A)?.endpoint).toBe('198.18.11.2:2000')
    // The same announcement again changes nothing and prompts nothing.
    const reads = fake.showCalls
    service.announce(A, announce(2000))
    await sleep(POLL_MS * 3)
    expect(fake.showCalls).toBe(reads)
  })

  it('a request from a peer the table shows without an endpoint (or offline) has the interface read', async () => {
    const fake = hub()
    service = new RegistryService({ iface: 'wg0', pollMs: POLL_MS, idleReadMs: IDLE_MS }, { wg: fake, logger: silentLogger() })
    await service.start()
    expect(service.table.get(C)?.online).toBe(false)
    // C comes up: its handshake gave the hub its endpoint, and its first request arrives.
    await fake.set('wg0', [{ publicKey: C, endpoint: ep('198.18.13.2:1000') }])
    const p = fake.peer('wg0', C)
    if (p !== undefined) p.latestHandshake = Math.floor(Date.now() / 1000)
    const v = service.table.version
    service.noteRequest(C)
    await service.changedSince(v, 5000)
    expect(service.table.get(C)?.endpoint).toBe('198.18.13.2:1000')
    expect(service.table.get(C)?.online).toBe(true)
    // Now online with an endpoint: its requests prompt nothing more.
    await sleep(POLL_MS * 2)
    const reads = fake.showCalls
    for (let i = 0; i < 10; i++) service.noteRequest(C)
    await sleep(POLL_MS * 3)
    expect(fake.showCalls).toBe(reads)
  })

  it('prompts in a burst make one read, and reads start at least pollMs apart', async () => {
    const fake = hub()
    service = new RegistryService({ iface: 'wg0', pollMs: 200, idleReadMs: IDLE_MS }, { wg: fake, logger: silentLogger() })
    await service.start()
    const t = Date.now()
    for (let i = 0; i < 50; i++) service.noteRequest(C)
    await sleep(100)
    // The start read was under 200 ms ago: the prompted read waits for pollMs after it.
    expect(fake.showCalls).toBe(1)
    await sleep(250)
    expect(fake.showCalls).toBe(2)
    expect(Date.now() - t).toBeGreaterThanOrEqual(200)
  })

  it('reads at the idle interval without prompts', async () => {
    const fake = hub()
    service = new RegistryService({ iface: 'wg0', pollMs: 10, idleReadMs: 50 }, { wg: fake, logger: silentLogger() })
    await service.start()
    await sleep(280)
    // 5 idle intervals; timers run late under load, never early.
    expect(fake.showCalls).toBeGreaterThanOrEqual(3)
    expect(fake.showCalls).toBeLessThanOrEqual(7)
  })

  it('stop() ends the reads, prompted or not', async () => {
    const fake = hub()
    service = new RegistryService({ iface: 'wg0', pollMs: 10, idleReadMs: 20 }, { wg: fake, logger: silentLogger() })
    await service.start()
    service.stop()
    service.noteRequest(C)
    await sleep(100)
    expect(fake.showCalls).toBe(1)
  })

  describe('over HTTP', () => {
    let servers: LeanHttpServer[] = []
    afterEach(async () => { await closeAll(servers); servers = [] })

    it('a full table prompts a read, a delta or a long-poll from an online peer does not; a changed announcement does', async () => {
      const fake = hub()
      // Loopback stands in for the tunnel: 127.0.0.2 is A (online, with an endpoint).
      await fake.set('wg0', [{ publicKey: A, allowedIps: ['127.0.0.2/32'] }])
      service = new RegistryService({ iface: 'wg0', pollMs: POLL_MS, idleReadMs: IDLE_MS }, { wg: fake, logger: silentLogger() })
      await service.start()
      servers = await listenOn(['127.0.0.1'], PORT, registryHandler(service, silentLogger()))
      expect(await call('127.0.0.2', 'GET', '/v1/table')).toBe(200)
      await sleep(POLL_MS * 3)
      expect(fake.showCalls).toBe(2)
      const v = service.table.version
      expect(await call('127.0.0.2', 'GET', `/v1/table?since=${v}`)).toBe(200)
      expect(await call('127.0.0.2', 'GET', `/v1/table?since=${v}&wait=1`)).toBe(200)
      await sleep(POLL_MS * 3)
      expect(fake.showCalls).toBe(2)
      expect(await call('127.0.0.2', 'POST', '/v1/announce', JSON.stringify(announce(3000)))).toBe(204)
      await sleep(POLL_MS * 3)
      expect(fake.showCalls).toBe(3)
    })
  })
})
