import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { parseTableResponse } from '../../src/client/registry-client.js'
import { vetTable } from '../../src/client/paths/vet-table.js'
import { parseAnnounce } from '../../src/server/registry/registry-http.js'
import { RegistryTable } from '../../src/server/registry/registry-table.js'
import { ParseError } from '../../src/shared/errors.js'
import { parsePrefix, prefixContains, prefixesOverlap } from '../../src/shared/ip.js'
import { tableResponseSchema, type TablePeer } from '../../src/shared/protocol.js'
import { newPeer } from '../helpers/fake-wg.js'
import { mutated, returnsOrOwnError, TEXT_RUNS } from '../helpers/hostile.js'
import { testKey } from '../helpers/keys.js'

const SELF = testKey('self'); const HUB = testKey('hub'); const HAND = testKey('hand-added')
const knownKeys = [SELF, HUB, HAND, ...Array.from({ length: 6 }, (_, i) => testKey(`k${i}`))]
const key = fc.oneof(fc.constantFrom(...knownKeys), fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('base64')))
const endpoint = fc.oneof(fc.tuple(fc.ipV4(), fc.integer({ min: 1, max: 65535 })).map(([a, p]) => `${a}:${p}`), fc.tuple(fc.ipV6(), fc.integer({ min: 1, max: 65535 })).map(([a, p]) => `[${a}]:${p}`))
// Prefixes inside, around and outside the mesh (100.64.0.0/24), overlapping each other often.
const prefix = fc.oneof(
  fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 20, max: 32 })).map(([h, b]) => `100.64.0.${h}/${b}`),
  fc.tuple(fc.ipV4(), fc.integer({ min: 0, max: 32 })).map(([a, b]) => `${a}/${b}`),
  fc.tuple(fc.ipV6(), fc.integer({ min: 0, max: 128 })).map(([a, b]) => `${a}/${b}`),
  fc.constantFrom('0.0.0.0/0', '100.64.0.0/24', '100.64.0.1/32', '10.0.0.0/8', '::/0')
)
const announce = fc.record({
  natClass: fc.constantFrom('public', 'easy', 'hard', 'unknown'),
  mappedEndpoint: fc.option(endpoint, { nil: null }),
  lanEndpoints: fc.array(endpoint, { maxLength: 4 }),
  ready: fc.array(key, { maxLength: 3 })
})
const tablePeer = fc.record({
  publicKey: key,
  endpoint: fc.option(endpoint, { nil: null }),
  allowedIps: fc.array(prefix, { maxLength: 4 }),
  latestHandshake: fc.nat(),
  online: fc.boolean(),
  announce: fc.option(announce, { nil: null })
})
const table = fc.record({
  epoch: fc.string({ maxLength: 12, unit: fc.constantFrom(...'0123456789abcdef') }),
  version: fc.nat(),
  now: fc.nat(),
  relay: fc.boolean(),
  full: fc.boolean(),
  self: tablePeer,
  peers: fc.array(tablePeer, { maxLength: 8 }),
  removed: fc.array(key, { maxLength: 3 })
})

const mesh = [parsePrefix('100.64.0.0/24')]
const device = {
  publicKey: SELF,
  listenPort: 51820,
  peers: [newPeer(HUB, { allowedIps: ['100.64.0.0/24'] }), newPeer(HAND, { allowedIps: ['100.64.0.200/29'] })]
}

