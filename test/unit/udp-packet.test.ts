import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { ParseError } from '../../src/shared/errors.js'
import { parseErrorOf } from '../helpers/errors.js'
import {
  IPV4_HEADER_LENGTH,
  IpProtocol,
  UDP_HEADER_LENGTH,
  decodeIpv4Udp,
  encodeIpv4Udp,
  encodeUdp,
  internetChecksum
} from '../../src/shared/udp-packet.js'

const hex = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ''), 'hex')

/**
 * A real packet, read from a Linux raw IPPROTO_UDP socket: 127.0.0.1:51820 -> 127.0.0.1:3478,
 * payload "wgnat checksum vector", DF set, TTL 64. Its UDP checksum field holds 0xfe30, which is
 * only the pseudo-header sum: loopback checksum offload left it partial.
 */
const CAPTURED_LOOPBACK = hex(`
  4500 0031 9eea 4000 4011 9dcf 7f00 0001 7f00 0001
  ca6c 0d96 001d fe30 77676e617420636865636b73756d20766563746f72`)
/** The same packet with its full UDP checksum 0xb9cf, as computed by a separate (Python) implementation. */
const CAPTURED_FULL_CHECKSUM = 0xb9cf

/** The IPv4 header checksum example from Wikipedia ("IPv4 header checksum"): checksum 0xb861. */
const WIKIPEDIA_HEADER = hex('4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7')

/** Independent reference: sum the 16-bit words with BigInt, fold once at the end. */
function referenceChecksum (bytes: Uint8Array): number {
  let sum = 0n
  for (let i = 0; i < bytes.length; i += 2) sum += BigInt((bytes[i]! << 8) | (bytes[i + 1] ?? 0))
  while (sum > 0xffffn) sum = (sum & 0xffffn) + (sum >> 16n)
  return Number(~sum & 0xffffn)
}

function pseudoHeader (src: string, dst: string, udpLength: number): Buffer {
  return Buffer.from([...src.split('.').map(Number), ...dst.split('.').map(Number), 0, 17, udpLength >> 8, udpLength & 0xff])
}

describe('internetChecksum', () => {
  it('computes the Wikipedia header example', () => {
    const zeroed = Buffer.from(WIKIPEDIA_HEADER)
    zeroed.writeUInt16BE(0, 10)
    expect(internetChecksum(zeroed)).toBe(0xb861)
    expect(internetChecksum(WIKIPEDIA_HEADER)).toBe(0)
  })

  it('computes the RFC 1071 §3 example (sum 0xddf2 -> checksum 0x220d)', () => {
    expect(internetChecksum(hex('0001 f203 f4f5 f6f7'))).toBe(0x220d)
  })

  it('agrees with the BigInt reference on any bytes, however they are split into parts', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), fc.array(fc.nat()), (bytes, cuts) => {
      const points = [...new Set(cuts.map(c => c % (bytes.length + 1)))].sort((a, b) => a - b)
      const parts: Uint8Array[] = []
      let last = 0
      for (const p of points) { parts.push(bytes.subarray(last, p)); last = p }
      parts.push(bytes.subarray(last))
      expect(internetChecksum(...parts)).toBe(referenceChecksum(bytes))
    }), { numRuns: 500 })
  })

  it('handles a 64 KiB buffer of 0xff without overflowing', () => {
    const big = Buffer.alloc(65535, 0xff)
    expect(internetChecksum(big)).toBe(referenceChecksum(big))
  })
})

