import { describe, expect, it } from 'vitest'
import { crc32 } from 'node:zlib'
import fc from 'fast-check'
import ipaddr from 'ipaddr.js'
import { ParseError } from '../../src/shared/errors.js'
import { parseErrorOf } from '../helpers/errors.js'
import {
  STUN_MAGIC_COOKIE,
  StunAttributeType,
  StunClass,
  StunMessageType,
  StunMethod,
  decodeStunMessage,
  encodeBindingRequest,
  encodeBindingSuccess,
  isStunMessage,
  newTransactionId
} from '../../src/shared/stun.js'

const hex = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ''), 'hex')

// RFC 5769 test vectors. The SOFTWARE and USERNAME padding bytes are 0x20 (RFC 5389 allowed any value).
const RFC5769_TRANSACTION_ID = hex('b7 e7 a7 01 bc 34 d6 86 fa 87 df ae')

/** §2.1 Sample Request: SOFTWARE, PRIORITY, ICE-CONTROLLED, USERNAME, MESSAGE-INTEGRITY, FINGERPRINT. */
const RFC5769_REQUEST = hex(`
  00 01 00 58 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
  80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74
  00 24 00 04 6e 00 01 ff
  80 29 00 08 93 2f f9 b1 51 26 3b 36
  00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20
  00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49 c1 b5 71 a2
  80 28 00 04 e5 7a 3b cf`)

/** §2.2 Sample IPv4 Response: XOR-MAPPED-ADDRESS 192.0.2.1:32853. */
const RFC5769_IPV4_RESPONSE = hex(`
  01 01 00 3c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
  80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
  00 20 00 08 00 01 a1 47 e1 12 a6 43
  00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53 f0 6b e7 d7
  80 28 00 04 c0 7d 4c 96`)

/** §2.3 Sample IPv6 Response: XOR-MAPPED-ADDRESS [2001:db8:1234:5678:11:2233:4455:6677]:32853. */
const RFC5769_IPV6_RESPONSE = hex(`
  01 01 00 48 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
  80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
  00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9
  00 08 00 14 a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75 bf e3 ed 41
  80 28 00 04 c8 fb 0b 4c`)

/** A header + attributes, with the length field computed unless given. */
function message (type: number, body: Buffer, opts: { length?: number, cookie?: number, transactionId?: Buffer } = {}): Buffer {
  const header = Buffer.alloc(20)
  header.writeUInt16BE(type, 0)
  header.writeUInt16BE(opts.length ?? body.length, 2)
  header.writeUInt32BE(opts.cookie ?? STUN_MAGIC_COOKIE, 4)
  ;(opts.transactionId ?? RFC5769_TRANSACTION_ID).copy(header, 8)
  return Buffer.concat([header, body])
}

function attribute (type: number, value: Buffer): Buffer {
  const header = Buffer.alloc(4)
  header.writeUInt16BE(type, 0)
  header.writeUInt16BE(value.length, 2)
  return Buffer.concat([header, value, Buffer.alloc((4 - value.length % 4) % 4)])
}