describe('registry table responses on the client (property)', { timeout: 180_000 }, () => {
  it(`${TEXT_RUNS} mutated and arbitrary bodies: a checked table or a one-line ParseError`, () => {
    fc.assert(fc.property(mutated(table.map((t) => JSON.stringify(t))), (body) => {
      const r = returnsOrOwnError(() => parseTableResponse(body))
      if (r instanceof Error) expect(r).toBeInstanceOf(ParseError)
      else expect(tableResponseSchema.safeParse(r).success).toBe(true)
    }), { numRuns: TEXT_RUNS })
  })

  it('JSON nested a million deep, or 10 MB of one string: a ParseError, no stack overflow', () => {
    for (const body of ['['.repeat(1_000_000), '{"self":' + '['.repeat(100_000) + ']'.repeat(100_000) + '}', `{"epoch":"${'x'.repeat(10_000_000)}"}`]) {
      expect(returnsOrOwnError(() => parseTableResponse(body))).toBeInstanceOf(ParseError)
    }
  })

  it('any schema-valid table: vetting routes nothing outside the mesh, never self, the hub or a hand-added peer, no prefix twice', () => {
    fc.assert(fc.property(table, (t) => {
      const parsed = parseTableResponse(JSON.stringify(t))
      const { desired, warnings } = vetTable(parsed.peers, {
        selfKey: SELF,
        registryKey: HUB,
        meshPrefixes: mesh,
        registryAddresses: ['100.64.0.1'],
        hubPrefixes: [parsePrefix('100.64.0.0/24')],
        managed: new Set([testKey('k0')]),
        device
      })
      expect(desired.has(SELF)).toBe(false)
      expect(desired.has(HUB)).toBe(false)
      expect(desired.has(HAND)).toBe(false)
      const all = [...desired.values()].flatMap((d) => d.allowedIps.map(parsePrefix))
      for (const p of all) {
        expect(prefixContains(mesh[0]!, p) && p.bits > 24).toBe(true)
        expect(prefixesOverlap(p, parsePrefix('100.64.0.200/29'))).toBe(false)
        expect(prefixesOverlap(p, parsePrefix('100.64.0.1/32'))).toBe(false)
      }
      for (let i = 0; i < all.length; i++) for (let j = i + 1; j < all.length; j++) expect(prefixesOverlap(all[i]!, all[j]!)).toBe(false)
      for (const w of warnings) expect(w).not.toMatch(/[\r\n]/)
    }), { numRuns: 3000 })
  })
})

describe('announcements on the registry (property)', { timeout: 180_000 }, () => {
  it(`${TEXT_RUNS} mutated and arbitrary bodies: an announcement or a one-line ParseError`, () => {
    fc.assert(fc.property(mutated(announce.map((a) => JSON.stringify(a))), (body) => {
      const r = returnsOrOwnError(() => parseAnnounce(body))
      if (r instanceof Error) expect(r).toBeInstanceOf(ParseError)
    }), { numRuns: TEXT_RUNS })
  })

  it('whatever a peer announces, the table the registry serves stays one its clients accept', () => {
    fc.assert(fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 3 }), mutated(announce.map((a) => JSON.stringify(a)))), { maxLength: 6 }), (announces) => {
      const t = new RegistryTable()
      const keys = [0, 1, 2, 3].map((i) => testKey(`peer${i}`))
      t.update({ publicKey: HUB, listenPort: 1, peers: keys.map((k, i) => newPeer(k, { allowedIps: [`100.64.0.${i + 2}/32`], endpoint: { address: '198.18.0.1', port: 1000 + i } })) }, 1000)
      for (const [who, body] of announces) {
        let a
        try { a = parseAnnounce(body) } catch { continue }
        t.announce(keys[who]!, a)
      }
      const delta = t.since(0, keys[0]!)
      const self = t.get(keys[0]!) as TablePeer
      const body = `{"epoch":"${t.epoch}","version":${delta.version},"now":${t.now},"relay":false,"full":true,"self":${JSON.stringify(self)},"peers":[${Buffer.concat(delta.peers).toString()}],"removed":[]}`
      expect(parseTableResponse(body).peers).toHaveLength(3)
    }), { numRuns: 2000 })
  })
})

describe('a refused table names where and what', () => {
  it('quotes the bad value at the path the schema rejected', () => {
    const entry = (key: string, endpoint: string): Record<string, unknown> => ({ publicKey: testKey(key), endpoint, allowedIps: [], latestHandshake: 0, online: true })
    const body = JSON.stringify({ epoch: 'e', version: 1, now: 1, relay: false, full: true, self: entry('me', '1.2.3.5:1'), peers: [entry('p', '1.2.3.4:99999')], removed: [] })
    expect(() => parseTableResponse(body)).toThrow(/^registry response rejected: 'peers\.0\.endpoint': 'not an endpoint.*' \(it is '1\.2\.3\.4:99999'\)$/)
    expect(() => parseTableResponse('{"version":-1}')).toThrow(/'version': .* \(it is '-1'\)$/)
  })
})