describe('encodeUdp', () => {
  it('writes the header with checksum 0 when no addresses are given', () => {
    const udp = encodeUdp({ srcPort: 51820, dstPort: 3478, payload: Buffer.from('hi') })
    expect(udp).toEqual(hex('ca6c 0d96 000a 0000 6869'))
  })

  it('reproduces the full checksum of the captured packet', () => {
    const payload = CAPTURED_LOOPBACK.subarray(28)
    const udp = encodeUdp({ srcPort: 51820, dstPort: 3478, payload, srcIp: '127.0.0.1', dstIp: '127.0.0.1' })
    expect(udp.readUInt16BE(6)).toBe(CAPTURED_FULL_CHECKSUM)
    expect(udp.readUInt16BE(4)).toBe(0x1d)
  })

  it('checksums over the pseudo-header, matching the reference on random datagrams', () => {
    fc.assert(fc.property(
      fc.ipV4(), fc.ipV4(), fc.integer({ min: 0, max: 65535 }), fc.integer({ min: 0, max: 65535 }), fc.uint8Array({ maxLength: 100 }),
      (srcIp, dstIp, srcPort, dstPort, payload) => {
        const udp = encodeUdp({ srcPort, dstPort, payload, srcIp, dstIp })
        const zeroed = Buffer.from(udp)
        zeroed.writeUInt16BE(0, 6)
        const expected = referenceChecksum(Buffer.concat([pseudoHeader(srcIp, dstIp, udp.length), zeroed]))
        expect(udp.readUInt16BE(6)).toBe(expected === 0 ? 0xffff : expected)
        // And a receiver's check over everything sums to zero.
        expect(referenceChecksum(Buffer.concat([pseudoHeader(srcIp, dstIp, udp.length), udp]))).toBe(0)
      }
    ), { numRuns: 300 })
  })

  it('sends a computed checksum of 0 as 0xffff', () => {
    // Choose the payload so the ones' complement sum is 0xffff, i.e. the checksum comes out 0.
    const base = encodeUdp({ srcPort: 1, dstPort: 2, payload: Buffer.alloc(2), srcIp: '10.0.0.1', dstIp: '10.0.0.2' })
    const word = base.readUInt16BE(6) // checksum with a zero payload word
    const payload = Buffer.alloc(2)
    payload.writeUInt16BE(word, 0) // adding the checksum makes the sum 0xffff
    const udp = encodeUdp({ srcPort: 1, dstPort: 2, payload, srcIp: '10.0.0.1', dstIp: '10.0.0.2' })
    expect(udp.readUInt16BE(6)).toBe(0xffff)
  })

  it('refuses bad arguments with RangeError quoting the value', () => {
    expect(() => encodeUdp({ srcPort: 70000, dstPort: 1, payload: Buffer.alloc(0) })).toThrow(/source port must be an integer 0-65535: '70000'/)
    expect(() => encodeUdp({ srcPort: 1, dstPort: 1.5, payload: Buffer.alloc(0) })).toThrow(/'1.5'/)
    expect(() => encodeUdp({ srcPort: 1, dstPort: 1, payload: Buffer.alloc(0), srcIp: '10.0.0.1' })).toThrow(/needs both srcIp and dstIp, got only '10.0.0.1'/)
    expect(() => encodeUdp({ srcPort: 1, dstPort: 1, payload: Buffer.alloc(0), srcIp: '10.0.0.1', dstIp: '::1' })).toThrow(/destination address is not an IPv4 address: '::1'/)
    expect(() => encodeUdp({ srcPort: 1, dstPort: 1, payload: Buffer.alloc(65508) })).toThrow(/payload too large: 65508 bytes/)
  })
})

