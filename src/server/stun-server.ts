/**
 * A minimal STUN server (RFC 8489 Binding only): tells each client the address and port its request came from.
 * Stateless apart from a per-source rate limit; runs on ordinary UDP sockets that it owns (no raw sockets).
 *
 * Anything that is not a valid Binding request is ignored without an answer: other methods, indications,
 * responses, junk. Requests with unknown comprehension-required attributes are answered anyway (a full server
 * would send 420): this server never uses them, and answering costs less than keeping the error path.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram'
import { WgnatError, messageOf, quote } from '../shared/errors.js'
import { formatEndpoint, normaliseIp, type Endpoint } from '../shared/ip.js'
import type { Logger } from '../shared/log.js'
import { StunClass, StunMethod, decodeStunMessage, encodeBindingSuccess, isStunMessage } from '../shared/stun.js'
import { SourceRateLimiter } from '../shared/rate-limiter.js'

/** The IANA port for STUN over UDP. */
export const STUN_PORT = 3478
/** Sustained Binding requests per second answered for one source address. */
export const STUN_RATE_PER_SECOND = 20
/** Requests one source may send in a burst before the sustained rate applies. */
export const STUN_RATE_BURST = 40

export interface StunServerInit {
  /** @default STUN_PORT. 0 picks an ephemeral port (per socket). */
  port?: number
  /** Addresses to bind. Default: `0.0.0.0`, and `::` (IPv6 only) where the host has IPv6. */
  addresses?: string[]
  /** @default STUN_RATE_PER_SECOND */
  ratePerSecond?: number
  /** @default STUN_RATE_BURST */
  burst?: number
  /** SOFTWARE attribute of responses. Omitted when undefined. */
  software?: string
}

export interface StunServerComponents {
  logger: Logger
  /** Clock for the rate limiter, in ms. */
  now?: () => number
}

export interface StunServerStats {
  answered: number
  /** Not a Binding request, or not valid STUN. */
  ignored: number
  rateLimited: number
  /** Answers the socket failed to send. */
  sendErrors: number
}

/** The server could not start (port taken, address not local). */
export class StunServerError extends WgnatError {}


export interface StunServer {
  /** Bind every address. Rejects with StunServerError (after closing what was bound) if one fails. */
  start: () => Promise<void>
  stop: () => Promise<void>
  /** Where the server listens, once started (ports resolved when 0 was asked). */
  endpoints: () => Endpoint[]
  stats: () => StunServerStats
}

export function createStunServer (init: StunServerInit, components: StunServerComponents): StunServer {
  const { logger } = components
  const port = init.port ?? STUN_PORT
  const software = init.software
  const limiter = new SourceRateLimiter(init.ratePerSecond ?? STUN_RATE_PER_SECOND, init.burst ?? STUN_RATE_BURST, components.now)
  const stats: StunServerStats = { answered: 0, ignored: 0, rateLimited: 0, sendErrors: 0 }
  let sockets: Socket[] = []

  const onMessage = (socket: Socket, msg: Buffer, rinfo: RemoteInfo): void => {
    if (!isStunMessage(msg)) { stats.ignored++; return }
    let source: string
    try {
      source = normaliseIp(rinfo.address)
    } catch {
      stats.ignored++
      return
    }
    if (!limiter.take(source)) {
      stats.rateLimited++
      logger.debug({ source }, 'stun: rate limited')
      return
    }
    let response: Buffer
    try {
      const request = decodeStunMessage(msg)
      if (request.class !== StunClass.REQUEST || request.method !== StunMethod.BINDING) { stats.ignored++; return }
      response = encodeBindingSuccess(request.transactionId, { address: source, port: rinfo.port }, {
        mappedAddress: true,
        ...(software === undefined ? {} : { software })
      })
    } catch {
      stats.ignored++
      return
    }
    socket.send(response, rinfo.port, rinfo.address, (err) => {
      if (err === null || err === undefined) { stats.answered++; return }
      stats.sendErrors++
      logger.debug({ to: formatEndpoint({ address: source, port: rinfo.port }), err: messageOf(err) }, 'stun: answer not sent')
    })
  }

  const bind = async (address: string): Promise<Socket> => {
    const socket = createSocket(address.includes(':') ? { type: 'udp6', ipv6Only: true } : { type: 'udp4' })
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject)
      socket.bind(port, address, () => { socket.off('error', reject); resolve() })
    }).catch((err: unknown) => {
      try { socket.close() } catch { /* never bound */ }
      throw err
    })
    // A socket error after bind (ICMP-triggered errors on some platforms) must not crash the daemon.
    socket.on('error', (err) => logger.debug({ address, err: messageOf(err) }, 'stun: socket error'))
    socket.on('message', (msg, rinfo) => onMessage(socket, msg, rinfo))
    return socket
  }

  const closeAll = async (): Promise<void> => {
    const closing = sockets
    sockets = []
    await Promise.all(closing.map(async (s) => await new Promise<void>((resolve) => {
      try { s.close(() => resolve()) } catch { resolve() }
    })))
  }

  return {
    start: async () => {
      if (sockets.length > 0) return
      const explicit = init.addresses !== undefined
      const addresses = init.addresses ?? ['0.0.0.0', '::']
      for (const address of addresses) {
        try {
          sockets.push(await bind(address))
        } catch (err) {
          // Without explicit addresses, a host with no IPv6 simply gets an IPv4-only server.
          if (!explicit && address === '::') {
            logger.debug({ err: messageOf(err) }, 'stun: no IPv6, listening on IPv4 only')
            continue
          }
          await closeAll()
          throw new StunServerError(`STUN server: cannot listen on ${quote(formatEndpoint({ address, port }))}: ${messageOf(err)}`)
        }
      }
      logger.info({ endpoints: sockets.map(s => formatEndpoint(s.address())) }, 'stun server listening')
    },
    stop: async () => {
      if (sockets.length === 0) return
      await closeAll()
      logger.info('stun server stopped')
    },
    endpoints: () => sockets.map(s => ({ address: s.address().address, port: s.address().port })),
    stats: () => ({ ...stats })
  }
}
