import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { ParseError } from '../../src/shared/errors.js'
import { decodeNatPmpResponse, encodeNatPmpExternalAddressRequest, encodeNatPmpMapRequest, natPmpResultName } from '../../src/client/portmap/nat-pmp-codec.js'
import { decodePcpResponse, encodePcpMapRequest, pcpResultName, PCP_HEADER_LENGTH } from '../../src/client/portmap/pcp-codec.js'

const hex = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ''), 'hex')
const NONCE = hex('00112233 44556677 8899aabb')

describe('NAT-PMP codec (RFC 6886)', () => {
  it.each([
    ['map UDP 51820 for an hour', { protocol: 'udp' as const, internalPort: 51820, suggestedExternalPort: 51820, lifetimeS: 3600 }, '00 01 0000 ca6c ca6c 00000e10'],
    ['map TCP, any external port', { protocol: 'tcp' as const, internalPort: 80, suggestedExternalPort: 0, lifetimeS: 7200 }, '00 02 0000 0050 0000 00001c20'],
    ['delete: lifetime 0 forces external port 0', { protocol: 'udp' as const, internalPort: 51820, suggestedExternalPort: 40000, lifetimeS: 0 }, '00 01 0000 ca6c 0000 00000000']
  ])('encodes %s', (_name, req, expected) => {
    expect(encodeNatPmpMapRequest(req).toString('hex')).toBe(hex(expected).toString('hex'))
  })

  it('encodes the external address request as two bytes', () => {
    expect(encodeNatPmpExternalAddressRequest()).toEqual(Buffer.from([0, 0]))
  })

  it.each([
    ['a UDP mapping', '00 81 0000 00001234 ca6c 9c41 00000e10', { kind: 'map', protocol: 'udp', resultCode: 0, epochS: 0x1234, internalPort: 51820, externalPort: 40001, lifetimeS: 3600 }],
    ['a refused TCP mapping', '00 82 0002 00000001 0050 0000 00000000', { kind: 'map', protocol: 'tcp', resultCode: 2, epochS: 1, internalPort: 80, externalPort: 0, lifetimeS: 0 }],
    ['the external address', '00 80 0000 00000010 c6 12 0b 02', { kind: 'external', resultCode: 0, epochS: 16, externalAddress: '198.18.11.2' }],
    ['a short unsupported-version error', '00 81 0001 00000000', { kind: 'error', opcode: 1, resultCode: 1 }],
    ['an error for an unknown opcode', '00 85 0005 00000000', { kind: 'error', opcode: 5, resultCode: 5 }]
  ])('decodes %s', (_name, bytes, expected) => {
    expect(decodeNatPmpResponse(hex(bytes))).toEqual(expected)
  })

  it.each([
    ['too short', '00 81 00'],
    ['PCP version', '02 81 0000 00000000 0000 0000 00000000'],
    ['a request, not an answer', '00 01 0000 ca6c ca6c 00000e10'],
    ['a truncated success', '00 81 0000 00000001 ca6c'],
    ['a success for an unknown opcode', '00 85 0000 00000000']
  ])('rejects %s with a ParseError', (_name, bytes) => {
    expect(() => decodeNatPmpResponse(hex(bytes))).toThrow(ParseError)
  })

  it('names result codes', () => {
    expect(natPmpResultName(2)).toBe('not authorized or refused')
    expect(natPmpResultName(99)).toBe('result code 99')
  })

  it('never throws anything but ParseError on arbitrary bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      try { decodeNatPmpResponse(bytes) } catch (err) { if (!(err instanceof ParseError)) throw err }
    }), { numRuns: 2000 })
  })

  it('decodes what a server would encode (round trip of the mapping answer)', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 0xffffffff }), fc.constantFrom(1, 2), (ip, ep, life, op) => {
      const b = Buffer.alloc(16)
      b.writeUInt8(128 + op, 1); b.writeUInt16BE(ip, 8); b.writeUInt16BE(ep, 10); b.writeUInt32BE(life, 12)
      const r = decodeNatPmpResponse(b)
      expect(r).toMatchObject({ kind: 'map', internalPort: ip, externalPort: ep, lifetimeS: life, protocol: op === 1 ? 'udp' : 'tcp' })
    }))
  })
})