describe('RFC 5769 test vectors', () => {
  it('decodes the sample IPv4 response (§2.2), FINGERPRINT verified', () => {
    const msg = decodeStunMessage(RFC5769_IPV4_RESPONSE)
    expect(msg.type).toBe(StunMessageType.BINDING_SUCCESS)
    expect(msg.class).toBe(StunClass.SUCCESS)
    expect(msg.method).toBe(StunMethod.BINDING)
    expect(msg.transactionId.equals(RFC5769_TRANSACTION_ID)).toBe(true)
    expect(msg.xorMappedAddress).toEqual({ address: '192.0.2.1', port: 32853 })
    expect(msg.mappedAddress).toBeUndefined()
    expect(msg.software).toBe('test vector')
    expect(msg.fingerprint).toBe(true)
    expect(msg.attributes.map(a => a.type)).toEqual([
      StunAttributeType.SOFTWARE,
      StunAttributeType.XOR_MAPPED_ADDRESS,
      StunAttributeType.MESSAGE_INTEGRITY,
      StunAttributeType.FINGERPRINT
    ])
  })

  it('decodes the sample IPv6 response (§2.3)', () => {
    const msg = decodeStunMessage(RFC5769_IPV6_RESPONSE)
    expect(msg.type).toBe(StunMessageType.BINDING_SUCCESS)
    expect(msg.xorMappedAddress).toEqual({ address: '2001:db8:1234:5678:11:2233:4455:6677', port: 32853 })
    expect(msg.fingerprint).toBe(true)
  })

  it('decodes the sample request (§2.1), keeping unknown attributes raw', () => {
    const msg = decodeStunMessage(RFC5769_REQUEST)
    expect(msg.type).toBe(StunMessageType.BINDING_REQUEST)
    expect(msg.class).toBe(StunClass.REQUEST)
    expect(msg.software).toBe('STUN test client')
    expect(msg.xorMappedAddress).toBeUndefined()
    const username = msg.attributes.find(a => a.type === StunAttributeType.USERNAME)
    expect(username?.value.toString()).toBe('evtj:h6vY')
    // PRIORITY (0x0024) and ICE-CONTROLLED (0x8029) are unknown here but listed.
    expect(msg.attributes.map(a => a.type)).toContain(0x8029)
    expect(msg.fingerprint).toBe(true)
  })

  it('encodes XOR-MAPPED-ADDRESS byte for byte as the vectors do', () => {
    // The whole vectors cannot be reproduced (MESSAGE-INTEGRITY, space padding), their attributes can.
    const encoded = encodeBindingSuccess(RFC5769_TRANSACTION_ID, { address: '192.0.2.1', port: 32853 }, { fingerprint: false })
    expect(encoded.subarray(20)).toEqual(hex('00 20 00 08 00 01 a1 47 e1 12 a6 43'))
    const encoded6 = encodeBindingSuccess(RFC5769_TRANSACTION_ID, { address: '2001:db8:1234:5678:11:2233:4455:6677', port: 32853 }, { fingerprint: false })
    expect(encoded6.subarray(20)).toEqual(hex('00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9'))
  })

  it('rejects each vector with one bit flipped in its FINGERPRINT', () => {
    for (const vector of [RFC5769_REQUEST, RFC5769_IPV4_RESPONSE, RFC5769_IPV6_RESPONSE]) {
      const bad = Buffer.from(vector)
      bad[bad.length - 1]! ^= 0x01
      expect(parseErrorOf(() => decodeStunMessage(bad)).message).toMatch(/bad FINGERPRINT 0x[0-9a-f]{8}, expected 0x[0-9a-f]{8}/)
    }
  })
})

