import { describe, expect, it } from 'vitest'
import { formatLogLine } from '../../src/shared/log-line.js'

describe('formatLogLine', () => {
  const time = new Date(2026, 10, 28, 9, 5, 7, 42).getTime()
  it.each([
    [{ level: 30, time, msg: 'syncing wg0' }, '[09:05:07.042] INFO: syncing wg0'],
    [{ level: 40, time, msg: 'slow', name: 'wgnat-client' }, '[09:05:07.042] WARN: slow'],
    [{ level: 20, time, msg: 'table received', version: 3, full: true }, '[09:05:07.042] DEBUG: table received {"version":3,"full":true}'],
    [{ level: 50, time, msg: 'bad', err: { message: 'boom', stack: 'Error: boom\n    at x' } }, '[09:05:07.042] ERROR: bad {"err":"boom"}'],
    [{ level: 30, time, msg: 'two\nlines' }, '[09:05:07.042] INFO: two lines'],
    [{ level: 35, msg: 'odd level' }, '[--:--:--.---] L35: odd level'],
    [{}, '[--:--:--.---] INFO: ']
  ])('%j', (record, line) => {
    expect(formatLogLine(record)).toBe(line)
  })
})