describe('PCP codec (RFC 6887), MAP opcode', () => {
  it('encodes a MAP request: header with the IPv4-mapped client address, then nonce, protocol, ports, any IPv4', () => {
    const buf = encodePcpMapRequest({ nonce: NONCE, protocol: 'udp', internalPort: 51820, suggestedExternalPort: 51820, lifetimeS: 7200, clientAddress: '198.19.2.2' })
    expect(buf.toString('hex')).toBe(hex(`
      02 01 0000 00001c20 00000000 00000000 0000ffff c6130202
      00112233 44556677 8899aabb 11 000000 ca6c ca6c 00000000 00000000 0000ffff 00000000`).toString('hex'))
  })

  it('encodes a delete (lifetime 0) and a suggested external address', () => {
    const buf = encodePcpMapRequest({ nonce: NONCE, protocol: 'tcp', internalPort: 22, suggestedExternalPort: 0, suggestedExternalAddress: '198.18.12.2', lifetimeS: 0, clientAddress: '10.0.0.5' })
    expect(buf.readUInt32BE(4)).toBe(0)
    expect(buf[PCP_HEADER_LENGTH + 12]).toBe(6)
    expect(buf.subarray(PCP_HEADER_LENGTH + 20).toString('hex')).toBe('00000000000000000000ffffc6120c02')
  })

  it('refuses a nonce of the wrong length', () => {
    expect(() => encodePcpMapRequest({ nonce: Buffer.alloc(8), protocol: 'udp', internalPort: 1, suggestedExternalPort: 0, lifetimeS: 1, clientAddress: '10.0.0.1' })).toThrow(/nonce: 8 bytes/)
  })

  const answer = (result: number, extra = ''): Buffer => hex(`
      02 81 00 ${result.toString(16).padStart(2, '0')} 00001c20 0000002a 00000000 00000000 00000000
      00112233 44556677 8899aabb 11 000000 ca6c 9c41 00000000 00000000 0000ffff c6120c02 ${extra}`)

  it.each([
    ['a granted mapping', answer(0), { kind: 'map', resultCode: 0, lifetimeS: 7200, epochS: 42, protocol: 17, internalPort: 51820, externalPort: 40001, externalAddress: '198.18.12.2' }],
    ['a mapping with an option after it', answer(0, '12 00 0004 00000000'), { kind: 'map', resultCode: 0, externalPort: 40001 }],
    ['a refused mapping', answer(2), { kind: 'map', resultCode: 2 }],
    ['a header-only UNSUPP_VERSION', hex('02 81 00 01 00000000 00000000 00000000 00000000 00000000'), { kind: 'other', opcode: 1, resultCode: 1 }],
    ['a NAT-PMP-only gateway', hex('00 81 0001 00000000'), { kind: 'nat-pmp' }]
  ])('decodes %s', (_name, bytes, expected) => {
    const r = decodePcpResponse(bytes)
    expect(r).toMatchObject(expected)
    if (r.kind === 'map') expect(r.nonce).toEqual(NONCE)
  })

  it.each([
    ['empty', ''],
    ['version 3', '03 81 0000 00000000'],
    ['a truncated header', '02 81 00 00 00001c20'],
    ['a request', '02 01 0000 00001c20 00000000 00000000 0000ffff c6130202'],
    ['a NAT-PMP request', '00 01 0000 ca6c ca6c 00000e10'],
    ['a success without its MAP body', '02 81 00 00 00000000 00000000 00000000 00000000 00000000'],
    ['a length not a multiple of 4', '02 81 00 00 00000000 00000000 00000000 00000000 00000000 00']
  ])('rejects %s with a ParseError', (_name, bytes) => {
    expect(() => decodePcpResponse(hex(bytes))).toThrow(ParseError)
  })

  it('names result codes', () => {
    expect(pcpResultName(2)).toBe('NOT_AUTHORIZED')
    expect(pcpResultName(200)).toBe('result code 200')
  })

  it('never throws anything but ParseError on arbitrary bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 1200 }), (bytes) => {
      try { decodePcpResponse(bytes) } catch (err) { if (!(err instanceof ParseError)) throw err }
    }), { numRuns: 2000 })
    // Version 2 with the response bit: the branch arbitrary bytes rarely reach.
    fc.assert(fc.property(fc.uint8Array({ minLength: 22, maxLength: 200 }), fc.integer({ min: 0, max: 127 }), (rest, op) => {
      try { decodePcpResponse(Buffer.concat([Buffer.from([2, 0x80 | op]), rest])) } catch (err) { if (!(err instanceof ParseError)) throw err }
    }), { numRuns: 2000 })
  })

  it('round-trips the MAP fields of any request through a server-style answer', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 12, maxLength: 12 }), fc.integer({ min: 1, max: 0xffff }), fc.integer({ min: 0, max: 0xffff }), fc.ipV4(), (nonce, ip, ep, addr) => {
      const req = encodePcpMapRequest({ nonce, protocol: 'udp', internalPort: ip, suggestedExternalPort: ep, lifetimeS: 60, clientAddress: addr })
      req[1] = 0x81
      const r = decodePcpResponse(req)
      expect(r).toMatchObject({ kind: 'map', internalPort: ip, externalPort: ep, protocol: 17, externalAddress: '0.0.0.0' })
      if (r.kind === 'map') expect([...r.nonce]).toEqual([...nonce])
    }))
  })
})

