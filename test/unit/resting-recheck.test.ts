import { describe, expect, it } from 'vitest'
import { NAT_RECHECK_AT_REST_MS, natRecheckMs } from '../../src/client/nat/resting-recheck.js'
import { NAT_RECHECK_MS } from '../../src/client/nat/nat-monitor.js'

describe('natRecheckMs', () => {
  it.each<[string, number, boolean, number | undefined, number]>([
    ['not at rest: the usual interval', NAT_RECHECK_MS, false, undefined, NAT_RECHECK_MS],
    ['at rest: the resting interval', NAT_RECHECK_MS, true, undefined, NAT_RECHECK_AT_REST_MS],
    ['at rest, a longer --nat-check is kept', 60_000, true, undefined, 60_000],
    ['not at rest, a longer --nat-check is kept', 60_000, false, undefined, 60_000],
    ['at rest, a resting interval given', 500, true, 3000, 3000],
    ['not at rest, a resting interval given', 500, false, 3000, 500]
  ])('%s', (_name, recheckMs, atRest, restingMs, want) => {
    expect(natRecheckMs(recheckMs, atRest, restingMs)).toBe(want)
  })
  it('rests longer than the usual interval', () => {
    expect(NAT_RECHECK_AT_REST_MS).toBeGreaterThan(NAT_RECHECK_MS)
  })
})
