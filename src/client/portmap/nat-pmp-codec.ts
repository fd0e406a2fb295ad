/**
 * NAT-PMP (RFC 6886) codec: the mapping request and its answer, and the external-address request.
 * Pure functions over buffers; decoding throws only {@link ParseError}.
 */
import { ParseError, quote } from '../../shared/errors.js'

/** UDP port of a NAT-PMP (and PCP) server on the default gateway (RFC 6886 §3.1). */
export const NAT_PMP_PORT = 5351
export const NAT_PMP_VERSION = 0

export const NatPmpOpcode = {
  EXTERNAL_ADDRESS: 0,
  MAP_UDP: 1,
  MAP_TCP: 2
} as const

/** Result codes (RFC 6886 §3.5). */
export const NatPmpResult = {
  SUCCESS: 0,
  UNSUPPORTED_VERSION: 1,
  NOT_AUTHORIZED: 2,
  NETWORK_FAILURE: 3,
  OUT_OF_RESOURCES: 4,
  UNSUPPORTED_OPCODE: 5
} as const

const RESULT_NAMES: Record<number, string> = {
  0: 'success', 1: 'unsupported version', 2: 'not authorized or refused', 3: 'network failure', 4: 'out of resources', 5: 'unsupported opcode'
}

export function natPmpResultName (code: number): string {
  return RESULT_NAMES[code] ?? `result code ${code}`
}

/** Bytes of a mapping request and of its answer; of an external-address answer. */
const MAP_REQUEST_LENGTH = 12
const MAP_RESPONSE_LENGTH = 16
const EXTERNAL_RESPONSE_LENGTH = 12
/** Answers carry the request's opcode plus this. */
const RESPONSE_BIT = 128

export interface NatPmpMapRequest {
  protocol: 'udp' | 'tcp'
  internalPort: number
  /** 0: let the gateway choose. */
  suggestedExternalPort: number
  /** Seconds; 0 deletes the mapping (then the suggested port must be 0 too, RFC 6886 §3.4). */
  lifetimeS: number
}

export function encodeNatPmpMapRequest (req: NatPmpMapRequest): Buffer {
  const buf = Buffer.alloc(MAP_REQUEST_LENGTH)
  buf.writeUInt8(NAT_PMP_VERSION, 0)
  buf.writeUInt8(req.protocol === 'udp' ? NatPmpOpcode.MAP_UDP : NatPmpOpcode.MAP_TCP, 1)
  buf.writeUInt16BE(req.internalPort, 4)
  buf.writeUInt16BE(req.lifetimeS === 0 ? 0 : req.suggestedExternalPort, 6)
  buf.writeUInt32BE(req.lifetimeS, 8)
  return buf
}

export function encodeNatPmpExternalAddressRequest (): Buffer {
  return Buffer.from([NAT_PMP_VERSION, NatPmpOpcode.EXTERNAL_ADDRESS])
}

export interface NatPmpMapResponse {
  kind: 'map'
  protocol: 'udp' | 'tcp'
  resultCode: number
  /** Seconds since the gateway's port-mapping table was initialised (a drop means it lost its mappings). */
  epochS: number
  internalPort: number
  externalPort: number
  lifetimeS: number
}

export interface NatPmpExternalAddressResponse {
  kind: 'external'
  resultCode: number
  epochS: number
  /** Dotted quad. */
  externalAddress: string
}

/** An answer that only says "error" (too short for its opcode), as servers send for a version they do not speak. */
export interface NatPmpShortError {
  kind: 'error'
  opcode: number
  resultCode: number
}

export type NatPmpResponse = NatPmpMapResponse | NatPmpExternalAddressResponse | NatPmpShortError

/** Decode one datagram from a NAT-PMP server. Throws ParseError for anything that is not a NAT-PMP answer. */
export function decodeNatPmpResponse (buf: Uint8Array): NatPmpResponse {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength)
  if (b.length < 4) throw new ParseError(`NAT-PMP answer: ${b.length} bytes, expected at least 4`)
  if (b[0] !== NAT_PMP_VERSION) throw new ParseError(`NAT-PMP answer: version ${quote(b[0])}, expected 0`)
  const op = b.readUInt8(1)
  if (op < RESPONSE_BIT) throw new ParseError(`NAT-PMP answer: opcode ${op} is a request`)
  const opcode = op - RESPONSE_BIT
  const resultCode = b.readUInt16BE(2)
  if (opcode === NatPmpOpcode.EXTERNAL_ADDRESS) {
    if (b.length < EXTERNAL_RESPONSE_LENGTH) return shortOrThrow(b, opcode, resultCode)
    return { kind: 'external', resultCode, epochS: b.readUInt32BE(4), externalAddress: [...b.subarray(8, 12)].join('.') }
  }
  if (opcode === NatPmpOpcode.MAP_UDP || opcode === NatPmpOpcode.MAP_TCP) {
    if (b.length < MAP_RESPONSE_LENGTH) return shortOrThrow(b, opcode, resultCode)
    return {
      kind: 'map',
      protocol: opcode === NatPmpOpcode.MAP_UDP ? 'udp' : 'tcp',
      resultCode,
      epochS: b.readUInt32BE(4),
      internalPort: b.readUInt16BE(8),
      externalPort: b.readUInt16BE(10),
      lifetimeS: b.readUInt32BE(12)
    }
  }
  if (resultCode !== NatPmpResult.SUCCESS) return { kind: 'error', opcode, resultCode }
  throw new ParseError(`NAT-PMP answer: unknown opcode ${opcode}`)
}

function shortOrThrow (b: Buffer, opcode: number, resultCode: number): NatPmpShortError {
  if (resultCode !== NatPmpResult.SUCCESS) return { kind: 'error', opcode, resultCode }
  throw new ParseError(`NAT-PMP answer to opcode ${opcode}: ${b.length} bytes, too short for a success`)
}
