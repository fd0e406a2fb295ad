import { describe, expect, it, vi } from 'vitest'
import { KeptSender } from '../../src/client/nat/kept-sender.js'
import { RawUdpError, type RawUdpSendInit, type RawUdpSender } from '../../src/shared/raw-udp.js'

function fakeSenders () {
  const opened: Array<{ sent: RawUdpSendInit[], closed: boolean, fail: boolean }> = []
  const open = vi.fn((): RawUdpSender => {
    const s = { sent: [] as RawUdpSendInit[], closed: false, fail: false }
    opened.push(s)
    return {
      send: async (init) => {
        if (s.closed) throw new RawUdpError('raw UDP send: the sender is closed')
        if (s.fail) throw new RawUdpError('raw UDP send: no route')
        s.sent.push(init)
      },
      close: () => { s.closed = true }
    }
  })
  return { open, opened }
}

const packet: RawUdpSendInit = { srcPort: 51820, dst: { address: '198.18.0.1', port: 3478 }, payload: new Uint8Array([1]) }

describe('KeptSender', () => {
  it('keeps one socket across exchanges: a lent sender\'s close() does not close it', async () => {
    const f = fakeSenders()
    const kept = new KeptSender(f.open)
    for (let i = 0; i < 3; i++) {
      const s = kept.lend()
      await s.send(packet)
      s.close()
    }
    expect(f.open).toHaveBeenCalledTimes(1)
    expect(f.opened[0]).toMatchObject({ closed: false })
    expect(f.opened[0]?.sent).toHaveLength(3)
  })

  it('reset() closes the socket; the next exchange opens a fresh one (new source addresses after a network change)', async () => {
    const f = fakeSenders()
    const kept = new KeptSender(f.open)
    await kept.lend().send(packet)
    kept.reset()
    expect(f.opened[0]?.closed).toBe(true)
    await kept.lend().send(packet)
    expect(f.open).toHaveBeenCalledTimes(2)
    expect(f.opened[1]?.sent).toHaveLength(1)
  })

  it('a failed send drops the socket (the error still reaches the caller); the next exchange opens another', async () => {
    const f = fakeSenders()
    const kept = new KeptSender(f.open)
    const s = kept.lend()
    f.opened[0]!.fail = true
    await expect(s.send(packet)).rejects.toThrow(/no route/)
    expect(f.opened[0]?.closed).toBe(true)
    await kept.lend().send(packet)
    expect(f.open).toHaveBeenCalledTimes(2)
    expect(f.opened[1]?.sent).toHaveLength(1)
  })
})
