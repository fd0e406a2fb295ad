import { describe, expect, it } from 'vitest'
import { meanCycleCpuMs, RETRY_READ_BUDGET, RETRY_READ_MAX_MS, retryReadMs } from '../../src/client/paths/read-budget.js'

describe('retryReadMs: reads for retries within a share of a core', () => {
  it.each([
    // [cycle CPU ms, expected interval ms]
    [0.5, 1000], // a few peers: every second, as before
    [10, 1000], // 1,000 peers: 10 ms a read, 1 % of a core at one a second: unchanged
    [20, 1000], // exactly the budget
    [40, 2000], // twice the budget: half as often
    [80, 4000],
    [500, RETRY_READ_MAX_MS] // 10,000 peers on a slow machine: capped, a retry's handshake is still seen in its window
  ])('a cycle of %s ms CPU: a read every %s ms', (cpuMs, expected) => {
    expect(retryReadMs(1000, cpuMs)).toBe(expected)
  })

  it('keeps reads within the budget below the cap', () => {
    for (const cpuMs of [25, 33, 60, 99]) expect(cpuMs / retryReadMs(1000, cpuMs)).toBeLessThanOrEqual(RETRY_READ_BUDGET + 1e-9)
  })
})

describe('meanCycleCpuMs', () => {
  it('starts at the first cycle and follows later ones without jumping on one outlier', () => {
    let mean = meanCycleCpuMs(undefined, 10)
    expect(mean).toBe(10)
    mean = meanCycleCpuMs(mean, 110)
    expect(mean).toBeCloseTo(40)
    for (let i = 0; i < 30; i++) mean = meanCycleCpuMs(mean, 10)
    expect(mean).toBeCloseTo(10, 1)
  })
})
