import { createSocket, type Socket } from 'node:dgram'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { natPmpMap } from '../../src/client/portmap/nat-pmp-client.js'
import { PcpUnsupported, pcpMap } from '../../src/client/portmap/pcp-client.js'
import { PortMapError } from '../../src/client/portmap/port-mapping.js'

/**
 * The PCP and NAT-PMP clients against a scripted gateway on a loopback address, UDP 5351 (no root needed): real
 * sockets, retransmission, matching of answers to requests.
 */
// A loopback address of its own per run: two test runs on one machine (CI beside a developer's) each bind UDP 5351.
const GATEWAY = `127.${1 + Math.floor(Math.random() * 254)}.${Math.floor(Math.random() * 256)}.${2 + Math.floor(Math.random() * 253)}`
type Reply = (msg: Buffer) => Buffer[] | undefined
let gateway: Socket
let reply: Reply = () => undefined
const seen: Buffer[] = []

beforeAll(async () => {
  gateway = createSocket('udp4')
  gateway.on('message', (msg, rinfo) => {
    seen.push(msg)
    for (const out of reply(msg) ?? []) gateway.send(out, rinfo.port, rinfo.address)
  })
  await new Promise<void>((resolve, reject) => { gateway.once('error', reject); gateway.bind(5351, GATEWAY, () => resolve()) })
})
afterAll(() => { gateway.close() })

/** A PCP MAP success for a request, with a chosen external port, optionally with a wrong nonce. */
function pcpAnswer (req: Buffer, externalPort: number, opts: { badNonce?: boolean } = {}): Buffer {
  const out = Buffer.alloc(60)
  out[0] = 2; out[1] = 0x81; out[3] = 0
  out.writeUInt32BE(req.readUInt32BE(4), 4)
  out.writeUInt32BE(1234, 8)
  req.copy(out, 24, 24, 60)
  if (opts.badNonce === true) out[24] = (out[24] ?? 0) ^ 0xff
  out.writeUInt16BE(externalPort, 42)
  Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 18, 12, 2]).copy(out, 44)
  return out
}

const req = { gateway: GATEWAY, internalPort: 51820, lifetimeS: 7200, timeoutMs: 1500 }

describe('PCP client', () => {
  it('maps, ignoring an answer with another nonce, and deletes with the same nonce and lifetime 0', async () => {
    seen.length = 0
    reply = (msg) => msg[0] === 2 ? [pcpAnswer(msg, 40000, { badNonce: true }), pcpAnswer(msg, 40001)] : undefined
    const m = await pcpMap(req)
    expect(m).toMatchObject({ protocol: 'pcp', external: { address: '198.18.12.2', port: 40001 }, internalPort: 51820, lifetimeS: 7200 })
    // The client-address field is our own source address towards the gateway (IPv4-mapped).
    expect([...seen[0]!.subarray(20, 24)]).toEqual([127, 0, 0, 1])
    await m.remove(1000)
    const del = seen.at(-1)!
    expect(del.readUInt32BE(4)).toBe(0)
    expect(del.subarray(24, 36)).toEqual(seen[0]!.subarray(24, 36))
  })

  it('retransmits until the gateway answers', async () => {
    seen.length = 0
    let n = 0
    reply = (msg) => ++n < 3 ? undefined : [pcpAnswer(msg, 40002)]
    const m = await pcpMap(req)
    expect(m.external.port).toBe(40002)
    expect(seen.length).toBe(3)
  })

  it('says the gateway speaks only NAT-PMP when it answers in NAT-PMP format', async () => {
    reply = () => [Buffer.from([0, 0x81, 0, 1, 0, 0, 0, 0])]
    await expect(pcpMap(req)).rejects.toBeInstanceOf(PcpUnsupported)
  })

  it('reports a refusal with its result code', async () => {
    reply = (msg) => { const out = pcpAnswer(msg, 0); out[3] = 2; return [out] }
    await expect(pcpMap(req)).rejects.toThrow(/refused the mapping: NOT_AUTHORIZED/)
  })

  it('gives up after its timeout when nothing answers', async () => {
    reply = () => undefined
    const t0 = Date.now()
    await expect(pcpMap({ ...req, timeoutMs: 300 })).rejects.toThrow(new RegExp(`no answer from ${GATEWAY.replace(/\./g, '\\.')}:5351 within 300 ms`))
    expect(Date.now() - t0).toBeLessThan(2000)
  })
})

describe('NAT-PMP client', () => {
  it('learns the external address, maps, and deletes with lifetime 0 and external port 0', async () => {
    seen.length = 0
    reply = (msg) => {
      if (msg[0] !== 0) return undefined
      if (msg[1] === 0) return [Buffer.from([0, 128, 0, 0, 0, 0, 0, 9, 198, 18, 12, 2])]
      const out = Buffer.alloc(16)
      out[1] = 129; out.writeUInt32BE(9, 4); msg.copy(out, 8, 4, 6); out.writeUInt16BE(40003, 10); out.writeUInt32BE(msg.readUInt32BE(8), 12)
      return [out]
    }
    const m = await natPmpMap(req)
    expect(m).toMatchObject({ protocol: 'nat-pmp', external: { address: '198.18.12.2', port: 40003 }, lifetimeS: 7200 })
    await m.remove(1000)
    const del = seen.at(-1)!
    expect([...del]).toEqual([0, 1, 0, 0, 0xca, 0x6c, 0, 0, 0, 0, 0, 0])
  })

  it('reports a gateway without an external address', async () => {
    reply = () => [Buffer.from([0, 128, 0, 3, 0, 0, 0, 9, 0, 0, 0, 0])]
    await expect(natPmpMap(req)).rejects.toBeInstanceOf(PortMapError)
  })
})
