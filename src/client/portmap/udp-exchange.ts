import { createSocket } from 'node:dgram'
import { messageOf, quote } from '../../shared/errors.js'
import { PortMapError } from './port-mapping.js'

export interface UdpExchangeInit<T> {
  host: string
  port: number
  request: Buffer
  /** Decode an answer; return undefined (or throw ParseError) for one that is not ours. */
  accept: (msg: Buffer) => T | undefined
  /** First retransmission after this; doubles each time (RFC 6886 §3.1 starts at 250 ms). */
  firstRetryMs: number
  /** Give up after this long. */
  timeoutMs: number
  signal?: AbortSignal
}

/**
 * Send a request to a gateway from an ephemeral port, retransmitting with doubling waits, and resolve with the first
 * answer from that address and port that `accept` takes; null on timeout or abort. Also returns our own address on
 * the path to the gateway (what PCP's client-address field and UPnP's NewInternalClient need).
 */
export async function udpExchange<T> (init: UdpExchangeInit<T>): Promise<{ answer: T | null, localAddress: string, refused: boolean }> {
  const socket = createSocket('udp4')
  let localAddress = ''
  let refused = false
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject)
      socket.connect(init.port, init.host, () => { socket.off('error', reject); resolve() })
    })
    localAddress = socket.address().address
    const answer = await new Promise<T | null>((resolve) => {
      let wait = init.firstRetryMs
      let retry: NodeJS.Timeout | undefined
      const finish = (value: T | null): void => {
        clearTimeout(retry); clearTimeout(deadline)
        init.signal?.removeEventListener('abort', onAbort)
        resolve(value)
      }
      const onAbort = (): void => finish(null)
      const send = (): void => {
        socket.send(init.request, () => {})
        retry = setTimeout(send, wait)
        wait *= 2
      }
      const deadline = setTimeout(() => finish(null), init.timeoutMs)
      // ICMP port unreachable (nothing listens on the gateway): no answer will come, so stop waiting now.
      socket.on('error', (err: NodeJS.ErrnoException) => { if (err.code === 'ECONNREFUSED') { refused = true; finish(null) } })
      // A connected socket only receives from the gateway's address and port.
      socket.on('message', (msg) => {
        let value: T | undefined
        // Anything that does not decode is not our answer (the codecs throw only ParseError).
        try { value = init.accept(msg) } catch { value = undefined }
        if (value !== undefined) finish(value)
      })
      if (init.signal?.aborted === true) { finish(null); return }
      init.signal?.addEventListener('abort', onAbort)
      send()
    })
    return { answer, localAddress, refused }
  } catch {
    return { answer: null, localAddress, refused }
  } finally {
    socket.close()
  }
}

/** Our address on the path to `host` (a connected UDP socket picks it; nothing is sent). */
export async function localAddressTowards (host: string, port: number): Promise<string> {
  const s = createSocket('udp4')
  try {
    await new Promise<void>((resolve, reject) => { s.once('error', reject); s.connect(port, host, () => resolve()) })
    return s.address().address
  } catch (err) {
    throw new PortMapError(`no route to the gateway ${quote(host)}: ${messageOf(err)}`)
  } finally {
    s.close()
  }
}
