import { openUdpSender, type RawUdpSender } from '../../shared/raw-udp.js'

/**
 * One raw send socket kept from one NAT check to the next instead of one opened (and a UDP socket connected to find
 * the source address) every check. An IPPROTO_RAW socket receives nothing, so keeping it open costs no CPU. It
 * remembers the source address per destination: reset() it when the network changes, and it is dropped after any
 * failed send, so the next check opens a fresh one.
 */
export class KeptSender {
  private sender: RawUdpSender | undefined

  private readonly open: () => RawUdpSender

  constructor (open?: () => RawUdpSender) { this.open = open ?? (() => openUdpSender()) }

  /** A sender for one exchange (stun-probe's `openSender`): its close() keeps the socket for the next exchange. */
  readonly lend = (): RawUdpSender => {
    const sender = (this.sender ??= this.open())
    return {
      send: async (init, opts) => {
        try {
          await sender.send(init, opts)
        } catch (err) {
          if (this.sender === sender) this.reset()
          throw err
        }
      },
      close: () => {}
    }
  }

  /** Close the socket (network change, stop); the next lend() opens another. */
  reset (): void {
    this.sender?.close()
    this.sender = undefined
  }
}
