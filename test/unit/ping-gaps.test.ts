import { describe, expect, it } from 'vitest'
import { pingGaps } from '../../scripts/lab/ping-gaps.js'

function output (answered: number[], sent: number): string {
  const lines = answered.map((s) => `64 bytes from 100.64.0.3: icmp_seq=${s} ttl=64 time=0.5 ms`)
  return [...lines, '', `${sent} packets transmitted, ${answered.length} received, 0% packet loss, time 1000ms`].join('\n')
}

describe('pingGaps', () => {
  it.each([
    { name: 'all answered', answered: [1, 2, 3, 4], sent: 4, gap: 0 },
    { name: 'a hole in the middle', answered: [1, 2, 6, 7], sent: 7, gap: 3 },
    { name: 'lost at the start and the end', answered: [3, 4], sent: 8, gap: 4 },
    { name: 'nothing answered', answered: [], sent: 5, gap: 5 },
    { name: 'late replies out of order still count', answered: [1, 3, 2, 4], sent: 4, gap: 0 }
  ])('$name', ({ answered, sent, gap }) => {
    const g = pingGaps(output(answered, sent), 0.2)
    expect(g).toEqual({ sent, received: new Set(answered).size, longestGap: gap, longestGapMs: Math.round(gap * 200) })
  })
})