describe('default gateway (/proc/net/route)', async () => {
  const { parseProcNetRoute } = await import('../../src/client/portmap/default-gateway.js')
  const HEAD = 'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT'
  const route = (dev: string, dst: string, gw: string, flags: string, metric: number, mask: string): string => `${dev}\t${dst}\t${gw}\t${flags}\t0\t0\t${metric}\t${mask}\t0\t0\t0`
  it.each([
    // Little-endian hosts print the network-order address as a host-order number: 010213C6 is 198.19.2.1.
    ['one default route', [route('eth0', '00000000', '010213C6', '0003', 0, '00000000'), route('eth0', '000213C6', '00000000', '0001', 0, '00FFFFFF')], '198.19.2.1'],
    ['the lowest metric wins', [route('eth0', '00000000', '0100000A', '0003', 600, '00000000'), route('wlan0', '00000000', '0101A8C0', '0003', 100, '00000000')], '192.168.1.1'],
    ['a point-to-point default route has no gateway', [route('wg0', '00000000', '00000000', '0001', 0, '00000000')], null],
    ['a route that is down is not used', [route('eth0', '00000000', '010213C6', '0002', 0, '00000000')], null],
    ['a route to a network through a gateway is not the default', [route('eth0', '000013C6', '010213C6', '0003', 0, '0000FFFF')], null],
    ['no route at all', [], null]
  ])('%s', (_name, lines, expected) => {
    expect(parseProcNetRoute([HEAD, ...lines].join('\n') + '\n', true)).toBe(expected)
  })
  it('reads addresses in host order on a big-endian host', () => {
    expect(parseProcNetRoute([HEAD, route('eth0', '00000000', 'C6130201', '0003', 0, '00000000')].join('\n'), false)).toBe('198.19.2.1')
  })
  it('rejects a table it does not recognise, quoting it', () => {
    expect(() => parseProcNetRoute('default via 10.0.0.1 dev eth0\n', true)).toThrow(ParseError)
    expect(() => parseProcNetRoute([HEAD, route('eth0', '0000000G', '010213C6', '0003', 0, '00000000')].join('\n'), true)).toThrow(/unexpected line '.*0000000G/)
  })
  it('reads this host\'s own table', async () => {
    const { readFile } = await import('node:fs/promises')
    const text = await readFile('/proc/net/route', 'utf8').catch(() => null)
    if (text === null) return
    const gw = parseProcNetRoute(text)
    expect(gw === null || /^\d+\.\d+\.\d+\.\d+$/.test(gw)).toBe(true)
  })
})
