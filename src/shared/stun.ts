/**
 * STUN (RFC 8489) codec: just enough to ask "what is my public endpoint?" and to answer it.
 *
 * Pure functions over buffers; no sockets. Received datagrams are validated in full by
 * {@link decodeStunMessage}, which throws only {@link ParseError}.
 */
import { nodeCrypto } from './lazy-crypto.js'
import { isIPv4, isIPv6 } from 'node:net'
import { crc32 } from 'node:zlib'
import ipaddr from 'ipaddr.js'
import { ParseError, quote } from './errors.js'

/** Fixed value in every STUN header (RFC 8489 §5); also the XOR key for XOR-MAPPED-ADDRESS. */
export const STUN_MAGIC_COOKIE = 0x2112a442
/** Bytes in a STUN header: type, length, magic cookie, transaction ID. */
export const STUN_HEADER_LENGTH = 20
/** Bytes in a transaction ID (96 bits). */
export const STUN_TRANSACTION_ID_LENGTH = 12
/** The FINGERPRINT value is CRC-32 of the message XOR this ("STUN" in ASCII). */
export const STUN_FINGERPRINT_XOR = 0x5354554e
/** SOFTWARE must be fewer than 128 characters, at most 763 bytes of UTF-8 (RFC 8489 §14.14). */
export const STUN_SOFTWARE_MAX_BYTES = 763

/** Message classes (the C1 C0 bits of the message type). */
export const StunClass = {
  REQUEST: 'request',
  INDICATION: 'indication',
  SUCCESS: 'success',
  ERROR: 'error'
} as const
export type StunClass = typeof StunClass[keyof typeof StunClass]

/** Methods (the 12 M bits of the message type). Only Binding is defined by RFC 8489. */
export const StunMethod = {
  BINDING: 0x001
} as const
export type StunMethod = typeof StunMethod[keyof typeof StunMethod]

/** Whole 14-bit message types (method and class interleaved) for the Binding method. */
export const StunMessageType = {
  BINDING_REQUEST: 0x0001,
  BINDING_INDICATION: 0x0011,
  BINDING_SUCCESS: 0x0101,
  BINDING_ERROR: 0x0111
} as const
export type StunMessageType = typeof StunMessageType[keyof typeof StunMessageType]

/** Attribute types (RFC 8489 §18.3). Below 0x8000: comprehension-required; above: optional. */
export const StunAttributeType = {
  MAPPED_ADDRESS: 0x0001,
  USERNAME: 0x0006,
  MESSAGE_INTEGRITY: 0x0008,
  ERROR_CODE: 0x0009,
  UNKNOWN_ATTRIBUTES: 0x000a,
  REALM: 0x0014,
  NONCE: 0x0015,
  MESSAGE_INTEGRITY_SHA256: 0x001c,
  PASSWORD_ALGORITHM: 0x001d,
  USERHASH: 0x001e,
  XOR_MAPPED_ADDRESS: 0x0020,
  PASSWORD_ALGORITHMS: 0x8002,
  ALTERNATE_DOMAIN: 0x8003,
  SOFTWARE: 0x8022,
  ALTERNATE_SERVER: 0x8023,
  FINGERPRINT: 0x8028
} as const
export type StunAttributeType = typeof StunAttributeType[keyof typeof StunAttributeType]

/** Address family byte in (XOR-)MAPPED-ADDRESS. */
export const StunAddressFamily = {
  IPV4: 0x01,
  IPV6: 0x02
} as const
export type StunAddressFamily = typeof StunAddressFamily[keyof typeof StunAddressFamily]

export interface StunEndpoint {
  /** Dotted quad, or RFC 5952 text for IPv6. */
  address: string
  port: number
}

export interface StunAttribute {
  type: number
  /** The value without padding; a view into the decoded buffer. */
  value: Buffer
}

export interface StunMessage {
  /** The 14-bit message type, e.g. {@link StunMessageType.BINDING_SUCCESS}. */
  type: number
  class: StunClass
  method: number
  transactionId: Buffer
  /** Every attribute in wire order, known or not (unknown ones are otherwise ignored). */
  attributes: StunAttribute[]
  xorMappedAddress?: StunEndpoint
  mappedAddress?: StunEndpoint
  software?: string
  errorCode?: { code: number, reason: string }
  /** True when a FINGERPRINT attribute was present (and therefore verified). */
  fingerprint: boolean
}