describe('encodeIpv4Udp', () => {
  it('reproduces the captured packet byte for byte (apart from the full UDP checksum)', () => {
    const packet = encodeIpv4Udp({ srcIp: '127.0.0.1', dstIp: '127.0.0.1', srcPort: 51820, dstPort: 3478, ttl: 64, id: 0x9eea, payload: CAPTURED_LOOPBACK.subarray(28) })
    const expected = Buffer.from(CAPTURED_LOOPBACK)
    expected.writeUInt16BE(CAPTURED_FULL_CHECKSUM, 26)
    // We do not set DF (the kernel did): clear it and fix the header checksum by hand, +0x4000 back.
    expected.writeUInt16BE(0, 6)
    expected.writeUInt16BE(0x9dcf + 0x4000, 10)
    expect(packet.toString('hex')).toBe(expected.toString('hex'))
  })

  it('writes version, IHL, total length, TTL, protocol and a valid header checksum', () => {
    const packet = encodeIpv4Udp({ srcIp: '10.1.2.3', dstIp: '198.18.0.9', srcPort: 51820, dstPort: 51821, ttl: 3, payload: Buffer.from('punch') })
    expect(packet[0]).toBe(0x45)
    expect(packet.readUInt16BE(2)).toBe(IPV4_HEADER_LENGTH + UDP_HEADER_LENGTH + 5)
    expect(packet.readUInt16BE(4)).toBe(0)
    expect(packet[8]).toBe(3)
    expect(packet[9]).toBe(IpProtocol.UDP)
    expect(referenceChecksum(packet.subarray(0, 20))).toBe(0)
    expect(packet.subarray(12, 20)).toEqual(Buffer.from([10, 1, 2, 3, 198, 18, 0, 9]))
  })

  it('refuses a TTL or id out of range', () => {
    const base = { srcIp: '10.0.0.1', dstIp: '10.0.0.2', srcPort: 1, dstPort: 2, payload: Buffer.alloc(0) }
    expect(() => encodeIpv4Udp({ ...base, ttl: 0 })).toThrow(/TTL must be an integer 1-255: '0'/)
    expect(() => encodeIpv4Udp({ ...base, ttl: 256 })).toThrow(RangeError)
    expect(() => encodeIpv4Udp({ ...base, ttl: 1, id: 65536 })).toThrow(/id must be an integer 0-65535: '65536'/)
    expect(() => encodeIpv4Udp({ ...base, ttl: 1, srcIp: '10.0.0' })).toThrow(/source address is not an IPv4 address: '10.0.0'/)
  })
})

