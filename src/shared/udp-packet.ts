/**
 * UDP and IPv4+UDP packet codec, for sending and receiving through a raw IPv4 socket.
 *
 * - {@link encodeUdp}: UDP header + payload, for a raw socket of protocol UDP where the kernel adds the IP header.
 * - {@link encodeIpv4Udp}: IPv4 header + UDP, for IP_HDRINCL sends where we choose the TTL (and source).
 * - {@link decodeIpv4Udp}: what a Linux raw IPPROTO_UDP socket receives (IP header included, already reassembled).
 *
 * Pure functions; encoders throw RangeError on bad arguments (a programming error), the decoder throws
 * only ParseError.
 */
import { isIPv4 } from 'node:net'
import { ParseError, quote } from './errors.js'

/** IP protocol numbers used here. */
export const IpProtocol = {
  UDP: 17
} as const
export type IpProtocol = typeof IpProtocol[keyof typeof IpProtocol]

/** Bytes in an IPv4 header without options (IHL 5). */
export const IPV4_HEADER_LENGTH = 20
/** Bytes in a UDP header. */
export const UDP_HEADER_LENGTH = 8
/** Largest IPv4 datagram (the total length field is 16 bits). */
export const IPV4_MAX_TOTAL_LENGTH = 0xffff
/** TTL used when the caller has no reason to pick another (Linux's default). */
export const DEFAULT_TTL = 64

/** IPv4 flags/fragment-offset field bits. */
const MORE_FRAGMENTS = 0x2000
const FRAGMENT_OFFSET_MASK = 0x1fff

export interface UdpInit {
  srcPort: number
  dstPort: number
  payload: Uint8Array
  /** With dstIp: compute the checksum over the IPv4 pseudo-header. Without both, the checksum is 0 (none). */
  srcIp?: string
  dstIp?: string
}

export interface Ipv4UdpInit {
  srcIp: string
  dstIp: string
  srcPort: number
  dstPort: number
  /** 1-255. A low TTL opens a NAT mapping without reaching (and upsetting) the far side. */
  ttl: number
  payload: Uint8Array
  /**
   * IPv4 identification field. With IP_HDRINCL Linux fills in a fresh one when this is 0.
   * @default 0
   */
  id?: number
}

export interface Ipv4UdpPacket {
  srcIp: string
  dstIp: string
  srcPort: number
  dstPort: number
  ttl: number
  /** UDP payload: a view into the decoded buffer, not a copy. */
  payload: Buffer
}

export interface DecodeIpv4UdpOptions {
  /**
   * Also verify the UDP checksum (when not 0). Off by default: with checksum offload, packets
   * sent by this host (over veth or lo) reach a raw socket with only a partial checksum.
   * @default false
   */
  verifyUdpChecksum?: boolean
}

/** UDP header + payload. The checksum covers the IPv4 pseudo-header when both addresses are given, else it is 0. */
export function encodeUdp (init: UdpInit): Buffer {
  const { srcPort, dstPort, payload, srcIp, dstIp } = init
  checkPort('source port', srcPort)
  checkPort('destination port', dstPort)
  if ((srcIp === undefined) !== (dstIp === undefined)) {
    throw new RangeError(`UDP checksum: needs both srcIp and dstIp, got only ${quote(srcIp ?? dstIp)}`)
  }
  const length = UDP_HEADER_LENGTH + payload.length
  if (length > IPV4_MAX_TOTAL_LENGTH - IPV4_HEADER_LENGTH) {
    throw new RangeError(`UDP packet: payload too large: ${payload.length} bytes`)
  }
  const udp = Buffer.alloc(length)
  udp.writeUInt16BE(srcPort, 0)
  udp.writeUInt16BE(dstPort, 2)
  udp.writeUInt16BE(length, 4)
  udp.set(payload, UDP_HEADER_LENGTH)
  if (srcIp !== undefined && dstIp !== undefined) {
    const checksum = udpChecksum(ipv4Bytes('source address', srcIp), ipv4Bytes('destination address', dstIp), udp)
    // 0 means "no checksum" in UDP, so a computed 0 is sent as its ones' complement twin 0xffff.
    udp.writeUInt16BE(checksum === 0 ? 0xffff : checksum, 6)
  }
  return udp
}

/** IPv4 header (no options, header checksum filled in) + UDP with checksum: ready for an IP_HDRINCL send. */
export function encodeIpv4Udp (init: Ipv4UdpInit): Buffer {
  const { srcIp, dstIp, ttl, id = 0 } = init
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > 255) {
    throw new RangeError(`IPv4 packet: TTL must be an integer 1-255: ${quote(ttl)}`)
  }
  if (!Number.isInteger(id) || id < 0 || id > 0xffff) {
    throw new RangeError(`IPv4 packet: id must be an integer 0-65535: ${quote(id)}`)
  }
  const src = ipv4Bytes('source address', srcIp)
  const dst = ipv4Bytes('destination address', dstIp)
  const udp = encodeUdp(init)
  const packet = Buffer.alloc(IPV4_HEADER_LENGTH + udp.length)
  packet[0] = 0x45 // version 4, IHL 5
  packet[1] = 0 // DSCP/ECN
  packet.writeUInt16BE(packet.length, 2)
  packet.writeUInt16BE(id, 4)
  packet.writeUInt16BE(0, 6) // flags and fragment offset: may fragment, first fragment
  packet[8] = ttl
  packet[9] = IpProtocol.UDP
  src.copy(packet, 12)
  dst.copy(packet, 16)
  packet.writeUInt16BE(internetChecksum(packet.subarray(0, IPV4_HEADER_LENGTH)), 10)
  udp.copy(packet, IPV4_HEADER_LENGTH)
  return packet
}

