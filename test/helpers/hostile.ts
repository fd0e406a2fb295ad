import fc from 'fast-check'
import { expect } from 'vitest'
import { WgnatError } from '../../src/shared/errors.js'

/** Cases for the byte and text parsers (issue 11: at least 10,000 each). */
export const TEXT_RUNS = 10_000

/**
 * Run `fn`; it may return or throw one of the project's own errors with a one-line message, nothing else (a
 * TypeError or RangeError from deep inside would be a crash in a daemon).
 */
export function returnsOrOwnError<T> (fn: () => T): T | WgnatError {
  try {
    return fn()
  } catch (err) {
    if (!(err instanceof WgnatError)) throw err
    expect(err.message).not.toMatch(/[\r\n]/)
    expect(err.message.length).toBeLessThan(400)
    return err
  }
}

/**
 * Hostile variants of a valid text: truncated, a slice replaced with junk, bytes flipped, a field duplicated,
 * separators inserted, or wholly arbitrary text (unicode included).
 */
export function mutated (valid: fc.Arbitrary<string>): fc.Arbitrary<string> {
  const junk = fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('\t', '\n', ',', '"', '{', '}', '[', ']', ':', '/', '(none)', 'off', '-1', '1e309', '99999999999999999', '\u0000', '\uffff', 'null', 'true', '[]', '{}'))
  return fc.oneof(
    { weight: 1, arbitrary: fc.string({ maxLength: 300, unit: 'binary' }) },
    { weight: 1, arbitrary: valid.chain((v) => fc.nat({ max: v.length }).map((n) => v.slice(0, n))) },
    { weight: 4, arbitrary: valid.chain((v) => fc.tuple(fc.nat({ max: v.length }), fc.nat({ max: 8 }), junk).map(([at, len, j]) => v.slice(0, at) + j + v.slice(at + len))) },
    { weight: 2, arbitrary: valid.chain((v) => fc.array(fc.tuple(fc.nat({ max: Math.max(0, v.length - 1) }), fc.integer({ min: 0, max: 0xffff })), { minLength: 1, maxLength: 4 }).map((flips) => {
      const chars = [...v]
      for (const [at, code] of flips) if (at < chars.length) chars[at] = String.fromCharCode(code)
      return chars.join('')
    })) },
    { weight: 1, arbitrary: valid }
  )
}
