import { request } from 'node:http'
import type { LeanHttpServer } from '../../src/server/registry/lean-http.js'
import { readFileSync } from 'node:fs'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { closeAll, listenOn, registryHandler } from '../../src/server/registry/registry-http.js'
import { RegistryService } from '../../src/server/registry/registry-service.js'
import { silentLogger } from '../../src/shared/log.js'
import { tableResponseSchema } from '../../src/shared/protocol.js'
import { FakeWg, ep, newPeer } from '../helpers/fake-wg.js'
import { testKey } from '../helpers/keys.js'

// Loopback stands in for the tunnel: 127.0.0.2 plays client A, 127.0.0.3 client B, 127.0.0.9 a stranger.
const A = testKey('a'); const B = testKey('b')
const PORT = 20000 + Math.floor(Math.random() * 20000)

let wg: FakeWg
let service: RegistryService
let servers: LeanHttpServer[]

function call (from: string, method: string, path: string, body?: string): Promise<{ status: number, body: string, retryAfter?: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: PORT, method, path, localAddress: from, agent: false }, (res) => {
      let text = ''
      res.on('data', (c) => { text += String(c) })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, ...(res.headers['retry-after'] === undefined ? {} : { retryAfter: res.headers['retry-after'] }) }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

beforeEach(async () => {
  wg = new FakeWg()
  wg.addDevice('wg0', {
    publicKey: testKey('hub'),
    listenPort: 51820,
    peers: [
      newPeer(A, { allowedIps: ['127.0.0.2/32'], endpoint: ep('198.18.11.2:40001'), latestHandshake: Math.floor(Date.now() / 1000), hasPresharedKey: true }),
      newPeer(B, { allowedIps: ['127.0.0.3/32'], endpoint: ep('198.18.12.2:40002') })
    ]
  })
  service = new RegistryService({ iface: 'wg0', pollMs: 20 }, { wg, logger: silentLogger() })
  await service.start()
  servers = await listenOn(['127.0.0.1'], PORT, registryHandler(service, silentLogger()))
})

afterEach(async () => {
  service.stop()
  await closeAll(servers)
})

