import { describe, expect, it } from 'vitest'
import { STUN_RECEIVE_PACKET_BYTES, stunProbe, type StunProbeComponents } from '../../src/client/nat/stun-probe.js'
import { RawSocketUnavailable, RawUdpError, type RawUdpReceiverInit, type RawUdpSendInit } from '../../src/shared/raw-udp.js'
import {
  StunClass,
  StunMessageType,
  decodeStunMessage,
  encodeBindingSuccess,
  type StunEndpoint
} from '../../src/shared/stun.js'
import type { Ipv4UdpPacket } from '../../src/shared/udp-packet.js'

const LOCAL_PORT = 51820
const OUR_PUBLIC_IP = '203.0.113.7'
const A = { address: '198.51.100.1', port: 3478 }
const B = { address: '198.51.100.2', port: 3478 }

/** How a fake server treats the n-th request it receives (0-based). */
type Behaviour = (request: Buffer, n: number) => Array<Partial<Ipv4UdpPacket> & { payload: Buffer }> | undefined

/** A fake network: sends go to fake servers, whose answers arrive (asynchronously) at the open receiver. */
function fakeNet (servers: Record<string, Behaviour>, opts: { sendError?: (init: RawUdpSendInit) => Error | undefined } = {}) {
  const sent: RawUdpSendInit[] = []
  const counts = new Map<string, number>()
  let receiver: RawUdpReceiverInit | undefined
  let receiverOpen = false
  let senderOpen = false
  const components: StunProbeComponents = {
    openReceiver: (init) => {
      receiver = init
      receiverOpen = true
      return {
        stats: { seen: 0, otherPort: 0, malformed: 0, delivered: 0, handlerErrors: 0, socketErrors: 0 },
        get closed () { return !receiverOpen },
        close: () => { receiverOpen = false }
      }
    },
    openSender: () => {
      senderOpen = true
      return {
        send: async (init) => {
          const error = opts.sendError?.(init)
          if (error !== undefined) throw error
          sent.push(init)
          const key = `${init.dst.address}:${init.dst.port}`
          const n = counts.get(key) ?? 0
          counts.set(key, n + 1)
          const answers = servers[key]?.(Buffer.from(init.payload), n) ?? []
          for (const answer of answers) {
            setImmediate(() => {
              if (!receiverOpen) return
              receiver!.onPacket({
                srcIp: init.dst.address,
                srcPort: init.dst.port,
                dstIp: '192.168.1.2',
                dstPort: init.srcPort,
                ttl: 60,
                ...answer
              })
            })
          }
        },
        close: () => { senderOpen = false }
      }
    }
  }
  return { components, sent, counts, isOpen: () => receiverOpen || senderOpen, receiverInit: () => receiver }
}

/** A server behind which we appear as `mapped`. */
const answers = (mapped: StunEndpoint): Behaviour => (request) => {
  const { transactionId } = decodeStunMessage(request)
  return [{ payload: encodeBindingSuccess(transactionId, mapped) }]
}

