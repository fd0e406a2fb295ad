import { createServer, type Server } from 'node:http'
import { Socket } from 'node:net'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { LONG_POLL_KEEPALIVE_MS, LONG_POLL_MAX_S, LONG_POLL_MIN_S, longPollWaitS } from '../../src/client/long-poll-wait.js'
import { RegistryClient } from '../../src/client/registry-client.js'
import { MAX_WAIT_S } from '../../src/shared/protocol.js'

describe('longPollWaitS', () => {
  it.each([
    // interval (ms), random draw, expected hold (s)
    [999, 0.5, 0], // under a second: no long-poll, a poll after each interval
    [0, 0, 0],
    [1000, 0, LONG_POLL_MIN_S], // from a second on the hold no longer follows the interval
    [60_000, 0, LONG_POLL_MIN_S],
    [60_000, 0.5, LONG_POLL_MIN_S + 30],
    [60_000, 0.999999, LONG_POLL_MAX_S],
    [3_600_000, 0.999999, LONG_POLL_MAX_S],
    [60_000, 1, LONG_POLL_MAX_S] // a draw of exactly 1 (not Math.random's, but a caller's) stays in range
  ])('interval %i ms, draw %f: %i s', (intervalMs, draw, want) => {
    expect(longPollWaitS(intervalMs, () => draw)).toBe(want)
  })

  it('asks no more than the registry grants, and spreads the holds over the whole range', () => {
    expect(LONG_POLL_MAX_S).toBeLessThanOrEqual(MAX_WAIT_S)
    const holds = Array.from({ length: 2000 }, () => longPollWaitS(60_000))
    expect(Math.min(...holds)).toBeGreaterThanOrEqual(LONG_POLL_MIN_S)
    expect(Math.max(...holds)).toBeLessThanOrEqual(LONG_POLL_MAX_S)
    // 61 possible values, 2000 draws: nearly all of them appear; a fixed hold would give one.
    expect(new Set(holds).size).toBeGreaterThan(50)
  })
})

describe('RegistryClient long-poll connection', () => {
  let server: Server | undefined
  afterEach(async () => {
    vi.restoreAllMocks()
    server?.closeAllConnections()
    await new Promise<void>((resolve) => server?.close(() => resolve()) ?? resolve())
  })

  it('sets TCP keep-alive on a long-poll\'s socket (a dead hub is noticed), not on a plain request\'s', async () => {
    const body = JSON.stringify({ epoch: 'e', version: 2, now: 1, full: false, self: { publicKey: 'x'.repeat(43) + '=', endpoint: null, allowedIps: [], latestHandshake: 0, online: false }, peers: [], removed: [] })
    server = createServer((req, res) => { res.writeHead(200, { 'content-type': 'application/json' }).end(body) })
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve))
    const port = (server.address() as { port: number }).port
    const spy = vi.spyOn(Socket.prototype, 'setKeepAlive')
    const client = new RegistryClient({ address: '127.0.0.1', port })
    // The plain fetch (wait 0) first, then a long-poll; only the second is held and gets the probes.
    await client.table(0, 0).catch(() => undefined)
    const plainCalls = spy.mock.calls.filter(([, delay]) => delay === LONG_POLL_KEEPALIVE_MS).length
    await client.table(1, 5).catch(() => undefined)
    const longPollCalls = spy.mock.calls.filter(([on, delay]) => on === true && delay === LONG_POLL_KEEPALIVE_MS).length
    expect(plainCalls).toBe(0)
    expect(longPollCalls).toBe(1)
  })

  it('gives a long-poll\'s answer the plain request\'s time once it starts: a dribbled body fails fast, not after the wait', async () => {
    // Held 300 ms (the wait), then headers and one byte every 100 ms of a 100-byte body (10 s).
    server = createServer((req, res) => {
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': 100 })
        const timer = setInterval(() => { if (res.destroyed) clearInterval(timer); else res.write(' ') }, 100)
        res.on('close', () => clearInterval(timer))
      }, 300)
    })
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve))
    const port = (server.address() as { port: number }).port
    const client = new RegistryClient({ address: '127.0.0.1', port, timeoutMs: 500 })
    const started = Date.now()
    // wait=10: the whole-request deadline would be 10.5 s; the answer's own 0.5 s ends it about 0.8 s in.
    await expect(client.table(1, 10)).rejects.toThrow(/did not answer within/)
    expect(Date.now() - started).toBeLessThan(3000)
  })
})
