/**
 * Raw IPv4 UDP: send datagrams from a port this process does not own (WireGuard's listenPort), and overhear
 * the datagrams addressed to it. The only file that imports `raw-socket`.
 *
 * - Sending uses an IPPROTO_RAW socket (IP_HDRINCL implied): we build the whole IPv4 + UDP packet with
 *   {@link encodeIpv4Udp}, so the TTL is ours to choose per packet. The source address is picked by
 *   route lookup unless given.
 * - Receiving uses an IPPROTO_UDP raw socket: Linux hands it a copy of every UDP datagram the host (network
 *   namespace) receives, while the owner of the port (wireguard-go, or the kernel module) still gets its copy.
 *   That is costly, so a {@link RawUdpReceiver} is meant to be open only while an exchange is in flight, and it
 *   drops datagrams for other ports after reading two bytes, before any decoding.
 *
 * IPv4 only: an IPv6 raw socket never sees the IPv6 header, and forging an IPv6 UDP source needs a different
 * design (IPV6_HDRINCL does not exist on Linux). Needs CAP_NET_RAW; without it every entry point throws
 * {@link RawSocketUnavailable}, so callers can turn raw features off and keep working.
 */
import { createSocket as createDgramSocket } from 'node:dgram'
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname } from 'node:path'
import { isIPv4 } from 'node:net'
import { EXIT_NOPERM, WgnatError, messageOf, quote } from './errors.js'
import { DEFAULT_TTL, IpProtocol, decodeIpv4Udp, encodeIpv4Udp, type Ipv4UdpPacket } from './udp-packet.js'

/** IP protocol number of a send-only raw socket that takes whole IP packets (IP_HDRINCL implied). */
const IPPROTO_RAW = 255
/** Linux SOL_SOCKET and SO_MARK, which raw-socket does not name but passes through to setsockopt(). */
const SOL_SOCKET = 1
const SO_MARK = 36
/** Linux SO_RCVBUF. */
const SO_RCVBUF = 8
/** AF_INET in raw-socket's own numbering (1 = IPv4, 2 = IPv6). */
const RAW_SOCKET_IPV4 = 1

/**
 * Kernel receive queue asked for on a receive socket (capped by net.core.rmem_max). A receive socket sees every
 * UDP datagram of the host; a deep queue keeps a STUN reply from being dropped behind a burst of other traffic.
 */
export const RAW_RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024
/** User-space buffer for one received packet: the largest IPv4 datagram, so nothing arrives truncated. */
const RAW_RECEIVE_PACKET_BYTES = 0xffff

/** Raw sockets cannot be opened here (no CAP_NET_RAW, or the native module did not load). */
export class RawSocketUnavailable extends WgnatError {
  constructor (message: string) { super(message, EXIT_NOPERM) }
}

/** A raw send failed (no route, unreachable network, bad arguments). */
export class RawUdpError extends WgnatError {}

export interface RawUdpDestination {
  /** IPv4 address. */
  address: string
  port: number
}

export interface RawUdpSendInit {
  /** Source port to forge: usually WireGuard's listenPort. */
  srcPort: number
  dst: RawUdpDestination
  payload: Uint8Array
  /**
   * IPv4 TTL. A low value opens our own NAT mapping without reaching the far side.
   * @default 64
   */
  ttl?: number
  /** Source address. By default, the one the kernel would pick for a UDP socket connected to `dst`. */
  srcIp?: string
}

export interface RawUdpSenderInit {
  /**
   * SO_MARK for sent packets (needs CAP_NET_ADMIN). Set it to WireGuard's fwmark when policy routing would
   * otherwise send unmarked packets into the tunnel (wg-quick with a default route). The source-address lookup
   * does not honour the mark: pass `srcIp` in that setup.
   */
  fwmark?: number
}

/** One raw send socket, reusable for many packets; remembers source addresses by destination. */
export interface RawUdpSender {
  /** Send one datagram. Rejects with RawUdpError (or RawSocketUnavailable if the socket failed). */
  send: (init: RawUdpSendInit, opts?: { signal?: AbortSignal }) => Promise<void>
  close: () => void
}

