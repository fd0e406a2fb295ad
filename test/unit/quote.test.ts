import { describe, expect, it } from 'vitest'
import { quote } from '../../src/shared/errors.js'

describe('quote (values from outside in error lines)', () => {
  it('keeps a line one line, with no control character: a terminal escape from a registry or a file is blanked', () => {
    expect(quote('a\nb\tc\r')).toBe("'a b c '")
    expect(quote('\u001b[31mred\u001b[0m\u0007')).toBe("' [31mred [0m '")
    expect(quote('\u009b2J')).toBe("' 2J'")
  })

  it('bounds the length and quotes non-strings as JSON', () => {
    expect(quote('x'.repeat(100))).toBe(`'${'x'.repeat(77)}...'`)
    expect(quote(42)).toBe("'42'")
    expect(quote({ a: 1 })).toBe('\'{"a":1}\'')
  })
})