describe('registry HTTP API', () => {
  it('identifies the caller by source address and serves the others', async () => {
    const res = await call('127.0.0.2', 'GET', '/v1/table')
    expect(res.status).toBe(200)
    const table = tableResponseSchema.parse(JSON.parse(res.body))
    expect(table.self).toMatchObject({ publicKey: A, endpoint: '198.18.11.2:40001', online: true })
    expect(table.peers.map((p) => p.publicKey)).toEqual([B])
    expect(table.full).toBe(true)
  })

  it('refuses a source address that is no peer', async () => {
    const res = await call('127.0.0.9', 'GET', '/v1/table')
    expect(res.status).toBe(403)
    expect(JSON.parse(res.body).error).toContain("'127.0.0.9'")
  })

  it('holds a long-poll until the table changes, then sends only the change', async () => {
    const first = tableResponseSchema.parse(JSON.parse((await call('127.0.0.2', 'GET', '/v1/table')).body))
    const started = Date.now()
    const pending = call('127.0.0.2', 'GET', `/v1/table?since=${first.version}&wait=10`)
    setTimeout(() => { const b = wg.peer('wg0', B); if (b !== undefined) b.endpoint = ep('198.18.12.2:50000') }, 200)
    const delta = tableResponseSchema.parse(JSON.parse((await pending).body))
    expect(Date.now() - started).toBeLessThan(5000)
    expect(delta.full).toBe(false)
    expect(delta.version).toBe(first.version + 1)
    expect(delta.peers).toEqual([expect.objectContaining({ publicKey: B, endpoint: '198.18.12.2:50000' })])
  })

  it('answers a long-poll with no change after the wait, and never runs wg per request', async () => {
    const first = tableResponseSchema.parse(JSON.parse((await call('127.0.0.2', 'GET', '/v1/table')).body))
    const before = wg.showCalls
    const results = await Promise.all([1, 2, 3].map(async () => await call('127.0.0.2', 'GET', `/v1/table?since=${first.version}&wait=1`)))
    for (const r of results) expect(tableResponseSchema.parse(JSON.parse(r.body))).toMatchObject({ full: false, peers: [], removed: [] })
    // Polls happened on the service's own timer (about 50 in a second at 20 ms), not one per request.
    expect(wg.showCalls - before).toBeGreaterThan(5)
  })

  it('validates announcements', async () => {
    const ok = await call('127.0.0.2', 'POST', '/v1/announce', JSON.stringify({ natClass: 'easy', mappedEndpoint: '198.18.11.2:51820', lanEndpoints: [] }))
    expect(ok.status).toBe(204)
    expect(service.table.get(A)?.announce?.natClass).toBe('easy')
    const bad = await call('127.0.0.2', 'POST', '/v1/announce', JSON.stringify({ natClass: 'weird', mappedEndpoint: null, lanEndpoints: [] }))
    expect(bad.status).toBe(400)
    expect(JSON.parse(bad.body).error).toMatch(/natClass/)
    // A router port mapping travels to the other peers with the announcement; a bad one is refused.
    const mapped = await call('127.0.0.2', 'POST', '/v1/announce', JSON.stringify({ natClass: 'hard', mappedEndpoint: null, lanEndpoints: [], portMapping: '198.18.11.2:40001' }))
    expect(mapped.status).toBe(204)
    const seen = tableResponseSchema.parse(JSON.parse((await call('127.0.0.3', 'GET', '/v1/table')).body))
    expect(seen.peers.find((p) => p.publicKey === A)?.announce?.portMapping).toBe('198.18.11.2:40001')
    const badMapping = await call('127.0.0.2', 'POST', '/v1/announce', JSON.stringify({ natClass: 'hard', mappedEndpoint: null, lanEndpoints: [], portMapping: '198.18.11.2' }))
    expect(badMapping.status).toBe(400)
    expect(JSON.parse(badMapping.body).error).toMatch(/portMapping/)
    const junk = await call('127.0.0.2', 'POST', '/v1/announce', '{nope')
    expect(junk.status).toBe(400)
    expect(JSON.parse(junk.body).error).toContain("'{nope'")
  })

  describe('wg-nat compatibility (POST /keepalive)', () => {
    it('answers in the original format, without preshared key, with a keepalive', async () => {
      const res = await call('127.0.0.2', 'POST', `/keepalive?pubkey=${encodeURIComponent(A)}`)
      expect(res.status).toBe(200)
      const vector = JSON.parse(readFileSync(new URL('../fixtures/wg-nat-keepalive-response.json', import.meta.url), 'utf8'))
      const body = JSON.parse(res.body)
      expect(body).toHaveLength(1)
      // Same fields, same types as the real wg-nat response.
      expect(Object.keys(body[0]).sort()).toEqual(Object.keys(vector[0]).sort())
      expect(body[0]).toMatchObject({
        PublicKey: [...Buffer.from(B, 'base64')],
        PresharedKey: null,
        Endpoint: { IP: '198.18.12.2', Port: 40002, Zone: '' },
        PersistentKeepaliveInterval: 25_000_000_000,
        AllowedIPs: [{ IP: '127.0.0.3', Mask: '/////w==' }]
      })
      expect(res.body).not.toMatch(/"PresharedKey":\[/)
    })

    it('refuses a key that is not the caller\'s, and answers an unknown key like wg-nat', async () => {
      expect((await call('127.0.0.2', 'POST', `/keepalive?pubkey=${encodeURIComponent(B)}`)).status).toBe(403)
      const unknown = await call('127.0.0.2', 'POST', `/keepalive?pubkey=${encodeURIComponent(testKey('nobody'))}`)
      expect(unknown).toEqual({ status: 400, body: 'null' })
    })
  })

  describe('one peer cannot take the registry from the others', () => {
    it('a peer gets at most 4 requests at once: the fifth long-poll is refused at once with 429, the other peer is served', async () => {
      const first = tableResponseSchema.parse(JSON.parse((await call('127.0.0.2', 'GET', '/v1/table')).body))
      const polls = [1, 2, 3, 4].map(async () => await call('127.0.0.2', 'GET', `/v1/table?since=${first.version}&wait=2`))
      await new Promise((resolve) => setTimeout(resolve, 200))
      const t0 = Date.now()
      const fifth = await call('127.0.0.2', 'GET', `/v1/table?since=${first.version}&wait=2`)
      expect(Date.now() - t0).toBeLessThan(500)
      expect(fifth.status).toBe(429)
      expect(fifth.retryAfter).toBe('1')
      expect(JSON.parse(fifth.body).error).toMatch(/at most 4/)
      const other = await call('127.0.0.3', 'GET', '/v1/table')
      expect(other.status).toBe(200)
      for (const r of await Promise.all(polls)) expect(r.status).toBe(200)
      // Finished requests give their place back.
      expect((await call('127.0.0.2', 'GET', `/v1/table?since=${first.version}`)).status).toBe(200)
    })

    it('full tables: 6 in a burst, then 429 with Retry-After; deltas and the other peer are not limited', async () => {
      const statuses: number[] = []
      for (let i = 0; i < 8; i++) statuses.push((await call('127.0.0.2', 'GET', '/v1/table')).status)
      expect(statuses).toEqual([200, 200, 200, 200, 200, 200, 429, 429])
      const refused = await call('127.0.0.2', 'GET', '/v1/table?since=0')
      expect(refused.retryAfter).toBe('10')
      // The wg-nat route serves the full table too: the same budget.
      expect((await call('127.0.0.2', 'POST', `/keepalive?pubkey=${encodeURIComponent(A)}`)).status).toBe(429)
      const version = service.table.version
      expect((await call('127.0.0.2', 'GET', `/v1/table?since=${version}`)).status).toBe(200)
      expect((await call('127.0.0.3', 'GET', '/v1/table')).status).toBe(200)
    })

    it('connections over 16 from one source are closed before a request is read; another source still connects', async () => {
      const { connect } = await import('node:net')
      const open = (from: string): Promise<{ closedEarly: boolean, socket: import('node:net').Socket }> => new Promise((resolve) => {
        const socket = connect({ host: '127.0.0.1', port: PORT, localAddress: from })
        let done = false
        const finish = (closedEarly: boolean): void => { if (!done) { done = true; resolve({ closedEarly, socket }) } }
        socket.once('close', () => finish(true))
        socket.once('error', () => finish(true))
        socket.once('connect', () => setTimeout(() => finish(socket.destroyed || socket.readableEnded), 300))
      })
      const sockets = await Promise.all(Array.from({ length: 30 }, async () => await open('127.0.0.2')))
      const alive = sockets.filter((s) => !s.closedEarly).length
      expect(alive).toBe(16)
      expect((await call('127.0.0.3', 'GET', '/v1/table')).status).toBe(200)
      for (const s of sockets) s.socket.destroy()
      await new Promise((resolve) => setTimeout(resolve, 100))
      expect((await call('127.0.0.2', 'GET', '/v1/table')).status).toBe(200)
    })
  })
})
