import { describe, expect, it } from 'vitest'
import { PUNCH_PAYLOAD, punch, type PuncherComponents } from '../../src/client/nat/puncher.js'
import { RawSocketUnavailable, RawUdpError, type RawUdpSendInit } from '../../src/shared/raw-udp.js'

const LOCAL_PORT = 51820
const T1 = { address: '198.51.100.1', port: 40001 }
const T2 = { address: '198.51.100.2', port: 40002 }

function fakeSender (fail?: (init: RawUdpSendInit) => Error | undefined) {
  const sent: Array<RawUdpSendInit & { at: number }> = []
  let open = 0
  const components: PuncherComponents = {
    openSender: () => {
      open++
      return {
        send: async (init) => {
          const error = fail?.(init)
          if (error !== undefined) throw error
          sent.push({ ...init, at: Date.now() })
        },
        close: () => { open-- }
      }
    }
  }
  return { components, sent, open: () => open }
}

describe('punch', () => {
  it('uses a payload WireGuard drops: the first four bytes are not message type 1-4', () => {
    // wireguard-go and the kernel module both read a little-endian u32 type; 1-4 are the only valid ones.
    expect([1, 2, 3, 4]).not.toContain(PUNCH_PAYLOAD.readUInt32LE(0))
    expect(PUNCH_PAYLOAD[0]).toBe(0)
    expect(PUNCH_PAYLOAD.subarray(1).toString('ascii')).toBe('wgn')
  })

  it('skips IPv6 targets (the raw socket is IPv4 only; WireGuard\'s own handshakes open an IPv6 firewall)', async () => {
    const net = fakeSender()
    const result = await punch({ localPort: LOCAL_PORT, targets: [{ address: '2001:db8:1:2::2', port: 51820 }, T1], count: 1 }, net.components)
    expect(result).toEqual({ sent: 1, errors: [] })
    expect(net.sent.map(s => s.dst.address)).toEqual(['198.51.100.1'])
    const none = fakeSender()
    expect(await punch({ localPort: LOCAL_PORT, targets: [{ address: '2001:db8:1:2::2', port: 51820 }] }, none.components)).toEqual({ sent: 0, errors: [] })
    expect(none.open()).toBe(0)
  })

  it('sends count rounds to every target from localPort, intervalMs apart, with the TTL asked', async () => {
    const net = fakeSender()
    const result = await punch({ localPort: LOCAL_PORT, targets: [T1, T2], count: 3, intervalMs: 40, ttl: 2 }, net.components)

    expect(result).toEqual({ sent: 6, errors: [] })
    expect(net.sent.map(s => `${s.dst.address}:${s.dst.port}`)).toEqual([
      '198.51.100.1:40001', '198.51.100.2:40002',
      '198.51.100.1:40001', '198.51.100.2:40002',
      '198.51.100.1:40001', '198.51.100.2:40002'
    ])
    for (const s of net.sent) {
      expect(s.srcPort).toBe(LOCAL_PORT)
      expect(s.ttl).toBe(2)
      expect(Buffer.from(s.payload).equals(PUNCH_PAYLOAD)).toBe(true)
    }
    expect(net.sent[2]!.at - net.sent[0]!.at).toBeGreaterThanOrEqual(35)
    expect(net.open()).toBe(0)
  })

  it('leaves the TTL to the default when none is asked', async () => {
    const net = fakeSender()
    await punch({ localPort: LOCAL_PORT, targets: [T1], count: 1 }, net.components)
    expect(net.sent[0]!.ttl).toBeUndefined()
  })

  it('never throws: send failures are collected and the other targets still get punched', async () => {
    const net = fakeSender((init) => init.dst.address === T1.address ? new RawUdpError('raw UDP send failed: Network is unreachable') : undefined)
    const result = await punch({ localPort: LOCAL_PORT, targets: [T1, T2], count: 2, intervalMs: 1 }, net.components)
    expect(result.sent).toBe(2)
    expect(result.errors).toEqual([
      'punch 198.51.100.1:40001: raw UDP send failed: Network is unreachable',
      'punch 198.51.100.1:40001: raw UDP send failed: Network is unreachable'
    ])
  })

  it('never throws without raw sockets: one error, nothing sent', async () => {
    const result = await punch({ localPort: LOCAL_PORT, targets: [T1], count: 3 }, {
      openSender: () => { throw new RawSocketUnavailable('raw sockets need CAP_NET_RAW (run as root): Operation not permitted') }
    })
    expect(result).toEqual({ sent: 0, errors: ['raw sockets need CAP_NET_RAW (run as root): Operation not permitted'] })
  })

  it('stops between rounds when aborted', async () => {
    const net = fakeSender()
    const controller = new AbortController()
    setTimeout(() => controller.abort(), 30)
    const started = Date.now()
    const result = await punch({ localPort: LOCAL_PORT, targets: [T1], count: 100, intervalMs: 1_000, signal: controller.signal }, net.components)
    expect(Date.now() - started).toBeLessThan(500)
    expect(result.sent).toBe(1)
    expect(net.open()).toBe(0)
  })

  it('does nothing for no targets or a zero count', async () => {
    const net = fakeSender()
    expect(await punch({ localPort: LOCAL_PORT, targets: [], count: 3 }, net.components)).toEqual({ sent: 0, errors: [] })
    expect(await punch({ localPort: LOCAL_PORT, targets: [T1], count: 0 }, net.components)).toEqual({ sent: 0, errors: [] })
    expect(net.sent).toEqual([])
  })
})
