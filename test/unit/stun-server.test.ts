import { afterEach, describe, expect, it } from 'vitest'
import { createSocket, type Socket } from 'node:dgram'
import { once } from 'node:events'
import { silentLogger } from '../../src/shared/log.js'
import {
  StunClass,
  StunMessageType,
  decodeStunMessage,
  encodeBindingRequest,
  encodeBindingSuccess,
  newTransactionId,
  type StunMessage
} from '../../src/shared/stun.js'
import { StunServerError, createStunServer, type StunServer } from '../../src/server/stun-server.js'
import { SourceRateLimiter } from '../../src/shared/rate-limiter.js'

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

async function startServer (init: Parameters<typeof createStunServer>[0] = {}): Promise<StunServer> {
  const server = createStunServer({ port: 0, addresses: ['127.0.0.1'], ...init }, { logger: silentLogger() })
  await server.start()
  cleanups.push(async () => await server.stop())
  return server
}

async function client (type: 'udp4' | 'udp6' = 'udp4', address = '127.0.0.1'): Promise<{ socket: Socket, received: StunMessage[], raw: Buffer[] }> {
  const socket = createSocket(type)
  socket.bind(0, address)
  await once(socket, 'listening')
  cleanups.push(() => { socket.close() })
  const received: StunMessage[] = []
  const raw: Buffer[] = []
  socket.on('message', (msg) => {
    raw.push(msg)
    try { received.push(decodeStunMessage(msg)) } catch { /* counted in raw */ }
  })
  return { socket, received, raw }
}

async function until (condition: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting')
    await new Promise(resolve => setTimeout(resolve, 5))
  }
}

const settle = async (ms = 100): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

describe('STUN server', () => {
  it('answers a Binding request with the caller\'s address and port (XOR-MAPPED-ADDRESS and MAPPED-ADDRESS)', async () => {
    const server = await startServer()
    const [endpoint] = server.endpoints()
    const { socket, received } = await client()
    const transactionId = newTransactionId()
    socket.send(encodeBindingRequest(transactionId), endpoint!.port, endpoint!.address)
    await until(() => received.length === 1)

    const response = received[0]!
    expect(response.type).toBe(StunMessageType.BINDING_SUCCESS)
    expect(response.transactionId.equals(transactionId)).toBe(true)
    expect(response.fingerprint).toBe(true)
    const me = socket.address()
    expect(response.xorMappedAddress).toEqual({ address: me.address, port: me.port })
    expect(response.mappedAddress).toEqual({ address: me.address, port: me.port })
    expect(server.stats()).toMatchObject({ answered: 1, ignored: 0, rateLimited: 0 })
  })

  it('answers requests without FINGERPRINT and adds SOFTWARE when configured', async () => {
    const server = await startServer({ software: 'wgnat test' })
    const [endpoint] = server.endpoints()
    const { socket, received } = await client()
    socket.send(encodeBindingRequest(newTransactionId(), { fingerprint: false }), endpoint!.port, endpoint!.address)
    await until(() => received.length === 1)
    expect(received[0]!.software).toBe('wgnat test')
  })

  it('ignores junk and anything that is not a Binding request', async () => {
    const server = await startServer()
    const [endpoint] = server.endpoints()
    const { socket, received, raw } = await client()
    const send = (msg: Buffer): void => { socket.send(msg, endpoint!.port, endpoint!.address) }

    const indication = encodeBindingRequest(newTransactionId())
    indication.writeUInt16BE(StunMessageType.BINDING_INDICATION, 0)
    const badFingerprint = encodeBindingRequest(newTransactionId())
    badFingerprint[badFingerprint.length - 1]! ^= 0xff
    const otherMethod = encodeBindingRequest(newTransactionId(), { fingerprint: false })
    otherMethod.writeUInt16BE(0x0003, 0) // Allocate (TURN) request
    const junk = [
      Buffer.alloc(0),
      Buffer.from('hello'),
      Buffer.from([0x01, 0x00, 0x00, 0x00]), // a WireGuard handshake initiation's first bytes
      Buffer.alloc(148, 1),
      encodeBindingSuccess(newTransactionId(), { address: '192.0.2.1', port: 1 }),
      indication,
      badFingerprint,
      otherMethod
    ]
    for (const msg of junk) send(msg)
    const valid = newTransactionId()
    send(encodeBindingRequest(valid))
    await until(() => raw.length >= 1)
    await settle()

    expect(raw).toHaveLength(1)
    expect(received[0]!.class).toBe(StunClass.SUCCESS)
    expect(received[0]!.transactionId.equals(valid)).toBe(true)
    expect(server.stats()).toMatchObject({ answered: 1, ignored: junk.length })
  })

  it('drops requests past the burst from one source', async () => {
    const server = await startServer({ ratePerSecond: 1, burst: 5 })
    const [endpoint] = server.endpoints()
    const { socket, raw } = await client()
    for (let i = 0; i < 12; i++) socket.send(encodeBindingRequest(newTransactionId()), endpoint!.port, endpoint!.address)
    await until(() => server.stats().answered + server.stats().rateLimited === 12)
    await settle()

    expect(raw).toHaveLength(5)
    expect(server.stats()).toMatchObject({ answered: 5, rateLimited: 7 })
  })

  it('limits each source on its own', async () => {
    const server = await startServer({ ratePerSecond: 1, burst: 2 })
    const [endpoint] = server.endpoints()
    const a = await client()
    const b = await client()
    for (let i = 0; i < 4; i++) {
      a.socket.send(encodeBindingRequest(newTransactionId()), endpoint!.port, endpoint!.address)
    }
    await until(() => server.stats().answered + server.stats().rateLimited === 4)
    // Another port on the same address is the same source: its bucket is already empty.
    b.socket.send(encodeBindingRequest(newTransactionId()), endpoint!.port, endpoint!.address)
    await until(() => server.stats().answered + server.stats().rateLimited === 5)
    await settle(50)
    expect(a.raw).toHaveLength(2)
    expect(b.raw).toHaveLength(0)
  })

  it('serves IPv6 when bound to an IPv6 address', async (ctx) => {
    const server = createStunServer({ port: 0, addresses: ['::1'] }, { logger: silentLogger() })
    try {
      await server.start()
    } catch (err) {
      ctx.skip(`no IPv6 loopback: ${String(err)}`)
    }
    cleanups.push(async () => await server.stop())
    const [endpoint] = server.endpoints()
    const { socket, received } = await client('udp6', '::1')
    socket.send(encodeBindingRequest(newTransactionId()), endpoint!.port, '::1')
    await until(() => received.length === 1)
    expect(received[0]!.xorMappedAddress).toEqual({ address: '::1', port: socket.address().port })
  })

  it('rejects with StunServerError naming the endpoint when the port is taken', async () => {
    const server = await startServer()
    const [endpoint] = server.endpoints()
    const second = createStunServer({ port: endpoint!.port, addresses: ['127.0.0.1'] }, { logger: silentLogger() })
    const error = await second.start().catch((err: unknown) => err)
    expect(error).toBeInstanceOf(StunServerError)
    expect((error as Error).message).toMatch(new RegExp(`^STUN server: cannot listen on '127\\.0\\.0\\.1:${endpoint!.port}': `))
    expect(second.endpoints()).toEqual([])
  })

  it('stops listening on stop(), and stop() twice is harmless', async () => {
    const server = createStunServer({ port: 0, addresses: ['127.0.0.1'] }, { logger: silentLogger() })
    await server.start()
    const [endpoint] = server.endpoints()
    await server.stop()
    await server.stop()
    expect(server.endpoints()).toEqual([])
    // The port is free again.
    const again = createStunServer({ port: endpoint!.port, addresses: ['127.0.0.1'] }, { logger: silentLogger() })
    await again.start()
    await again.stop()
  })
})