describe('encode/decode round trips', () => {
  it('round-trips a Binding request with SOFTWARE and FINGERPRINT', () => {
    const id = newTransactionId()
    const buf = encodeBindingRequest(id, { software: 'wgnat 0.1.0' })
    expect(buf.readUInt16BE(0)).toBe(StunMessageType.BINDING_REQUEST)
    expect(buf.readUInt32BE(4)).toBe(STUN_MAGIC_COOKIE)
    expect(isStunMessage(buf)).toBe(true)
    const msg = decodeStunMessage(buf)
    expect(msg.class).toBe(StunClass.REQUEST)
    expect(msg.method).toBe(StunMethod.BINDING)
    expect(msg.transactionId.equals(id)).toBe(true)
    expect(msg.software).toBe('wgnat 0.1.0')
    expect(msg.fingerprint).toBe(true)
  })

  it('writes a bare 20-byte request when asked for no FINGERPRINT', () => {
    const buf = encodeBindingRequest(RFC5769_TRANSACTION_ID, { fingerprint: false })
    expect(buf).toEqual(hex('0001 0000 2112a442 b7e7a701bc34d686fa87dfae'))
    expect(decodeStunMessage(buf).attributes).toEqual([])
  })

  it('pads SOFTWARE to a multiple of 4 and ends with FINGERPRINT', () => {
    const buf = encodeBindingRequest(RFC5769_TRANSACTION_ID, { software: 'abcde' })
    expect(buf.length).toBe(20 + 4 + 8 + 8)
    expect(buf.readUInt16BE(2)).toBe(20)
    expect(buf.readUInt16BE(buf.length - 8)).toBe(StunAttributeType.FINGERPRINT)
  })

  it.each([
    ['IPv4', '198.18.11.2', 51820],
    ['IPv4 port 0', '0.0.0.0', 0],
    ['IPv6', '2001:db8::1', 65535],
    ['IPv6 full', 'fd00:1:2:3:4:5:6:7', 1]
  ])('round-trips a success response with an %s mapping', (_name, address, port) => {
    const id = newTransactionId()
    const buf = encodeBindingSuccess(id, { address, port }, { mappedAddress: true, software: 'wgnat' })
    const msg = decodeStunMessage(buf)
    expect(msg.type).toBe(StunMessageType.BINDING_SUCCESS)
    expect(msg.transactionId.equals(id)).toBe(true)
    expect(msg.xorMappedAddress).toEqual({ address, port })
    expect(msg.mappedAddress).toEqual({ address, port })
    expect(msg.software).toBe('wgnat')
  })

  it('round-trips any IPv4 or IPv6 endpoint and transaction ID', () => {
    const v4 = fc.ipV4().map(a => a.split('.').map(Number).join('.'))
    const v6 = fc.uint8Array({ minLength: 16, maxLength: 16 }).map(bytes => {
      const words = Array.from({ length: 8 }, (_, i) => ((bytes[2 * i]! << 8) | bytes[2 * i + 1]!).toString(16))
      return words.join(':')
    })
    fc.assert(fc.property(
      fc.oneof(v4, v6), fc.integer({ min: 0, max: 65535 }), fc.uint8Array({ minLength: 12, maxLength: 12 }),
      (address, port, idBytes) => {
        const id = Buffer.from(idBytes)
        const msg = decodeStunMessage(encodeBindingSuccess(id, { address, port }))
        expect(msg.xorMappedAddress?.port).toBe(port)
        // Compare as bytes: the decoder prints IPv6 in RFC 5952 form.
        expect(ipaddr.parse(msg.xorMappedAddress?.address ?? '').toByteArray()).toEqual(ipaddr.parse(address).toByteArray())
      }
    ))
  })

  it('XORs the mapping: the plain address does not appear in XOR-MAPPED-ADDRESS', () => {
    const buf = encodeBindingSuccess(RFC5769_TRANSACTION_ID, { address: '192.0.2.1', port: 32853 }, { fingerprint: false })
    expect(buf.includes(hex('c0000201'))).toBe(false)
  })

  it('refuses bad arguments with RangeError quoting the value', () => {
    expect(() => encodeBindingRequest(Buffer.alloc(11))).toThrow(/transaction ID: must be 12 bytes: '11'/)
    expect(() => encodeBindingSuccess(RFC5769_TRANSACTION_ID, { address: 'example.com', port: 1 })).toThrow(/'example.com'/)
    expect(() => encodeBindingSuccess(RFC5769_TRANSACTION_ID, { address: 'fe80::1%eth0', port: 1 })).toThrow(RangeError)
    expect(() => encodeBindingSuccess(RFC5769_TRANSACTION_ID, { address: '1.2.3.4', port: 65536 })).toThrow(/'65536'/)
    expect(() => encodeBindingRequest(RFC5769_TRANSACTION_ID, { software: 'x'.repeat(128) })).toThrow(RangeError)
  })

  it('makes a fresh random 12-byte transaction ID each time', () => {
    const a = newTransactionId()
    const b = newTransactionId()
    expect(a.length).toBe(12)
    expect(a.equals(b)).toBe(false)
  })
})