export interface StunEncodeOptions {
  /** SOFTWARE attribute: a description of the agent, for debugging. Omitted when undefined. */
  software?: string
  /**
   * Append FINGERPRINT, which lets a receiver tell STUN from other traffic on the same port
   * (WireGuard's, for instance) with near certainty.
   * @default true
   */
  fingerprint?: boolean
}

export interface StunSuccessOptions extends StunEncodeOptions {
  /**
   * Also include the plain MAPPED-ADDRESS, for RFC 3489 clients that do not know XOR-MAPPED-ADDRESS.
   * @default false
   */
  mappedAddress?: boolean
}

const CLASS_BITS: Record<StunClass, number> = {
  [StunClass.REQUEST]: 0x000,
  [StunClass.INDICATION]: 0x010,
  [StunClass.SUCCESS]: 0x100,
  [StunClass.ERROR]: 0x110
}

/** A fresh random transaction ID (12 bytes from the CSPRNG). */
export function newTransactionId (): Buffer {
  return nodeCrypto().randomBytes(STUN_TRANSACTION_ID_LENGTH)
}

/** A Binding request: "tell me the address and port you see me from". */
export function encodeBindingRequest (transactionId: Buffer, opts: StunEncodeOptions = {}): Buffer {
  const attributes: StunAttribute[] = []
  if (opts.software !== undefined) attributes.push(softwareAttribute(opts.software))
  return encodeMessage(StunMessageType.BINDING_REQUEST, transactionId, attributes, opts.fingerprint ?? true)
}

/** A Binding success response carrying XOR-MAPPED-ADDRESS (and, if asked, MAPPED-ADDRESS). */
export function encodeBindingSuccess (transactionId: Buffer, mapped: StunEndpoint, opts: StunSuccessOptions = {}): Buffer {
  checkTransactionId(transactionId)
  const attributes: StunAttribute[] = [
    { type: StunAttributeType.XOR_MAPPED_ADDRESS, value: encodeAddress(mapped, transactionId, true) }
  ]
  if (opts.mappedAddress === true) {
    attributes.push({ type: StunAttributeType.MAPPED_ADDRESS, value: encodeAddress(mapped, transactionId, false) })
  }
  if (opts.software !== undefined) attributes.push(softwareAttribute(opts.software))
  return encodeMessage(StunMessageType.BINDING_SUCCESS, transactionId, attributes, opts.fingerprint ?? true)
}

/**
 * Cheap test for demultiplexing: could this datagram be a STUN message?
 * Checks the two zero bits, the magic cookie and that the length field matches the datagram.
 */
export function isStunMessage (buf: Uint8Array): boolean {
  if (!(buf instanceof Uint8Array) || buf.length < STUN_HEADER_LENGTH) return false
  const view = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength)
  const length = view.readUInt16BE(2)
  return (view[0]! & 0xc0) === 0 &&
    view.readUInt32BE(4) === STUN_MAGIC_COOKIE &&
    length % 4 === 0 &&
    STUN_HEADER_LENGTH + length === view.length
}

/**
 * Decode and validate one STUN message (one whole UDP datagram).
 * Throws ParseError naming the first problem found; never throws anything else.
 */
export function decodeStunMessage (buf: Buffer): StunMessage {
  if (!(buf instanceof Uint8Array)) throw new ParseError(`STUN message: expected bytes, got ${typeof buf}`)
  const view = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength)
  if (view.length < STUN_HEADER_LENGTH) {
    throw new ParseError(`STUN message: too short: ${view.length} bytes, a header needs ${STUN_HEADER_LENGTH}`)
  }
  const type = view.readUInt16BE(0)
  if ((type & 0xc000) !== 0) {
    throw new ParseError(`STUN message: first two bits of the type must be zero: ${hex16(type)}`)
  }
  const cookie = view.readUInt32BE(4)
  if (cookie !== STUN_MAGIC_COOKIE) {
    throw new ParseError(`STUN message: bad magic cookie ${hex32(cookie)}, expected ${hex32(STUN_MAGIC_COOKIE)}`)
  }
  const length = view.readUInt16BE(2)
  if (length % 4 !== 0) {
    throw new ParseError(`STUN message: length ${length} is not a multiple of 4`)
  }
  if (STUN_HEADER_LENGTH + length !== view.length) {
    throw new ParseError(`STUN message: length field says ${length} bytes of attributes but ${view.length - STUN_HEADER_LENGTH} follow the header`)
  }

  const transactionId = view.subarray(8, STUN_HEADER_LENGTH)
  const message: StunMessage = {
    type,
    class: classOf(type),
    method: methodOf(type),
    transactionId,
    attributes: [],
    fingerprint: false
  }

  // After MESSAGE-INTEGRITY only MESSAGE-INTEGRITY-SHA256 and FINGERPRINT count (RFC 8489 §14.5).
  let afterIntegrity = false
  let offset = STUN_HEADER_LENGTH
  while (offset < view.length) {
    if (message.fingerprint) {
      throw new ParseError(`STUN message: attribute ${hex16(view.readUInt16BE(offset))} after FINGERPRINT, which must be last`)
    }
    const attrType = view.readUInt16BE(offset)
    const attrLength = view.readUInt16BE(offset + 2)
    const start = offset + 4
    const end = start + attrLength
    const padded = start + padTo4(attrLength)
    if (padded > view.length) {
      throw new ParseError(`STUN message: attribute ${hex16(attrType)} at offset ${offset} with length ${attrLength} overruns the message (${view.length} bytes)`)
    }
    const value = view.subarray(start, end)
    message.attributes.push({ type: attrType, value })

    if (attrType === StunAttributeType.FINGERPRINT) {
      verifyFingerprint(view, offset, value)
      message.fingerprint = true
    } else if (!afterIntegrity) {
      decodeKnownAttribute(message, attrType, value)
    }
    if (attrType === StunAttributeType.MESSAGE_INTEGRITY || attrType === StunAttributeType.MESSAGE_INTEGRITY_SHA256) {
      afterIntegrity = true
    }
    offset = padded
  }
  return message
}

