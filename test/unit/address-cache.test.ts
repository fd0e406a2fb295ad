import { describe, expect, it } from 'vitest'
import { AddressCache } from '../../src/client/nat/address-cache.js'
import type { NetlinkAddress } from '../../src/shared/netlink-addresses.js'

const addr = (address: string): NetlinkAddress => ({ ifname: 'eth0', ifindex: 2, family: 'IPv4', address, bits: 24, scope: 'global', tentative: false, deprecated: false })

function harness (maxAgeMs?: number) {
  let now = 1_000_000
  let current = [addr('192.168.1.10')]
  let reads = 0
  let gate: Promise<void> | undefined
  const cache = new AddressCache({
    read: async () => { reads++; const answer = current; await gate; return answer },
    ...(maxAgeMs === undefined ? {} : { maxAgeMs }),
    nowMs: () => now
  })
  return {
    cache,
    reads: () => reads,
    set: (a: string) => { current = [addr(a)] },
    advance: (ms: number) => { now += ms },
    hold: () => { let release: () => void = () => {}; gate = new Promise<void>((resolve) => { release = resolve }); return () => { gate = undefined; release() } }
  }
}

const addressesOf = (list: NetlinkAddress[]): string[] => list.map((a) => a.address)

describe('AddressCache', () => {
  it('reads every time until told that changes are watched', async () => {
    const h = harness()
    await h.cache.get()
    await h.cache.get()
    expect(h.reads()).toBe(2)
  })

  it('once changes are watched: reuses the list until invalidate(), then reads the new one', async () => {
    const h = harness()
    h.cache.trustChanges()
    expect(addressesOf(await h.cache.get())).toEqual(['192.168.1.10'])
    h.set('10.0.0.5')
    h.advance(59_000)
    expect(addressesOf(await h.cache.get())).toEqual(['192.168.1.10'])
    expect(h.reads()).toBe(1)
    h.cache.invalidate()
    expect(addressesOf(await h.cache.get())).toEqual(['10.0.0.5'])
    expect(h.reads()).toBe(2)
  })

  it('reads again when the list is older than maxAgeMs, even without a change notification', async () => {
    const h = harness(10_000)
    h.cache.trustChanges()
    await h.cache.get()
    h.advance(9_999)
    await h.cache.get()
    expect(h.reads()).toBe(1)
    h.advance(1)
    await h.cache.get()
    expect(h.reads()).toBe(2)
  })

  it('maxAgeMs 0: never reuses', async () => {
    const h = harness(0)
    h.cache.trustChanges()
    await h.cache.get()
    await h.cache.get()
    expect(h.reads()).toBe(2)
  })

  it('a change reported while a read is in flight: that read is used once, not kept', async () => {
    const h = harness()
    h.cache.trustChanges()
    const release = h.hold()
    const inFlight = h.cache.get()
    h.set('10.0.0.5')
    h.cache.invalidate()
    release()
    expect(addressesOf(await inFlight)).toEqual(['192.168.1.10'])
    expect(addressesOf(await h.cache.get())).toEqual(['10.0.0.5'])
    expect(h.reads()).toBe(2)
    await h.cache.get()
    expect(h.reads()).toBe(2)
  })
})