describe('decodeStunMessage: malformed input', () => {
  const xorMapped = attribute(StunAttributeType.XOR_MAPPED_ADDRESS, hex('0001 a147 e112a643'))
  const cases: Array<[string, Buffer, RegExp]> = [
    ['empty', Buffer.alloc(0), /too short: 0 bytes, a header needs 20/],
    ['short header', RFC5769_IPV4_RESPONSE.subarray(0, 19), /too short: 19 bytes/],
    ['top bits set', message(0xc101, Buffer.alloc(0)), /first two bits of the type must be zero: 0xc101/],
    ['bad magic cookie', message(0x0001, Buffer.alloc(0), { cookie: 0xdeadbeef }), /bad magic cookie 0xdeadbeef, expected 0x2112a442/],
    ['length not a multiple of 4', message(0x0001, Buffer.alloc(6)), /length 6 is not a multiple of 4/],
    ['length says more than there is', message(0x0001, xorMapped, { length: 16 }), /length field says 16 bytes of attributes but 12 follow/],
    ['length says less than there is', message(0x0001, xorMapped, { length: 8 }), /length field says 8 bytes of attributes but 12 follow/],
    ['attribute overruns', message(0x0101, hex('0020 0010 0001a147 e112a643')), /attribute 0x0020 at offset 20 with length 16 overruns the message \(32 bytes\)/],
    ['unpadded attribute overruns', message(0x0101, Buffer.concat([hex('8022 0005 6162636465'), Buffer.alloc(3)]).subarray(0, 8)), /attribute 0x8022 at offset 20 with length 5 overruns/],
    ['bad family', message(0x0101, attribute(StunAttributeType.XOR_MAPPED_ADDRESS, hex('0003 a147 e112a643'))), /XOR-MAPPED-ADDRESS: unknown address family 0x03/],
    ['IPv6 family, IPv4 length', message(0x0101, attribute(StunAttributeType.XOR_MAPPED_ADDRESS, hex('0002 a147 e112a643'))), /family 0x02 needs 20 bytes, got 8/],
    ['MAPPED-ADDRESS too short', message(0x0101, attribute(StunAttributeType.MAPPED_ADDRESS, hex('0001'))), /MAPPED-ADDRESS: too short: 2 bytes/],
    ['ERROR-CODE out of range', message(0x0111, attribute(StunAttributeType.ERROR_CODE, hex('00000764'))), /not a code 300-699: class 7, number 100/],
    ['FINGERPRINT wrong size', message(0x0001, attribute(StunAttributeType.FINGERPRINT, hex('0000'))), /FINGERPRINT must be 4 bytes, got 2/],
    ['ERROR-CODE too short', message(0x0111, attribute(StunAttributeType.ERROR_CODE, hex('0004'))), /ERROR-CODE: too short: 2 bytes/],
    ['bad FINGERPRINT', message(0x0001, attribute(StunAttributeType.FINGERPRINT, hex('12345678'))), /bad FINGERPRINT 0x12345678/]
  ]
  it.each(cases)('%s', (_name, buf, pattern) => {
    expect(parseErrorOf(() => decodeStunMessage(buf)).message).toMatch(pattern)
  })

  it('rejects an attribute after a valid FINGERPRINT', () => {
    const withFingerprint = encodeBindingRequest(RFC5769_TRANSACTION_ID)
    const extra = attribute(StunAttributeType.SOFTWARE, Buffer.from('late'))
    const buf = message(StunMessageType.BINDING_REQUEST, Buffer.concat([withFingerprint.subarray(20), extra]))
    // The length field grew, so recompute the FINGERPRINT (at offset 20) to make it valid again.
    buf.writeUInt32BE((crc32(buf.subarray(0, 20)) ^ 0x5354554e) >>> 0, 24)
    expect(parseErrorOf(() => decodeStunMessage(buf)).message).toMatch(/attribute 0x8022 after FINGERPRINT, which must be last/)
  })

  it('every message is one line and says it is about STUN', () => {
    for (const [, buf] of cases) {
      const { message } = parseErrorOf(() => decodeStunMessage(buf))
      expect(message).toMatch(/^STUN /)
      expect(message).not.toMatch(/\n/)
    }
  })
})

describe('decodeStunMessage: attributes', () => {
  it('decodes ERROR-CODE into code and reason', () => {
    const buf = message(StunMessageType.BINDING_ERROR, attribute(StunAttributeType.ERROR_CODE, Buffer.concat([hex('00000401'), Buffer.from('Unauthorized')])))
    const msg = decodeStunMessage(buf)
    expect(msg.class).toBe(StunClass.ERROR)
    expect(msg.errorCode).toEqual({ code: 401, reason: 'Unauthorized' })
  })

  it('skips unknown attributes and keeps the first of duplicates', () => {
    const body = Buffer.concat([
      attribute(0x7fff, Buffer.from('?')),
      attribute(StunAttributeType.XOR_MAPPED_ADDRESS, hex('0001 a147 e112a643')),
      attribute(StunAttributeType.XOR_MAPPED_ADDRESS, hex('0001 0000 e112a643'))
    ])
    const msg = decodeStunMessage(message(StunMessageType.BINDING_SUCCESS, body))
    expect(msg.xorMappedAddress).toEqual({ address: '192.0.2.1', port: 32853 })
    expect(msg.attributes.map(a => a.type)).toEqual([0x7fff, 0x0020, 0x0020])
    expect(msg.attributes[0]?.value.toString()).toBe('?')
  })

  it('ignores attributes after MESSAGE-INTEGRITY (RFC 8489 §14.5)', () => {
    const body = Buffer.concat([
      attribute(StunAttributeType.MESSAGE_INTEGRITY, Buffer.alloc(20)),
      attribute(StunAttributeType.XOR_MAPPED_ADDRESS, hex('0001 a147 e112a643'))
    ])
    expect(decodeStunMessage(message(StunMessageType.BINDING_SUCCESS, body)).xorMappedAddress).toBeUndefined()
  })

  it('decodes class and method from the interleaved type bits', () => {
    expect(decodeStunMessage(message(0x0011, Buffer.alloc(0))).class).toBe(StunClass.INDICATION)
    expect(decodeStunMessage(message(0x3eef, Buffer.alloc(0))).method).toBe(0xfff)
    const msg = decodeStunMessage(message(0x3fef, Buffer.alloc(0)))
    expect(msg.class).toBe(StunClass.SUCCESS)
    expect(msg.method).toBe(0xfff)
    expect(decodeStunMessage(message(0x0003, Buffer.alloc(0))).method).toBe(0x003) // TURN Allocate
  })
})