describe('decodeIpv4Udp', () => {
  it('decodes the captured packet', () => {
    const packet = decodeIpv4Udp(CAPTURED_LOOPBACK)
    expect(packet).toEqual({
      srcIp: '127.0.0.1',
      dstIp: '127.0.0.1',
      srcPort: 51820,
      dstPort: 3478,
      ttl: 64,
      payload: Buffer.from('wgnat checksum vector')
    })
  })

  it('rejects the captured partial checksum only when asked to verify it', () => {
    expect(parseErrorOf(() => decodeIpv4Udp(CAPTURED_LOOPBACK, { verifyUdpChecksum: true })).message).toBe('UDP packet: bad checksum 0xfe30')
    const full = Buffer.from(CAPTURED_LOOPBACK)
    full.writeUInt16BE(CAPTURED_FULL_CHECKSUM, 26)
    expect(decodeIpv4Udp(full, { verifyUdpChecksum: true }).payload.toString()).toBe('wgnat checksum vector')
  })

  it('round-trips any encoded packet', () => {
    fc.assert(fc.property(
      fc.ipV4(), fc.ipV4(), fc.integer({ min: 0, max: 65535 }), fc.integer({ min: 0, max: 65535 }),
      fc.integer({ min: 1, max: 255 }), fc.uint8Array({ maxLength: 200 }),
      (srcIp, dstIp, srcPort, dstPort, ttl, payload) => {
        const decoded = decodeIpv4Udp(encodeIpv4Udp({ srcIp, dstIp, srcPort, dstPort, ttl, payload }), { verifyUdpChecksum: true })
        expect(decoded).toEqual({ srcIp, dstIp, srcPort, dstPort, ttl, payload: Buffer.from(payload) })
      }
    ), { numRuns: 300 })
  })

  it('skips IP options and ignores bytes past the total length', () => {
    // Rebuild the captured packet with IHL 6 (one 4-byte option word of NOPs) and trailing junk.
    const header = Buffer.concat([CAPTURED_LOOPBACK.subarray(0, 20), hex('01010101')])
    header[0] = 0x46
    header.writeUInt16BE(CAPTURED_LOOPBACK.length + 4, 2)
    header.writeUInt16BE(0, 10)
    header.writeUInt16BE(internetChecksum(header), 10)
    const packet = Buffer.concat([header, CAPTURED_LOOPBACK.subarray(20), hex('deadbeef')])
    const decoded = decodeIpv4Udp(packet)
    expect(decoded.srcPort).toBe(51820)
    expect(decoded.payload.toString()).toBe('wgnat checksum vector')
  })

  /** The captured packet with an edit applied and (unless told) the header checksum fixed. */
  function edited (edit: (b: Buffer) => void, fixChecksum = true): Buffer {
    const b = Buffer.from(CAPTURED_LOOPBACK)
    edit(b)
    if (fixChecksum) {
      b.writeUInt16BE(0, 10)
      b.writeUInt16BE(internetChecksum(b.subarray(0, (b[0]! & 0x0f) * 4)), 10)
    }
    return b
  }

  const cases: Array<[string, Buffer, RegExp]> = [
    ['empty', Buffer.alloc(0), /^IPv4 packet: too short: 0 bytes, a header needs 20$/],
    ['IPv6', edited(b => { b[0] = 0x60 }, false), /^IPv4 packet: version is 6, not 4$/],
    ['IHL 4', edited(b => { b[0] = 0x44 }, false), /^IPv4 packet: header length 16 is under 20$/],
    ['IHL past the data', edited(b => { b[0] = 0x4f; b.writeUInt16BE(60, 2) }, false), /^IPv4 packet: truncated: total length 60 but only 49 bytes$/],
    ['total length under header', edited(b => { b.writeUInt16BE(19, 2) }), /^IPv4 packet: total length 19 is shorter than the 20-byte header$/],
    ['truncated', CAPTURED_LOOPBACK.subarray(0, 40), /^IPv4 packet: truncated: total length 49 but only 40 bytes$/],
    ['bad header checksum', edited(b => { b[8] = 1 }, false), /^IPv4 packet: bad header checksum 0x9dcf$/],
    ['fragment offset', edited(b => { b.writeUInt16BE(0x0001, 6) }), /^IPv4 packet: is a fragment \(flags\/offset 0x0001\)$/],
    ['more fragments', edited(b => { b.writeUInt16BE(0x2000, 6) }), /is a fragment \(flags\/offset 0x2000\)/],
    ['TCP', edited(b => { b[9] = 6 }), /^IPv4 packet: protocol is 6, not UDP \(17\)$/],
    ['no room for UDP header', edited(b => { b.writeUInt16BE(25, 2) }), /^UDP packet: too short: 5 bytes, a header needs 8$/],
    ['UDP length under 8', edited(b => { b.writeUInt16BE(7, 24) }), /^UDP packet: length field 7 does not fit the 29 bytes after the IP header$/],
    ['UDP length past IP payload', edited(b => { b.writeUInt16BE(30, 24) }), /^UDP packet: length field 30 does not fit/]
  ]
  it.each(cases)('rejects %s', (_name, buf, pattern) => {
    expect(parseErrorOf(() => decodeIpv4Udp(buf)).message).toMatch(pattern)
  })

  it('accepts the unedited packet the malformed cases start from', () => {
    expect(() => decodeIpv4Udp(edited(() => {}))).not.toThrow()
  })

  it('throws only ParseError for random bytes, truncations and mutations', () => {
    const attempt = (buf: Buffer): void => {
      try {
        decodeIpv4Udp(buf, { verifyUdpChecksum: true })
      } catch (err) {
        if (!(err instanceof ParseError)) throw err
      }
    }
    fc.assert(fc.property(fc.uint8Array({ maxLength: 100 }), bytes => attempt(Buffer.from(bytes))), { numRuns: 2000 })
    for (let n = 0; n < CAPTURED_LOOPBACK.length; n++) expect(() => decodeIpv4Udp(CAPTURED_LOOPBACK.subarray(0, n))).toThrow(ParseError)
    fc.assert(fc.property(
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
      fc.boolean(),
      (edits, fix) => attempt(edited(b => { for (const [at, byte] of edits) b[at % b.length] = byte }, fix))
    ), { numRuns: 3000 })
    // Not even a Buffer: still a ParseError.
    expect(() => decodeIpv4Udp('not bytes' as unknown as Buffer)).toThrow(ParseError)
  })
})
