import { expect } from 'vitest'
import { ParseError } from '../../src/shared/errors.js'

/** Run `fn`, expect it to throw a ParseError, and return it for further checks. */
export function parseErrorOf (fn: () => unknown): ParseError {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(ParseError)
    return err as ParseError
  }
  throw new Error('expected a ParseError, got a result')
}
