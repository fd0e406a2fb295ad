import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { ParseError } from '../../src/shared/errors.js'
import { parseWgDump } from '../../src/shared/wg-dump.js'
import { mutated, returnsOrOwnError, TEXT_RUNS } from '../helpers/hostile.js'

const key = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('base64'))
const v4 = fc.ipV4()
const endpoint = fc.oneof(fc.constant('(none)'), fc.tuple(v4, fc.integer({ min: 1, max: 65535 })).map(([a, p]) => `${a}:${p}`), fc.tuple(fc.ipV6(), fc.integer({ min: 1, max: 65535 })).map(([a, p]) => `[${a}]:${p}`))
const prefix = fc.oneof(fc.tuple(v4, fc.integer({ min: 0, max: 32 })).map(([a, b]) => `${a}/${b}`), fc.tuple(fc.ipV6(), fc.integer({ min: 0, max: 128 })).map(([a, b]) => `${a}/${b}`))
const peerLine = fc.tuple(key, fc.oneof(fc.constant('(none)'), key), endpoint, fc.oneof(fc.constant('(none)'), fc.array(prefix, { minLength: 1, maxLength: 4 }).map((a) => a.join(','))),
  fc.nat(), fc.nat(), fc.nat(), fc.oneof(fc.constant('off'), fc.integer({ min: 1, max: 65535 }).map(String))).map((f) => f.join('\t'))
const privateKey = key
const dump = fc.tuple(privateKey, key, fc.integer({ min: 0, max: 65535 }), fc.array(peerLine, { maxLength: 5 }))
  .filter(([priv, pub, , peers]) => priv !== pub && !peers.some((p) => p.includes(priv)))
  .map(([priv, pub, port, peers]) => ({ priv, text: [`${priv}\t${pub}\t${port}\toff`, ...peers].join('\n') + '\n' }))

describe('parseWgDump on hostile text (property)', { timeout: 180_000 }, () => {
  it('parses every well-formed dump and keeps no key material', () => {
    fc.assert(fc.property(dump, ({ priv, text }) => {
      const d = parseWgDump(text)
      expect(d.peers).toHaveLength(text.trim().split('\n').length - 1)
      expect(JSON.stringify(d)).not.toContain(priv)
    }), { numRuns: 2000 })
  })

  it(`${TEXT_RUNS} mutated dumps: a device or a one-line ParseError that never quotes the private key`, () => {
    fc.assert(fc.property(dump.chain(({ priv, text }) => mutated(fc.constant(text)).map((t) => ({ priv, text: t }))), ({ priv, text }) => {
      const r = returnsOrOwnError(() => parseWgDump(text))
      if (r instanceof Error) {
        expect(r).toBeInstanceOf(ParseError)
        expect(r.message).not.toContain(priv)
        expect(r.message).not.toContain(priv.slice(0, 20))
      } else {
        for (const p of r.peers) expect(p.allowedIps.every((a) => a.includes('/'))).toBe(true)
      }
    }), { numRuns: TEXT_RUNS })
  })

  it(`${TEXT_RUNS} arbitrary texts, unicode and NULs included`, () => {
    fc.assert(fc.property(fc.string({ maxLength: 400, unit: 'binary' }), (text) => { returnsOrOwnError(() => parseWgDump(text)) }), { numRuns: TEXT_RUNS })
  })
})