/** Fill the typed fields for the attributes this codec understands; the first occurrence wins. */
function decodeKnownAttribute (message: StunMessage, type: number, value: Buffer): void {
  switch (type) {
    case StunAttributeType.XOR_MAPPED_ADDRESS:
      message.xorMappedAddress ??= decodeAddress(value, message.transactionId, true)
      break
    case StunAttributeType.MAPPED_ADDRESS:
      message.mappedAddress ??= decodeAddress(value, message.transactionId, false)
      break
    case StunAttributeType.SOFTWARE:
      message.software ??= value.toString('utf8')
      break
    case StunAttributeType.ERROR_CODE:
      message.errorCode ??= decodeErrorCode(value)
      break
  }
}

function verifyFingerprint (view: Buffer, attrOffset: number, value: Buffer): void {
  if (value.length !== 4) {
    throw new ParseError(`STUN message: FINGERPRINT must be 4 bytes, got ${value.length}`)
  }
  const expected = fingerprintOf(view.subarray(0, attrOffset))
  const actual = value.readUInt32BE(0)
  if (actual !== expected) {
    throw new ParseError(`STUN message: bad FINGERPRINT ${hex32(actual)}, expected ${hex32(expected)}`)
  }
}

/** CRC-32 of everything before the FINGERPRINT attribute, XOR "STUN". The length field must already count FINGERPRINT. */
function fingerprintOf (bytes: Buffer): number {
  return (crc32(bytes) ^ STUN_FINGERPRINT_XOR) >>> 0
}

function decodeAddress (value: Buffer, transactionId: Buffer, xor: boolean): StunEndpoint {
  const name = xor ? 'XOR-MAPPED-ADDRESS' : 'MAPPED-ADDRESS'
  if (value.length < 4) {
    throw new ParseError(`STUN ${name}: too short: ${value.length} bytes`)
  }
  const family = value[1]!
  const addressLength = family === StunAddressFamily.IPV4 ? 4 : family === StunAddressFamily.IPV6 ? 16 : undefined
  if (addressLength === undefined) {
    throw new ParseError(`STUN ${name}: unknown address family ${hex8(family)}`)
  }
  if (value.length !== 4 + addressLength) {
    throw new ParseError(`STUN ${name}: family ${hex8(family)} needs ${4 + addressLength} bytes, got ${value.length}`)
  }
  const key = xorKey(transactionId)
  const port = value.readUInt16BE(2) ^ (xor ? STUN_MAGIC_COOKIE >>> 16 : 0)
  const bytes: number[] = []
  for (let i = 0; i < addressLength; i++) bytes.push(value[4 + i]! ^ (xor ? key[i]! : 0))
  return { address: ipaddr.fromByteArray(bytes).toString(), port }
}

