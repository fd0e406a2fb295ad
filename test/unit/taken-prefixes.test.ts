import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { TakenPrefixes } from '../../src/client/paths/taken-prefixes.js'
import { parsePrefix, prefixesOverlap } from '../../src/shared/ip.js'

const taken = (...texts: string[]): TakenPrefixes => { const t = new TakenPrefixes(); for (const x of texts) t.add(parsePrefix(x)); return t }

describe('TakenPrefixes', () => {
  it.each([
    [['100.64.0.2/32'], '100.64.0.2/32', true],
    [['100.64.0.2/32'], '100.64.0.3/32', false],
    [['100.64.0.2/32'], '100.64.0.0/30', true], // a network holding a taken host
    [['100.64.0.2/32'], '100.64.0.4/30', false],
    [['100.64.1.0/24'], '100.64.1.9/32', true], // a host inside a taken network
    [['100.64.1.0/24'], '100.64.0.0/16', true],
    [['100.64.1.0/24'], '100.64.2.0/24', false],
    [['fd00::2/128'], 'fd00::2/128', true],
    [['fd00::2/128'], 'fd00::/64', true],
    [['fd00::2/128'], '100.64.0.2/32', false], // families never overlap
    [[], '100.64.0.2/32', false]
  ])('taken %j, %s overlaps: %s', (list, p, expected) => {
    expect(taken(...list).overlaps(parsePrefix(p))).toBe(expected)
  })

  it('agrees with a scan of prefixesOverlap over every earlier prefix', () => {
    const prefix = fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 255 }), fc.constantFrom(22, 24, 30, 31, 32))
      .map(([c, d, bits]) => parsePrefix(`100.64.${c}.${d}/${bits}`))
    fc.assert(fc.property(fc.array(prefix, { maxLength: 40 }), (list) => {
      const t = new TakenPrefixes()
      for (const [i, p] of list.entries()) {
        expect(t.overlaps(p)).toBe(list.slice(0, i).some((q) => prefixesOverlap(q, p)))
        t.add(p)
      }
    }), { numRuns: 300 })
  })
})