export interface RawUdpReceiverInit {
  /** Only datagrams to this port are decoded and delivered; the rest are counted and dropped on two bytes. */
  dstPort: number
  /**
   * Called for each valid datagram to `dstPort` (its payload is a copy, safe to keep).
   * A throw is caught and counted, never propagated.
   */
  onPacket: (packet: Ipv4UdpPacket) => void
  /** Closes the receiver on abort. */
  signal?: AbortSignal
  /**
   * User-space buffer for one received packet, allocated (zeroed) when the socket opens. Longer datagrams arrive
   * truncated: to `dstPort` they are counted as malformed. @default 65535, the largest IPv4 datagram
   */
  packetBytes?: number
}

/** Counters of one receiver: datagrams are cheap to count and expensive to log. */
export interface RawUdpReceiverStats {
  /** Every datagram the raw socket handed us. */
  seen: number
  /** Dropped unread: addressed to another port. */
  otherPort: number
  /** Addressed to `dstPort` but not a valid IPv4/UDP packet. */
  malformed: number
  /** Passed to `onPacket`. */
  delivered: number
  /** `onPacket` threw. */
  handlerErrors: number
  /** Errors reported by the socket itself (spurious wake-ups, a closed socket). */
  socketErrors: number
}

/** A raw UDP receive socket; close it as soon as the exchange is over. */
export interface RawUdpReceiver {
  readonly stats: RawUdpReceiverStats
  readonly closed: boolean
  close: () => void
}

/** The parts of raw-socket's untyped CommonJS API used here. */
interface RawSocketModule {
  createSocket: (options: { protocol: number, addressFamily: number, bufferSize?: number }) => RawSocket
  SocketLevel: { SOL_SOCKET: number, IPPROTO_IP: number }
  SocketOption: Record<string, number>
}
interface RawSocket {
  send: (buffer: Buffer, offset: number, length: number, address: string, afterCallback: (error: Error | null, bytes: number) => void) => RawSocket
  setOption: (level: number, option: number, value: number) => void
  close: () => RawSocket
  on: ((event: 'message', listener: (buffer: Buffer, source: string) => void) => RawSocket) &
    ((event: 'error', listener: (error: Error) => void) => RawSocket) &
    ((event: 'close', listener: () => void) => RawSocket)
}

let rawSocketModule: RawSocketModule | undefined

/**
 * Every open raw socket. raw-socket holds its sockets weakly (the native poll handle does not keep the JS object
 * alive), so a socket whose only references are pending callbacks can be garbage-collected mid-send: it closes,
 * the callback never runs and the event loop may even exit. Holding them here until close() prevents that.
 */
const openSockets = new Set<RawSocket>()

/**
 * The command that builds the raw-socket addon where it was installed without its build script (npm 11 runs it only
 * when allowed: `npm install -g --allow-scripts=raw-socket,netlink`; `--ignore-scripts`; no compiler at the time).
 * `dir` is the directory holding the package's node_modules (wgnat's own package root when installed globally).
 */
export function rawSocketFix (dir: string): string {
  return `cd ${dir.includes(' ') ? `'${dir}'` : dir} && npm rebuild raw-socket (needs python3, make and g++)`
}

/** Where the raw-socket module would be resolved from: the package root holding this file's node_modules. */
function packageRoot (): string {
  try {
    const require = createRequire(import.meta.url)
    const found = require.resolve.paths('raw-socket')?.find((d) => existsSync(d)) ?? ''
    return found === '' ? '.' : dirname(found)
  } catch {
    return '.'
  }
}

/** Load the native module on first use, so importing this file never fails on a host without it. */
function loadRawSocket (): RawSocketModule {
  if (rawSocketModule !== undefined) return rawSocketModule
  try {
    const require = createRequire(import.meta.url)
    rawSocketModule = require('raw-socket') as RawSocketModule
    return rawSocketModule
  } catch (err) {
    throw new RawSocketUnavailable(`raw sockets unavailable: the raw-socket native addon did not load (${messageOf(err)}); fix: ${rawSocketFix(packageRoot())}`)
  }
}

