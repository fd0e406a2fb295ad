/**
 * PCP (RFC 6887) codec for the MAP opcode: the request a client sends and the answer the server gives.
 * Pure functions over buffers; decoding throws only {@link ParseError}.
 */
import ipaddr from 'ipaddr.js'
import { ParseError, quote } from '../../shared/errors.js'

/** PCP servers listen on the NAT-PMP port (RFC 6887 §19.1). */
export const PCP_PORT = 5351
export const PCP_VERSION = 2

export const PcpOpcode = { ANNOUNCE: 0, MAP: 1, PEER: 2 } as const

/** Result codes (RFC 6887 §7.4). */
export const PcpResult = {
  SUCCESS: 0,
  UNSUPP_VERSION: 1,
  NOT_AUTHORIZED: 2,
  MALFORMED_REQUEST: 3,
  UNSUPP_OPCODE: 4,
  UNSUPP_OPTION: 5,
  MALFORMED_OPTION: 6,
  NETWORK_FAILURE: 7,
  NO_RESOURCES: 8,
  UNSUPP_PROTOCOL: 9,
  USER_EX_QUOTA: 10,
  CANNOT_PROVIDE_EXTERNAL: 11,
  ADDRESS_MISMATCH: 12,
  EXCESSIVE_REMOTE_PEERS: 13
} as const

const RESULT_NAMES = Object.fromEntries(Object.entries(PcpResult).map(([name, code]) => [code, name])) as Record<number, string>

export function pcpResultName (code: number): string {
  return RESULT_NAMES[code] ?? `result code ${code}`
}

/** IANA protocol numbers used in MAP. */
export const IPPROTO = { tcp: 6, udp: 17 } as const

export const PCP_HEADER_LENGTH = 24
export const PCP_MAP_LENGTH = 36
export const PCP_NONCE_LENGTH = 12
/** Largest PCP message (RFC 6887 §7). */
export const PCP_MAX_MESSAGE = 1100
const RESPONSE_BIT = 0x80

export interface PcpMapRequest {
  /** 12 random bytes; the same nonce renews or deletes the mapping. */
  nonce: Uint8Array
  protocol: 'udp' | 'tcp'
  internalPort: number
  /** 0: any. */
  suggestedExternalPort: number
  /** Suggested external address; undefined: any IPv4 address. */
  suggestedExternalAddress?: string
  /** Seconds; 0 deletes the mapping. */
  lifetimeS: number
  /** The client's own address as the server sees it (the source address of the request). */
  clientAddress: string
}

/** 16-byte PCP address field: IPv6, or IPv4-mapped IPv6 for IPv4 (RFC 6887 §5). */
function addressField (text: string): Buffer {
  const ip = ipaddr.parse(text)
  const v6 = ip.kind() === 'ipv4' ? (ip as ipaddr.IPv4).toIPv4MappedAddress() : ip as ipaddr.IPv6
  return Buffer.from(v6.toByteArray())
}

function addressText (field: Buffer): string {
  const v6 = ipaddr.fromByteArray([...field]) as ipaddr.IPv6
  return v6.isIPv4MappedAddress() ? v6.toIPv4Address().toString() : v6.toString()
}

export function encodePcpMapRequest (req: PcpMapRequest): Buffer {
  if (req.nonce.length !== PCP_NONCE_LENGTH) throw new ParseError(`PCP nonce: ${req.nonce.length} bytes, expected ${PCP_NONCE_LENGTH}`)
  const buf = Buffer.alloc(PCP_HEADER_LENGTH + PCP_MAP_LENGTH)
  buf.writeUInt8(PCP_VERSION, 0)
  buf.writeUInt8(PcpOpcode.MAP, 1)
  buf.writeUInt32BE(req.lifetimeS, 4)
  addressField(req.clientAddress).copy(buf, 8)
  const m = PCP_HEADER_LENGTH
  Buffer.from(req.nonce).copy(buf, m)
  buf.writeUInt8(IPPROTO[req.protocol], m + 12)
  buf.writeUInt16BE(req.internalPort, m + 16)
  buf.writeUInt16BE(req.suggestedExternalPort, m + 18)
  addressField(req.suggestedExternalAddress ?? '0.0.0.0').copy(buf, m + 20)
  return buf
}