function encodeAddress (endpoint: StunEndpoint, transactionId: Buffer, xor: boolean): Buffer {
  const { address, port } = endpoint
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) {
    throw new RangeError(`STUN mapped address: port must be an integer 0-65535: ${quote(port)}`)
  }
  if (!isIPv4(address) && !(isIPv6(address) && !address.includes('%'))) {
    throw new RangeError(`STUN mapped address: not an IPv4 or IPv6 address: ${quote(address)}`)
  }
  const bytes = ipaddr.parse(address).toByteArray()
  const family = bytes.length === 4 ? StunAddressFamily.IPV4 : StunAddressFamily.IPV6
  const key = xorKey(transactionId)
  const value = Buffer.alloc(4 + bytes.length)
  value[1] = family
  value.writeUInt16BE(port ^ (xor ? STUN_MAGIC_COOKIE >>> 16 : 0), 2)
  bytes.forEach((byte, i) => { value[4 + i] = byte ^ (xor ? key[i]! : 0) })
  return value
}

/** Magic cookie then transaction ID: the XOR key for addresses (only the first 4 bytes for IPv4). */
function xorKey (transactionId: Buffer): Buffer {
  const key = Buffer.alloc(4 + STUN_TRANSACTION_ID_LENGTH)
  key.writeUInt32BE(STUN_MAGIC_COOKIE, 0)
  transactionId.copy(key, 4)
  return key
}

function decodeErrorCode (value: Buffer): { code: number, reason: string } {
  if (value.length < 4) {
    throw new ParseError(`STUN ERROR-CODE: too short: ${value.length} bytes`)
  }
  const errorClass = value[2]! & 0x07
  const number = value[3]!
  if (errorClass < 3 || errorClass > 6 || number > 99) {
    throw new ParseError(`STUN ERROR-CODE: not a code 300-699: class ${errorClass}, number ${number}`)
  }
  return { code: errorClass * 100 + number, reason: value.subarray(4).toString('utf8') }
}

function softwareAttribute (software: string): StunAttribute {
  const value = Buffer.from(software, 'utf8')
  if ([...software].length >= 128 || value.length > STUN_SOFTWARE_MAX_BYTES) {
    throw new RangeError(`STUN SOFTWARE: must be under 128 characters: ${quote(software)}`)
  }
  return { type: StunAttributeType.SOFTWARE, value }
}

function encodeMessage (type: number, transactionId: Buffer, attributes: StunAttribute[], fingerprint: boolean): Buffer {
  checkTransactionId(transactionId)
  const fingerprintLength = fingerprint ? 8 : 0
  const bodyLength = attributes.reduce((sum, a) => sum + 4 + padTo4(a.value.length), 0) + fingerprintLength
  const buf = Buffer.alloc(STUN_HEADER_LENGTH + bodyLength)
  buf.writeUInt16BE(type, 0)
  buf.writeUInt16BE(bodyLength, 2)
  buf.writeUInt32BE(STUN_MAGIC_COOKIE, 4)
  transactionId.copy(buf, 8)
  let offset = STUN_HEADER_LENGTH
  for (const { type: attrType, value } of attributes) {
    buf.writeUInt16BE(attrType, offset)
    buf.writeUInt16BE(value.length, offset + 2)
    value.copy(buf, offset + 4)
    offset += 4 + padTo4(value.length)
  }
  if (fingerprint) {
    buf.writeUInt16BE(StunAttributeType.FINGERPRINT, offset)
    buf.writeUInt16BE(4, offset + 2)
    buf.writeUInt32BE(fingerprintOf(buf.subarray(0, offset)), offset + 4)
  }
  return buf
}

function checkTransactionId (transactionId: Buffer): void {
  if (!(transactionId instanceof Uint8Array) || transactionId.length !== STUN_TRANSACTION_ID_LENGTH) {
    throw new RangeError(`STUN transaction ID: must be ${STUN_TRANSACTION_ID_LENGTH} bytes: ${quote(transactionId?.length)}`)
  }
}

function classOf (type: number): StunClass {
  switch (type & 0x0110) {
    case CLASS_BITS.request: return StunClass.REQUEST
    case CLASS_BITS.indication: return StunClass.INDICATION
    case CLASS_BITS.success: return StunClass.SUCCESS
    default: return StunClass.ERROR
  }
}

/** Undo the interleaving M11..M7 C1 M6..M4 C0 M3..M0. */
function methodOf (type: number): number {
  return (type & 0x000f) | ((type & 0x00e0) >> 1) | ((type & 0x3e00) >> 2)
}

function padTo4 (n: number): number {
  return (n + 3) & ~3
}

function hex8 (n: number): string { return '0x' + n.toString(16).padStart(2, '0') }
function hex16 (n: number): string { return '0x' + n.toString(16).padStart(4, '0') }
function hex32 (n: number): string { return '0x' + (n >>> 0).toString(16).padStart(8, '0') }