describe('SourceRateLimiter', () => {
  it('allows a burst, then the sustained rate', () => {
    let now = 0
    const limiter = new SourceRateLimiter(20, 40, () => now)
    const burst = Array.from({ length: 50 }, () => limiter.take('192.0.2.1'))
    expect(burst.filter(Boolean)).toHaveLength(40)
    now += 100 // 100 ms at 20/s: 2 tokens
    expect([limiter.take('192.0.2.1'), limiter.take('192.0.2.1'), limiter.take('192.0.2.1')]).toEqual([true, true, false])
    now += 10_000 // refills to the burst, no more
    expect(Array.from({ length: 45 }, () => limiter.take('192.0.2.1')).filter(Boolean)).toHaveLength(40)
  })

  it('keeps sources apart', () => {
    const limiter = new SourceRateLimiter(1, 1, () => 0)
    expect(limiter.take('192.0.2.1')).toBe(true)
    expect(limiter.take('192.0.2.1')).toBe(false)
    expect(limiter.take('192.0.2.2')).toBe(true)
  })

  it('forgets the least recently seen source past maxSources', () => {
    const limiter = new SourceRateLimiter(1, 1, () => 0, 3)
    for (const ip of ['192.0.2.1', '192.0.2.2', '192.0.2.3']) limiter.take(ip)
    limiter.take('192.0.2.1') // now the most recent
    limiter.take('192.0.2.4') // evicts 192.0.2.2
    expect(limiter.size).toBe(3)
    expect(limiter.take('192.0.2.1')).toBe(false) // still tracked, still empty
    expect(limiter.take('192.0.2.2')).toBe(true) // forgotten: a fresh bucket
  })
})