/**
 * Decode an IPv4 packet carrying one whole UDP datagram, as a Linux raw socket delivers it.
 * Validates version, IHL, total length, header checksum, fragmentation, protocol and UDP length.
 * Throws ParseError, and nothing else, for any input.
 */
export function decodeIpv4Udp (buf: Buffer, opts: DecodeIpv4UdpOptions = {}): Ipv4UdpPacket {
  if (!(buf instanceof Uint8Array)) throw new ParseError(`IPv4 packet: expected bytes, got ${typeof buf}`)
  const view = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength)
  if (view.length < IPV4_HEADER_LENGTH) {
    throw new ParseError(`IPv4 packet: too short: ${view.length} bytes, a header needs ${IPV4_HEADER_LENGTH}`)
  }
  const version = view[0]! >> 4
  if (version !== 4) {
    throw new ParseError(`IPv4 packet: version is ${version}, not 4`)
  }
  const headerLength = (view[0]! & 0x0f) * 4
  if (headerLength < IPV4_HEADER_LENGTH) {
    throw new ParseError(`IPv4 packet: header length ${headerLength} is under ${IPV4_HEADER_LENGTH}`)
  }
  const totalLength = view.readUInt16BE(2)
  if (totalLength < headerLength) {
    throw new ParseError(`IPv4 packet: total length ${totalLength} is shorter than the ${headerLength}-byte header`)
  }
  if (totalLength > view.length) {
    throw new ParseError(`IPv4 packet: truncated: total length ${totalLength} but only ${view.length} bytes`)
  }
  const headerChecksum = internetChecksum(view.subarray(0, headerLength))
  if (headerChecksum !== 0) {
    throw new ParseError(`IPv4 packet: bad header checksum ${hex16(view.readUInt16BE(10))}`)
  }
  const fragment = view.readUInt16BE(6)
  if ((fragment & (MORE_FRAGMENTS | FRAGMENT_OFFSET_MASK)) !== 0) {
    throw new ParseError(`IPv4 packet: is a fragment (flags/offset ${hex16(fragment)})`)
  }
  const protocol = view[9]!
  if (protocol !== IpProtocol.UDP) {
    throw new ParseError(`IPv4 packet: protocol is ${protocol}, not UDP (${IpProtocol.UDP})`)
  }

  const udp = view.subarray(headerLength, totalLength)
  if (udp.length < UDP_HEADER_LENGTH) {
    throw new ParseError(`UDP packet: too short: ${udp.length} bytes, a header needs ${UDP_HEADER_LENGTH}`)
  }
  const udpLength = udp.readUInt16BE(4)
  if (udpLength < UDP_HEADER_LENGTH || udpLength > udp.length) {
    throw new ParseError(`UDP packet: length field ${udpLength} does not fit the ${udp.length} bytes after the IP header`)
  }
  const src = view.subarray(12, 16)
  const dst = view.subarray(16, 20)
  const datagram = udp.subarray(0, udpLength)
  if (opts.verifyUdpChecksum === true && datagram.readUInt16BE(6) !== 0 && udpChecksum(src, dst, datagram) !== 0) {
    throw new ParseError(`UDP packet: bad checksum ${hex16(datagram.readUInt16BE(6))}`)
  }
  return {
    srcIp: src.join('.'),
    dstIp: dst.join('.'),
    srcPort: datagram.readUInt16BE(0),
    dstPort: datagram.readUInt16BE(2),
    ttl: view[8]!,
    payload: datagram.subarray(UDP_HEADER_LENGTH)
  }
}

/**
 * RFC 1071 Internet checksum: ones' complement of the ones' complement sum of 16-bit words.
 * Over data that already holds a correct checksum the result is 0.
 */
export function internetChecksum (...parts: Uint8Array[]): number {
  let sum = 0
  let odd: number | undefined // a byte left over from the previous part
  for (const part of parts) {
    let i = 0
    if (odd !== undefined && part.length > 0) {
      sum += (odd << 8) | part[0]!
      odd = undefined
      i = 1
    }
    for (; i + 1 < part.length; i += 2) sum += (part[i]! << 8) | part[i + 1]!
    if (i < part.length) odd = part[i]!
    sum = fold(sum)
  }
  if (odd !== undefined) sum += odd << 8
  sum = fold(fold(sum))
  return ~sum & 0xffff
}

/** Add the carries back in (arithmetic, not bit operators: the sum of a big part can pass 2^32). */
function fold (sum: number): number {
  return (sum % 0x10000) + Math.floor(sum / 0x10000)
}

/** Checksum of a UDP datagram (header + payload) under the IPv4 pseudo-header. */
function udpChecksum (src: Uint8Array, dst: Uint8Array, udp: Uint8Array): number {
  const pseudo = Buffer.alloc(12)
  pseudo.set(src, 0)
  pseudo.set(dst, 4)
  pseudo[9] = IpProtocol.UDP
  pseudo.writeUInt16BE(udp.length, 10)
  return internetChecksum(pseudo, udp)
}

function ipv4Bytes (what: string, address: string): Buffer {
  if (typeof address !== 'string' || !isIPv4(address)) {
    throw new RangeError(`IPv4 packet: ${what} is not an IPv4 address: ${quote(address)}`)
  }
  return Buffer.from(address.split('.').map(Number))
}

function checkPort (what: string, port: number): void {
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) {
    throw new RangeError(`UDP packet: ${what} must be an integer 0-65535: ${quote(port)}`)
  }
}

function hex16 (n: number): string { return '0x' + n.toString(16).padStart(4, '0') }