export interface PcpMapResponse {
  kind: 'map'
  resultCode: number
  /** Granted lifetime in seconds (on an error: how long the error is likely to last). */
  lifetimeS: number
  /** The server's epoch: a drop or a jump means it lost its mappings. */
  epochS: number
  nonce: Buffer
  protocol: number
  internalPort: number
  externalPort: number
  externalAddress: string
}

/** An answer without a usable MAP body: an error for another opcode, or a short error (UNSUPP_VERSION). */
export interface PcpOtherResponse {
  kind: 'other'
  opcode: number
  resultCode: number
  lifetimeS: number
  epochS: number
}

/**
 * A NAT-PMP server's answer to a PCP request (version 0 in the first byte): the gateway speaks NAT-PMP only
 * (RFC 6887 §9).
 */
export interface PcpNatPmpAnswer {
  kind: 'nat-pmp'
}

export type PcpResponse = PcpMapResponse | PcpOtherResponse | PcpNatPmpAnswer

/** Decode one datagram from a PCP server. Throws ParseError for anything that is not a PCP answer. */
export function decodePcpResponse (buf: Uint8Array): PcpResponse {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength)
  if (b.length < 2) throw new ParseError(`PCP answer: ${b.length} bytes, expected at least ${PCP_HEADER_LENGTH}`)
  if (b[0] === 0) {
    // NAT-PMP: its answers have the response bit in the opcode byte too.
    if ((b.readUInt8(1) & RESPONSE_BIT) === 0) throw new ParseError('PCP answer: a NAT-PMP request, not an answer')
    return { kind: 'nat-pmp' }
  }
  if (b[0] !== PCP_VERSION) throw new ParseError(`PCP answer: version ${quote(b[0])}, expected ${PCP_VERSION}`)
  if (b.length < PCP_HEADER_LENGTH) throw new ParseError(`PCP answer: ${b.length} bytes, expected at least ${PCP_HEADER_LENGTH}`)
  if (b.length > PCP_MAX_MESSAGE) throw new ParseError(`PCP answer: ${b.length} bytes, more than ${PCP_MAX_MESSAGE}`)
  if (b.length % 4 !== 0) throw new ParseError(`PCP answer: ${b.length} bytes, not a multiple of 4`)
  const op = b.readUInt8(1)
  if ((op & RESPONSE_BIT) === 0) throw new ParseError(`PCP answer: opcode ${op} is a request`)
  const opcode = op & ~RESPONSE_BIT
  const resultCode = b.readUInt8(3)
  const lifetimeS = b.readUInt32BE(4)
  const epochS = b.readUInt32BE(8)
  if (opcode !== PcpOpcode.MAP || b.length < PCP_HEADER_LENGTH + PCP_MAP_LENGTH) {
    if (opcode === PcpOpcode.MAP && resultCode === PcpResult.SUCCESS) {
      throw new ParseError(`PCP MAP answer: ${b.length} bytes, too short for a success`)
    }
    return { kind: 'other', opcode, resultCode, lifetimeS, epochS }
  }
  const m = PCP_HEADER_LENGTH
  return {
    kind: 'map',
    resultCode,
    lifetimeS,
    epochS,
    nonce: Buffer.from(b.subarray(m, m + PCP_NONCE_LENGTH)),
    protocol: b.readUInt8(m + 12),
    internalPort: b.readUInt16BE(m + 16),
    externalPort: b.readUInt16BE(m + 18),
    externalAddress: addressText(b.subarray(m + 20, m + 36))
  }
}
