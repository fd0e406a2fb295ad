import { describe, expect, it } from 'vitest'
import { formatDuration, parseGoDuration } from '../../src/shared/duration.js'
import { UsageError } from '../../src/shared/errors.js'

describe('parseGoDuration', () => {
  it.each([
    ['300ms', 300], ['30s', 30_000], ['1m', 60_000], ['1h30m', 5_400_000], ['1.5s', 1500], ['2h45m30.5s', 9_930_500], ['0', 0], ['500us', 0.5]
  ])('%s = %d ms', (text, ms) => {
    expect(parseGoDuration(text)).toBe(ms)
  })

  it.each(['', '5', '1 hour', 'm', '1d', '1m-', 'abc'])('rejects %j quoting it', (text) => {
    expect(() => parseGoDuration(text)).toThrow(UsageError)
    expect(() => parseGoDuration(text)).toThrow(`'${text}'`)
  })

  it('formats like Go', () => {
    expect(formatDuration(60_000)).toBe('1m')
    expect(formatDuration(5_400_000)).toBe('1h30m')
    expect(formatDuration(250)).toBe('250ms')
  })
})