describe('isStunMessage', () => {
  it('accepts the vectors and our own messages', () => {
    expect(isStunMessage(RFC5769_IPV4_RESPONSE)).toBe(true)
    expect(isStunMessage(RFC5769_IPV6_RESPONSE)).toBe(true)
    expect(isStunMessage(encodeBindingRequest(newTransactionId()))).toBe(true)
  })

  it('rejects a WireGuard handshake initiation and other non-STUN', () => {
    const wireguardInitiation = Buffer.concat([hex('01000000'), Buffer.alloc(144, 0x5a)])
    expect(isStunMessage(wireguardInitiation)).toBe(false)
    expect(isStunMessage(Buffer.alloc(19))).toBe(false)
    expect(isStunMessage(message(0x0001, Buffer.alloc(0), { cookie: 0 }))).toBe(false)
    expect(isStunMessage(message(0x0001, Buffer.alloc(4), { length: 8 }))).toBe(false)
    expect(isStunMessage(message(0x4001, Buffer.alloc(0)))).toBe(false)
  })
})

describe('fuzz: decodeStunMessage throws only ParseError', () => {
  const valid = [
    RFC5769_REQUEST,
    RFC5769_IPV4_RESPONSE,
    RFC5769_IPV6_RESPONSE,
    encodeBindingSuccess(RFC5769_TRANSACTION_ID, { address: '2001:db8::1', port: 1 }, { mappedAddress: true, software: 'x' })
  ]

  function decodesOrParseError (buf: Buffer): void {
    try {
      decodeStunMessage(buf)
    } catch (err) {
      if (!(err instanceof ParseError)) throw err
      expect(err.message).not.toMatch(/\n/)
    }
  }

  it('on random bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), bytes => decodesOrParseError(Buffer.from(bytes))), { numRuns: 2000 })
  })

  it('on random bodies behind a valid header (the length field matching)', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 120 }).map(b => b.subarray(0, b.length & ~3)), body => {
      decodesOrParseError(message(StunMessageType.BINDING_SUCCESS, Buffer.from(body)))
    }), { numRuns: 2000 })
  })

  it('on truncations of valid messages, all rejected', () => {
    for (const vector of valid) {
      for (let n = 0; n < vector.length; n++) {
        const cut = vector.subarray(0, n)
        expect(() => decodeStunMessage(cut)).toThrow(ParseError)
      }
    }
  })

  it('on byte mutations of valid messages', () => {
    fc.assert(fc.property(
      fc.constantFrom(...valid),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
      (vector, edits) => {
        const buf = Buffer.from(vector)
        for (const [at, byte] of edits) buf[at % buf.length] = byte
        decodesOrParseError(buf)
      }
    ), { numRuns: 3000 })
  })

  it('on mutations with the length field and FINGERPRINT fixed up, so attribute parsing is reached', () => {
    fc.assert(fc.property(
      fc.constantFrom(...valid),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
      (vector, edits) => {
        const buf = Buffer.from(vector)
        // Mutate only the attribute area before FINGERPRINT, then make FINGERPRINT right again.
        const area = buf.length - 8 - 20
        for (const [at, byte] of edits) buf[20 + (at % area)] = byte
        buf.writeUInt32BE((crc32(buf.subarray(0, buf.length - 8)) ^ 0x5354554e) >>> 0, buf.length - 4)
        decodesOrParseError(buf)
      }
    ), { numRuns: 3000 })
  })
})