/**
 * Why raw sockets cannot work here, or null when the native addon loads. Checks only the addon, not CAP_NET_RAW
 * (that shows at the first socket); cheap, and meant for a one-line warning at start.
 */
export function rawSocketProblem (): string | null {
  try {
    loadRawSocket()
    return null
  } catch (err) {
    return messageOf(err)
  }
}

function openRawSocket (protocol: number, what: string, bufferSize?: number): RawSocket {
  const raw = loadRawSocket()
  try {
    const socket = raw.createSocket({ protocol, addressFamily: RAW_SOCKET_IPV4, ...(bufferSize === undefined ? {} : { bufferSize }) })
    openSockets.add(socket)
    socket.on('close', () => openSockets.delete(socket))
    return socket
  } catch (err) {
    const why = messageOf(err)
    if (/not permitted|permission denied/i.test(why)) {
      throw new RawSocketUnavailable(`raw sockets need CAP_NET_RAW (fix: run as root, or with AmbientCapabilities=CAP_NET_RAW as wgnat-client@.service does): opening a ${what} socket: ${why}`)
    }
    throw new RawSocketUnavailable(`raw sockets unavailable: opening a ${what} socket: ${why}`)
  }
}

/**
 * Open a raw send socket. Throws RawSocketUnavailable without CAP_NET_RAW.
 * The socket receives nothing (IPPROTO_RAW is send-only), so keeping it open costs no CPU.
 */
export function openUdpSender (init: RawUdpSenderInit = {}): RawUdpSender {
  const socket = openRawSocket(IPPROTO_RAW, 'raw IPv4 send')
  let closed = false
  let failure: Error | undefined
  const pending = new Set<(err: Error) => void>() // rejects of sends queued in raw-socket
  const failPending = (): void => {
    const why = failure === undefined ? 'sender closed' : `socket failed: ${failure.message}`
    for (const reject of pending) reject(new RawUdpError(`raw UDP send: not sent: ${why}`))
    pending.clear()
  }
  socket.on('error', (err) => { failure = err })
  socket.on('close', () => { closed = true; failPending() })
  if (init.fwmark !== undefined) {
    try {
      socket.setOption(SOL_SOCKET, SO_MARK, init.fwmark)
    } catch (err) {
      socket.close()
      throw new RawSocketUnavailable(`raw UDP sender: setting fwmark ${quote(init.fwmark)} needs CAP_NET_ADMIN: ${messageOf(err)}`)
    }
  }
  const sources = new Map<string, string>() // destination address -> source address the kernel picks

  const send = async (sendInit: RawUdpSendInit, opts: { signal?: AbortSignal } = {}): Promise<void> => {
    const { dst } = sendInit
    const target = `${String(dst.address)}:${String(dst.port)}`
    if (typeof dst.address !== 'string' || !isIPv4(dst.address)) {
      throw new RawUdpError(`raw UDP send: only IPv4 destinations are supported: ${quote(dst.address)}`)
    }
    opts.signal?.throwIfAborted()
    let srcIp = sendInit.srcIp ?? sources.get(dst.address)
    if (srcIp === undefined) {
      srcIp = await routeSourceAddress(dst)
      sources.set(dst.address, srcIp)
    }
    let packet: Buffer
    try {
      packet = encodeIpv4Udp({
        srcIp,
        dstIp: dst.address,
        srcPort: sendInit.srcPort,
        dstPort: dst.port,
        ttl: sendInit.ttl ?? DEFAULT_TTL,
        payload: sendInit.payload
      })
    } catch (err) {
      throw new RawUdpError(`raw UDP send to ${quote(target)}: ${messageOf(err)}`)
    }
    opts.signal?.throwIfAborted()
    if (failure !== undefined) {
      throw new RawSocketUnavailable(`raw UDP send to ${quote(target)}: the raw socket failed: ${failure.message}`)
    }
    if (closed) throw new RawUdpError(`raw UDP send to ${quote(target)}: the sender is closed`)
    await new Promise<void>((resolve, reject) => {
      pending.add(reject)
      socket.send(packet, 0, packet.length, dst.address, (error) => {
        pending.delete(reject)
        if (error === null || error === undefined) resolve()
        else reject(new RawUdpError(`raw UDP send to ${quote(target)} failed: ${messageOf(error)}`))
      })
    })
  }

  return {
    send,
    /** Close the socket; sends still queued reject with RawUdpError. */
    close: () => {
      if (!closed) socket.close()
      closed = true
      openSockets.delete(socket)
      failPending()
    }
  }
}

