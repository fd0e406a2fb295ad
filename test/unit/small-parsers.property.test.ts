import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { parseProcNetRoute } from '../../src/client/portmap/default-gateway.js'
import { parseGoDuration } from '../../src/shared/duration.js'
import { parseEndpoint, parseIp, parsePrefix } from '../../src/shared/ip.js'
import { parseWgQuickConfig } from '../../src/shared/wg-quick-config.js'
import { mutated, returnsOrOwnError, TEXT_RUNS } from '../helpers/hostile.js'
import { testKey } from '../helpers/keys.js'

/*
 * The small text parsers under the options, the registry's tables and the hub's files (issue 11: hostile input):
 * each returns or throws one of the project's own one-line errors, for valid, mutated and arbitrary text alike.
 */
const v4 = fc.ipV4(); const v6 = fc.ipV6()
const port = fc.integer({ min: 0, max: 70000 })
const cases: Array<{ name: string, valid: fc.Arbitrary<string>, parse: (text: string) => unknown }> = [
  { name: 'durations (-t, --nat-check, ...)', valid: fc.tuple(fc.nat({ max: 99 }), fc.constantFrom('ms', 's', 'm', 'h'), fc.nat({ max: 59 }), fc.constantFrom('s', 'm')).map(([a, u, b, w]) => `${a}${u}${b}${w}`), parse: parseGoDuration },
  { name: 'addresses', valid: fc.oneof(v4, v6), parse: (t) => parseIp(t) },
  { name: 'prefixes', valid: fc.oneof(fc.tuple(v4, fc.nat({ max: 40 })).map(([a, b]) => `${a}/${b}`), fc.tuple(v6, fc.nat({ max: 140 })).map(([a, b]) => `${a}/${b}`)), parse: parsePrefix },
  { name: 'endpoints', valid: fc.oneof(fc.tuple(v4, port).map(([a, p]) => `${a}:${p}`), fc.tuple(v6, port).map(([a, p]) => `[${a}]:${p}`)), parse: parseEndpoint },
  {
    name: '/proc/net/route',
    valid: fc.array(fc.tuple(fc.constantFrom('eth0', 'wlan0'), fc.nat({ max: 0xffffffff }), fc.nat({ max: 0xffffffff }), fc.nat({ max: 7 }), fc.nat({ max: 1000 }), fc.nat({ max: 32 })), { maxLength: 3 })
      .map((rs) => ['Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT', ...rs.map(([dev, d, g, f, m, bits]) =>
        [dev, d.toString(16).toUpperCase().padStart(8, '0'), g.toString(16).toUpperCase().padStart(8, '0'), f.toString(16).padStart(4, '0'), '0', '0', String(m), (bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0).toString(16).toUpperCase().padStart(8, '0'), '0', '0', '0'].join('\t'))].join('\n') + '\n'),
    parse: (t) => parseProcNetRoute(t)
  },
  {
    name: 'wg-quick configs',
    valid: fc.tuple(fc.nat({ max: 65535 }), fc.array(fc.tuple(fc.nat({ max: 20 }), v4), { maxLength: 3 })).map(([p, peers]) =>
      `[Interface]\nPrivateKey = ${testKey('hub')}\nAddress = 100.64.0.1/24\nListenPort = ${p}\n` + peers.map(([i, a]) => `\n[Peer]\nPublicKey = ${testKey(`p${i}`)}\nAllowedIPs = 100.64.0.${i + 2}/32\nEndpoint = ${a}:51820\n`).join('')),
    // Its errors quote the bad line, but never the private key.
    parse: (t) => {
      try { return parseWgQuickConfig(t, '/etc/wireguard/wg0.conf') } catch (err) { expect(String((err as Error).message)).not.toContain(testKey('hub').slice(0, 20)); throw err }
    }
  }
]

describe('small text parsers on hostile text (property)', { timeout: 300_000 }, () => {
  for (const c of cases) {
    it(`${c.name}: ${TEXT_RUNS} mutated and arbitrary texts: a value or a one-line error of our own`, () => {
      fc.assert(fc.property(mutated(c.valid), (text) => { returnsOrOwnError(() => c.parse(text)) }), { numRuns: TEXT_RUNS })
    })
  }

  it('the valid forms parse', () => {
    expect(parseGoDuration('1m30s')).toBe(90_000)
    expect(parseEndpoint('[2001:db8::1]:51820').port).toBe(51820)
  })
})