describe('stunProbe', () => {
  it('sends a fingerprinted Binding request from localPort to each server and collects the mappings', async () => {
    const net = fakeNet({
      '198.51.100.1:3478': answers({ address: OUR_PUBLIC_IP, port: 40000 }),
      '198.51.100.2:3478': answers({ address: OUR_PUBLIC_IP, port: 40000 })
    })
    const result = await stunProbe({ localPort: LOCAL_PORT, servers: [A, B], timeoutMs: 300 }, net.components)

    expect(result.samples).toEqual([
      { server: '198.51.100.1:3478', mapped: { address: OUR_PUBLIC_IP, port: 40000 } },
      { server: '198.51.100.2:3478', mapped: { address: OUR_PUBLIC_IP, port: 40000 } }
    ])
    expect(result.failures).toEqual([])
    expect(net.sent).toHaveLength(2)
    for (const send of net.sent) {
      expect(send.srcPort).toBe(LOCAL_PORT)
      const request = decodeStunMessage(Buffer.from(send.payload))
      expect(request.type).toBe(StunMessageType.BINDING_REQUEST)
      expect(request.fingerprint).toBe(true)
    }
    const [first, second] = net.sent.map(s => decodeStunMessage(Buffer.from(s.payload)).transactionId.toString('hex'))
    expect(first).not.toBe(second)
    expect(net.isOpen()).toBe(false)
    // A small packet buffer (not the raw receiver's 64 KB), still far larger than a response with every attribute.
    const largest = encodeBindingSuccess(Buffer.alloc(12, 0xff), { address: '255.255.255.255', port: 65535 }).length + 20 + 8
    expect(net.receiverInit()?.packetBytes).toBe(STUN_RECEIVE_PACKET_BYTES)
    expect(STUN_RECEIVE_PACKET_BYTES).toBeGreaterThanOrEqual(1500)
    expect(largest).toBeLessThan(STUN_RECEIVE_PACKET_BYTES)
  })

  it('returns as soon as every server has answered', async () => {
    const net = fakeNet({ '198.51.100.1:3478': answers({ address: OUR_PUBLIC_IP, port: 1 }) })
    const started = Date.now()
    await stunProbe({ localPort: LOCAL_PORT, servers: [A], timeoutMs: 5_000 }, net.components)
    expect(Date.now() - started).toBeLessThan(1_000)
  })

  it('retransmits with the same transaction ID, doubling the interval, and accepts a late answer', async () => {
    const sentAt: number[] = []
    const net = fakeNet({
      '198.51.100.1:3478': (request, n) => {
        sentAt.push(Date.now())
        return n < 2 ? undefined : answers({ address: OUR_PUBLIC_IP, port: 2 })(request, n)
      }
    })
    const result = await stunProbe({ localPort: LOCAL_PORT, servers: [A], timeoutMs: 700, retries: 2 }, net.components)

    expect(result.samples).toHaveLength(1)
    expect(net.sent).toHaveLength(3)
    const ids = new Set(net.sent.map(s => decodeStunMessage(Buffer.from(s.payload)).transactionId.toString('hex')))
    expect(ids.size).toBe(1)
    // RTO = 700 / 7 = 100 ms: sends at about 0, 100 and 300 ms.
    expect(sentAt[1]! - sentAt[0]!).toBeGreaterThanOrEqual(90)
    expect(sentAt[2]! - sentAt[1]!).toBeGreaterThanOrEqual(180)
  })

  it('reports a server that never answers, after 1 + retries requests', async () => {
    const net = fakeNet({ '198.51.100.1:3478': answers({ address: OUR_PUBLIC_IP, port: 3 }) })
    const result = await stunProbe({ localPort: LOCAL_PORT, servers: [A, B], timeoutMs: 200, retries: 3 }, net.components)

    expect(result.samples.map(s => s.server)).toEqual(['198.51.100.1:3478'])
    expect(result.failures).toEqual([{ server: '198.51.100.2:3478', reason: 'no response within 200 ms (4 requests)' }])
    expect(net.counts.get('198.51.100.2:3478')).toBe(4)
    expect(net.counts.get('198.51.100.1:3478')).toBe(1)
  })

  it('ignores answers with another transaction ID, from another source, or that are not STUN', async () => {
    const net = fakeNet({
      '198.51.100.1:3478': (request) => {
        const { transactionId } = decodeStunMessage(request)
        const good = encodeBindingSuccess(transactionId, { address: OUR_PUBLIC_IP, port: 4 })
        const otherId = encodeBindingSuccess(Buffer.alloc(12, 7), { address: '192.0.2.66', port: 66 })
        return [
          { payload: otherId },
          { payload: good, srcIp: '198.51.100.99' }, // right ID, wrong server address
          { payload: good, srcPort: 3479 }, // right ID, wrong server port
          { payload: Buffer.from([1, 0, 0, 0, 9, 9, 9, 9]) }, // WireGuard-looking traffic to our port
          { payload: Buffer.concat([good.subarray(0, 20), Buffer.alloc(4)]) } // STUN header, broken body
        ]
      }
    })
    const result = await stunProbe({ localPort: LOCAL_PORT, servers: [A], timeoutMs: 150, retries: 0 }, net.components)
    expect(result.samples).toEqual([])
    expect(result.failures).toEqual([{ server: '198.51.100.1:3478', reason: 'no response within 150 ms (1 request)' }])
  })

  it('reports an error response with its code', async () => {
    const net = fakeNet({
      '198.51.100.1:3478': (request) => {
        const { transactionId } = decodeStunMessage(request)
        const error = encodeBindingSuccess(transactionId, { address: '0.0.0.0', port: 0 }, { fingerprint: false })
        error.writeUInt16BE(StunMessageType.BINDING_ERROR, 0)
        // Replace XOR-MAPPED-ADDRESS (type 0x0020, 8 bytes) with ERROR-CODE 420 "Nope" (8 bytes).
        error.writeUInt16BE(0x0009, 20)
        error.writeUInt16BE(8, 22)
        Buffer.from([0, 0, 4, 20, 0x4e, 0x6f, 0x70, 0x65]).copy(error, 24)
        expect(decodeStunMessage(error).class).toBe(StunClass.ERROR)
        return [{ payload: error }]
      }
    })
    const result = await stunProbe({ localPort: LOCAL_PORT, servers: [A], timeoutMs: 200 }, net.components)
    expect(result.failures).toEqual([{ server: '198.51.100.1:3478', reason: 'error response 420 Nope' }])
    expect(net.sent).toHaveLength(1)
  })

  it('reports IPv6 servers as unsupported without sending to them', async () => {
    const net = fakeNet({ '198.51.100.1:3478': answers({ address: OUR_PUBLIC_IP, port: 5 }) })
    const result = await stunProbe({ localPort: LOCAL_PORT, servers: [{ address: '2001:db8::1', port: 3478 }, A], timeoutMs: 200 }, net.components)
    expect(result.failures).toEqual([{ server: '[2001:db8::1]:3478', reason: 'raw STUN probes support IPv4 servers only' }])
    expect(result.samples).toHaveLength(1)
    expect(net.sent.map(s => s.dst.address)).toEqual([A.address])
  })

  it('reports send errors per server and keeps probing the others', async () => {
    const net = fakeNet(
      { '198.51.100.1:3478': answers({ address: OUR_PUBLIC_IP, port: 6 }) },
      { sendError: (init) => init.dst.address === B.address ? new RawUdpError('raw UDP send: no route') : undefined }
    )
    const result = await stunProbe({ localPort: LOCAL_PORT, servers: [A, B], timeoutMs: 100 }, net.components)
    expect(result.samples).toHaveLength(1)
    expect(result.failures).toEqual([{ server: '198.51.100.2:3478', reason: 'not sent: raw UDP send: no route' }])
  })

  it('returns what it has when aborted, and closes its sockets', async () => {
    const net = fakeNet({ '198.51.100.1:3478': answers({ address: OUR_PUBLIC_IP, port: 7 }) })
    const controller = new AbortController()
    setTimeout(() => controller.abort(), 50)
    const started = Date.now()
    const result = await stunProbe({ localPort: LOCAL_PORT, servers: [A, B], timeoutMs: 5_000, signal: controller.signal }, net.components)
    expect(Date.now() - started).toBeLessThan(1_000)
    expect(result.samples).toHaveLength(1)
    expect(result.failures).toEqual([{ server: '198.51.100.2:3478', reason: 'aborted after 1 request' }])
    expect(net.isOpen()).toBe(false)
  })

  it('rejects with RawSocketUnavailable when raw sockets cannot be opened', async () => {
    const unavailable = new RawSocketUnavailable('raw sockets need CAP_NET_RAW (run as root): Operation not permitted')
    const probe = stunProbe({ localPort: LOCAL_PORT, servers: [A], timeoutMs: 100 }, {
      openReceiver: () => { throw unavailable },
      openSender: () => { throw new Error('not reached') }
    })
    await expect(probe).rejects.toBe(unavailable)
  })

  it('asks each server once even when it is listed twice', async () => {
    const net = fakeNet({ '198.51.100.1:3478': answers({ address: OUR_PUBLIC_IP, port: 8 }) })
    const result = await stunProbe({ localPort: LOCAL_PORT, servers: [A, { ...A }], timeoutMs: 100 }, net.components)
    expect(result.samples).toHaveLength(1)
    expect(net.sent).toHaveLength(1)
  })
})