/**
 * The source address the kernel picks for `dst`, found by connecting a UDP socket (which sends nothing).
 * Throws RawUdpError when there is no route.
 */
export async function routeSourceAddress (dst: RawUdpDestination): Promise<string> {
  const socket = createDgramSocket('udp4')
  try {
    return await new Promise<string>((resolve, reject) => {
      socket.once('error', reject)
      socket.connect(dst.port, dst.address, () => resolve(socket.address().address))
    })
  } catch (err) {
    throw new RawUdpError(`raw UDP send: no route to ${quote(`${dst.address}:${dst.port}`)}: ${messageOf(err)}`)
  } finally {
    try { socket.close() } catch { /* never bound */ }
  }
}

/**
 * Open a raw receive socket that delivers the datagrams addressed to `dstPort`, from any process's port.
 * Never throws after opening: stray, truncated or malformed datagrams are counted and ignored.
 * Throws RawSocketUnavailable without CAP_NET_RAW.
 */
export function openUdpReceiver (init: RawUdpReceiverInit): RawUdpReceiver {
  const { dstPort, onPacket, signal } = init
  if (!Number.isInteger(dstPort) || dstPort < 1 || dstPort > 0xffff) {
    throw new RangeError(`raw UDP receiver: port must be an integer 1-65535: ${quote(dstPort)}`)
  }
  const stats: RawUdpReceiverStats = { seen: 0, otherPort: 0, malformed: 0, delivered: 0, handlerErrors: 0, socketErrors: 0 }
  let closed = false
  signal?.throwIfAborted()
  const socket = openRawSocket(IpProtocol.UDP, 'raw UDP receive', init.packetBytes ?? RAW_RECEIVE_PACKET_BYTES)
  try {
    socket.setOption(SOL_SOCKET, SO_RCVBUF, RAW_RECEIVE_BUFFER_BYTES)
  } catch {
    // The default queue still works, it only drops sooner under load.
  }

  const close = (): void => {
    if (closed) return
    closed = true
    signal?.removeEventListener('abort', close)
    try { socket.close() } catch { /* already closed by the library */ }
    openSockets.delete(socket)
  }

  socket.on('message', (buffer) => {
    stats.seen++
    if (closed) return
    // Cheap early filter on the raw bytes: IHL, then the UDP destination port. No allocation, no decoding.
    const ihl = ((buffer[0] ?? 0) & 0x0f) * 4
    if (buffer.length < ihl + 4 || ((buffer[ihl + 2]! << 8) | buffer[ihl + 3]!) !== dstPort) {
      stats.otherPort++
      return
    }
    let packet: Ipv4UdpPacket
    try {
      packet = decodeIpv4Udp(buffer)
    } catch {
      stats.malformed++
      return
    }
    // raw-socket reuses its receive buffer: copy what we hand out.
    packet = { ...packet, payload: Buffer.from(packet.payload) }
    stats.delivered++
    try {
      onPacket(packet)
    } catch {
      stats.handlerErrors++
    }
  })
  // raw-socket reports a failed recv (e.g. EAGAIN after a spurious wake-up) as 'error'; some of these close it.
  socket.on('error', () => { stats.socketErrors++ })
  socket.on('close', () => { closed = true })
  signal?.addEventListener('abort', close)

  return {
    stats,
    get closed () { return closed },
    close
  }
}
