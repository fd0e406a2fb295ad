import { afterEach, describe, expect, it, vi } from 'vitest'
import { NatMonitor, type NatMonitorComponents, type NatMonitorInit } from '../../src/client/nat/nat-monitor.js'
import type { StunProbeComponents, StunProbeInit, StunProbeResult } from '../../src/client/nat/stun-probe.js'
import { formatEndpoint, parsePrefix, type Endpoint } from '../../src/shared/ip.js'
import { silentLogger } from '../../src/shared/log.js'
import type { NetlinkAddress, NetworkChange } from '../../src/shared/netlink-addresses.js'
import type { Announce } from '../../src/shared/protocol.js'
import { RawSocketUnavailable, type RawUdpSender } from '../../src/shared/raw-udp.js'
import { ep } from '../helpers/fake-wg.js'

/**
 * The netlink change subscription is replaced by a fake the tests fire by hand (the real one depends on the
 * machine's network and on permissions); everything else NatMonitor does goes through its injected components.
 */
const watcher = vi.hoisted(() => ({
  onChange: undefined as ((change: NetworkChange) => void | Promise<void>) | undefined,
  fail: undefined as Error | undefined
}))
vi.mock('../../src/shared/netlink-addresses.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/shared/netlink-addresses.js')>()
  return {
    ...real,
    watchAddressChanges: (onChange: (change: NetworkChange) => void | Promise<void>, signal: AbortSignal): void => {
      if (watcher.fail !== undefined) throw watcher.fail
      watcher.onChange = onChange
      signal.addEventListener('abort', () => { watcher.onChange = undefined })
    },
    listAddresses: async (): Promise<NetlinkAddress[]> => { throw new Error('test bug: the real listAddresses was called') }
  }
})

const LISTEN_PORT = 51820
const MESH = [parsePrefix('100.64.0.0/24')]
const HUB = ep('198.18.0.1:51820')
const STUN_1 = ep('198.18.0.1:3478'); const STUN_2 = ep('198.51.100.2:3478')
const MAPPED = ep('203.0.113.7:40000'); const MAPPED_MOVED = ep('203.0.113.7:41234'); const MAPPED_OTHER = ep('203.0.113.7:40001')
/** A public address on the host itself, for the `public` class. */
const OWN_PUBLIC = '198.18.77.7'

function addr (ifname: string, address: string, over: Partial<NetlinkAddress> = {}): NetlinkAddress {
  return { ifname, ifindex: 2, family: address.includes(':') ? 'IPv6' : 'IPv4', address, bits: 24, scope: 'global', tentative: false, deprecated: false, ...over }
}

/** What the fakes answer; tests change it between rounds. */
interface World {
  addresses: NetlinkAddress[]
  /** The mapping each STUN server sees, by server index; missing: the mapping of server 0. */
  stunMapped: Endpoint[]
  hubView: { hub: Endpoint, mapped: Endpoint } | null
  /** No STUN server answers (the router is rebooting, say). */
  stunSilent: boolean
  probeError: Error | undefined
  addressesError: Error | undefined
  announceError: Error | undefined
  /** How many more times the failing component fails. */
  failures: number
}

function world (over: Partial<World> = {}): World {
  return {
    addresses: [addr('lo', '127.0.0.1', { scope: 'host' }), addr('eth0', '192.168.1.10'), addr('wg0', '100.64.0.2')],
    stunMapped: [MAPPED],
    hubView: { hub: HUB, mapped: MAPPED },
    stunSilent: false,
    probeError: undefined,
    addressesError: undefined,
    announceError: undefined,
    failures: 0,
    ...over
  }
}

/** What discovery found, as announced (the announcement's `ready` list belongs to punching, not tested here). */
type Found = Pick<Announce, 'natClass' | 'mappedEndpoint' | 'lanEndpoints'>
function found (a: Announce): Found
function found (a: Announce | undefined): Found | undefined
function found (a: Announce | undefined): Found | undefined {
  return a === undefined ? undefined : { natClass: a.natClass, mappedEndpoint: a.mappedEndpoint, lanEndpoints: [...a.lanEndpoints] }
}

const monitors: NatMonitor[] = []

afterEach(async () => {
  await Promise.all(monitors.splice(0).map(async (m) => { await m.stop() }))
  watcher.onChange = undefined
  watcher.fail = undefined
  vi.useRealTimers()
})

function harness (w: World, init: Partial<NatMonitorInit> = {}, extra: Partial<NatMonitorComponents> = {}) {
  const failOnce = (err: Error | undefined): void => {
    if (err !== undefined && w.failures > 0) { w.failures--; throw err }
  }
  const announced: Found[] = []
  const signals: AbortSignal[] = []
  const probe = vi.fn(async (i: StunProbeInit): Promise<StunProbeResult> => {
    failOnce(w.probeError)
    expect(i.localPort).toBe(LISTEN_PORT)
    return {
      samples: w.stunSilent ? [] : i.servers.map((s, n) => ({ server: formatEndpoint(s), mapped: w.stunMapped[n] ?? w.stunMapped[0] ?? MAPPED })),
      failures: w.stunSilent ? i.servers.map((s) => ({ server: formatEndpoint(s), reason: 'no answer' })) : [],
      receiverStats: { seen: 0, otherPort: 0, malformed: 0, delivered: 0, handlerErrors: 0, socketErrors: 0 }
    }
  })
  const addresses = vi.fn(async (): Promise<NetlinkAddress[]> => {
    failOnce(w.addressesError)
    return w.addresses
  })
  const announce = vi.fn(async (a: Announce, signal: AbortSignal): Promise<void> => {
    signals.push(signal)
    failOnce(w.announceError)
    announced.push(found(a))
  })
  const onNetworkChange = vi.fn()
  const logger = silentLogger()
  const warn = vi.spyOn(logger, 'warn')
  const monitor = new NatMonitor(
    { iface: 'wg0', listenPort: LISTEN_PORT, meshPrefixes: MESH, stunServers: [STUN_1, STUN_2], recheckMs: 5, addressMaxAgeMs: 0, ...init },
    { logger, hubView: () => w.hubView, announce, onNetworkChange, probe, addresses, ...extra }
  )
  monitors.push(monitor)
  /** Wait until `n` more discovery rounds (address listings) have run. */
  const rounds = async (n: number): Promise<void> => {
    const target = addresses.mock.calls.length + n
    await vi.waitFor(() => { expect(addresses.mock.calls.length).toBeGreaterThanOrEqual(target) }, { timeout: 800, interval: 2 })
  }
  const announcedCount = async (n: number): Promise<void> => {
    await vi.waitFor(() => { expect(announced.length).toBe(n) }, { timeout: 800, interval: 2 })
  }
  return { monitor, probe, addresses, announce, announced, signals, onNetworkChange, warn, rounds, announcedCount }
}

describe('NatMonitor: announcing', () => {
  it('holds an on-demand announcement whose only change is a shorter ready list, and sends it later', async () => {
    const w = world()
    let ready = ['A'.repeat(43) + '=', 'B'.repeat(43) + '=']
    const sent: string[][] = []
    const h = harness(w, { recheckMs: 60_000 }, { ready: () => ready })
    h.announce.mockImplementation(async (a: Announce) => { sent.push([...a.ready]) })
    h.monitor.start()
    await vi.waitFor(() => { expect(sent).toHaveLength(1) }, { timeout: 800, interval: 2 })
    ready = ready.slice(0, 1)
    await h.monitor.announceNow()
    expect(sent).toHaveLength(1)
    // A new attempt (the list grows) goes at once, and takes the shorter list along.
    ready = [ready[0] as string, 'C'.repeat(43) + '=']
    await h.monitor.announceNow()
    expect(sent).toEqual([[expect.any(String), expect.any(String)], ready])
    ready = []
    await h.monitor.announceNow()
    expect(sent).toHaveLength(2)
    await vi.waitFor(() => { expect(sent).toHaveLength(3) }, { timeout: 3000, interval: 20 })
    expect(sent[2]).toEqual([])
  })

  it('announces only once the hub view is known', async () => {
    const w = world({ hubView: null, stunMapped: [MAPPED, MAPPED] })
    const h = harness(w)
    h.monitor.start()
    await h.rounds(4)
    expect(h.announce).not.toHaveBeenCalled()
    // Discovery itself runs without the hub view: two STUN servers agree.
    expect(found(h.monitor.current?.announce)).toEqual({ natClass: 'easy', mappedEndpoint: '203.0.113.7:40000', lanEndpoints: ['192.168.1.10:51820'] })
    w.hubView = { hub: HUB, mapped: MAPPED }
    await h.announcedCount(1)
    expect(h.announced[0]).toEqual({ natClass: 'easy', mappedEndpoint: '203.0.113.7:40000', lanEndpoints: ['192.168.1.10:51820'] })
    expect(h.signals[0]?.aborted).toBe(false)
  })

  it('recheck() runs a discovery at once, without waiting for recheckMs', async () => {
    const w = world({ hubView: null })
    const h = harness(w, { recheckMs: 60_000 })
    h.monitor.start()
    await vi.waitFor(() => { expect(h.monitor.current).not.toBeNull() }, { timeout: 800, interval: 2 })
    expect(h.addresses).toHaveBeenCalledTimes(1)
    expect(h.announce).not.toHaveBeenCalled()
    w.hubView = { hub: HUB, mapped: MAPPED }
    h.monitor.recheck()
    await h.announcedCount(1)
    expect(h.addresses).toHaveBeenCalledTimes(2)
  })

  it('checks every restingRecheckMs while atRest() says every peer is parked, and every recheckMs again once not', async () => {
    let atRest = true
    const h = harness(world(), { recheckMs: 5, restingRecheckMs: 60_000 }, { atRest: () => atRest })
    h.monitor.start()
    await h.announcedCount(1)
    // At rest: the second check waits a minute (the usual 5 ms would have run dozens meanwhile).
    await new Promise((resolve) => setTimeout(resolve, 150))
    expect(h.addresses).toHaveBeenCalledTimes(1)
    // Rest ends: the client wakes the check (recheck()), and the usual interval is back.
    atRest = false
    h.monitor.recheck()
    await h.rounds(5)
  })

  it('does not announce an unchanged result again', async () => {
    const h = harness(world())
    h.monitor.start()
    await h.announcedCount(1)
    await h.rounds(6)
    expect(h.announce).toHaveBeenCalledTimes(1)
    expect(h.onNetworkChange).not.toHaveBeenCalled()
    expect(h.probe.mock.calls.length).toBeGreaterThanOrEqual(7)
  })

  const changes: Array<{ name: string, change: (w: World) => void, announce: Found, networkChange: boolean }> = [
    {
      name: 'the NAT mapping moves (STUN and hub agree on a new port): re-announce and re-punch',
      change: (w) => { w.stunMapped = [MAPPED_MOVED]; w.hubView = { hub: HUB, mapped: MAPPED_MOVED } },
      announce: { natClass: 'easy', mappedEndpoint: '203.0.113.7:41234', lanEndpoints: ['192.168.1.10:51820'] },
      networkChange: true
    },
    {
      name: 'the STUN-mapped endpoint moves before the hub notices (a router reboot): re-announce, still easy, and re-punch',
      change: (w) => { w.stunMapped = [MAPPED_MOVED] },
      announce: { natClass: 'easy', mappedEndpoint: '203.0.113.7:41234', lanEndpoints: ['192.168.1.10:51820'] },
      networkChange: true
    },
    {
      name: 'the hub sees another mapping than STUN: re-announce as hard; the STUN endpoint did not move',
      change: (w) => { w.hubView = { hub: HUB, mapped: MAPPED_OTHER } },
      announce: { natClass: 'hard', mappedEndpoint: '203.0.113.7:40000', lanEndpoints: ['192.168.1.10:51820'] },
      networkChange: false
    },
    {
      name: 'a LAN address appears: re-announce; the mapping did not move',
      change: (w) => { w.addresses = [...w.addresses, addr('wlan0', '10.0.0.5')] },
      announce: { natClass: 'easy', mappedEndpoint: '203.0.113.7:40000', lanEndpoints: ['192.168.1.10:51820', '10.0.0.5:51820'] },
      networkChange: false
    }
  ]

  it.each(changes)('$name', async ({ change, announce, networkChange }) => {
    const w = world()
    const h = harness(w)
    h.monitor.start()
    await h.announcedCount(1)
    expect(h.announced[0]).toEqual({ natClass: 'easy', mappedEndpoint: '203.0.113.7:40000', lanEndpoints: ['192.168.1.10:51820'] })
    change(w)
    await h.announcedCount(2)
    expect(h.announced[1]).toEqual(announce)
    expect(found(h.monitor.current?.announce)).toEqual(announce)
    expect(h.onNetworkChange).toHaveBeenCalledTimes(networkChange ? 1 : 0)
    // Settled: no more announcements or re-punches while nothing changes.
    await h.rounds(4)
    expect(h.announce).toHaveBeenCalledTimes(2)
    expect(h.onNetworkChange).toHaveBeenCalledTimes(networkChange ? 1 : 0)
  })
})

describe('NatMonitor: the hub catching up with a moved mapping', () => {
  it('the hub then shows the new mapping: nothing more to announce', async () => {
    const w = world()
    const h = harness(w)
    h.monitor.start()
    await h.announcedCount(1)
    w.stunMapped = [MAPPED_MOVED]
    await h.announcedCount(2)
    w.hubView = { hub: HUB, mapped: MAPPED_MOVED }
    await h.rounds(4)
    expect(h.announced.map((a) => a.natClass)).toEqual(['easy', 'easy'])
    expect(found(h.monitor.current?.announce)?.natClass).toBe('easy')
  })

  it('the hub still shows the old mapping after hubCatchUpMs: a real second mapping, announced as hard', async () => {
    const w = world()
    const h = harness(w, { hubCatchUpMs: 60 })
    h.monitor.start()
    await h.announcedCount(1)
    w.stunMapped = [MAPPED_MOVED]
    await h.announcedCount(2)
    expect(h.announced[1]?.natClass).toBe('easy')
    await h.announcedCount(3)
    expect(h.announced[2]).toEqual({ natClass: 'hard', mappedEndpoint: '203.0.113.7:41234', lanEndpoints: ['192.168.1.10:51820'] })
  })

  it('a hub showing a third mapping, not the old one, is not taken for a late view: hard at once', async () => {
    const w = world()
    const h = harness(w)
    h.monitor.start()
    await h.announcedCount(1)
    w.stunMapped = [MAPPED_MOVED]
    w.hubView = { hub: HUB, mapped: MAPPED_OTHER }
    await h.announcedCount(2)
    expect(h.announced[1]?.natClass).toBe('hard')
  })

  it('rounds without any STUN answer in between (the router rebooting): the move is still seen, re-punched and not hard', async () => {
    const w = world()
    const h = harness(w)
    h.monitor.start()
    await h.announcedCount(1)
    w.stunSilent = true
    await h.rounds(3)
    w.stunSilent = false
    w.stunMapped = [MAPPED_MOVED]
    await vi.waitFor(() => { expect(h.announced.some((a) => a.mappedEndpoint === '203.0.113.7:41234')).toBe(true) }, { timeout: 800, interval: 2 })
    await h.rounds(2)
    expect(found(h.monitor.current?.announce)).toEqual({ natClass: 'easy', mappedEndpoint: '203.0.113.7:41234', lanEndpoints: ['192.168.1.10:51820'] })
    expect(h.announced.map((a) => a.natClass)).not.toContain('hard')
    expect(h.onNetworkChange).toHaveBeenCalledTimes(1)
  })

  it('with the hub\'s STUN server alone (the default), a move before the hub notices is unknown, not hard, until the hub agrees', async () => {
    const w = world()
    const h = harness(w, { stunServers: [STUN_1] })
    h.monitor.start()
    await h.announcedCount(1)
    expect(h.announced[0]?.natClass).toBe('easy')
    w.stunMapped = [MAPPED_MOVED]
    await h.announcedCount(2)
    expect(h.announced[1]).toEqual({ natClass: 'unknown', mappedEndpoint: '203.0.113.7:41234', lanEndpoints: ['192.168.1.10:51820'] })
    w.hubView = { hub: HUB, mapped: MAPPED_MOVED }
    await h.announcedCount(3)
    expect(h.announced[2]?.natClass).toBe('easy')
  })

  it('behind a NAT already hard, a moved STUN mapping does not hide the hub view', async () => {
    const w = world({ hubView: { hub: HUB, mapped: MAPPED_OTHER } })
    const h = harness(w)
    h.monitor.start()
    await h.announcedCount(1)
    expect(h.announced[0]?.natClass).toBe('hard')
    // The hub now shows the mapping STUN saw before it moved: with a hard NAT that is a second mapping, not a late view.
    w.stunMapped = [MAPPED_MOVED]
    w.hubView = { hub: HUB, mapped: MAPPED }
    await h.announcedCount(2)
    await h.rounds(4)
    expect(h.announced.map((a) => a.natClass).every((c) => c === 'hard')).toBe(true)
  })
})

describe('NatMonitor: without raw sockets', () => {
  const cases: Array<{ name: string, hubMapped: Endpoint, natClass: string }> = [
    { name: 'the hub sees our own address and port: public', hubMapped: ep(`${OWN_PUBLIC}:${LISTEN_PORT}`), natClass: 'public' },
    { name: 'the hub sees a NAT mapping: one view cannot tell easy from hard', hubMapped: MAPPED, natClass: 'unknown' }
  ]

  it.each(cases)('the probe throws RawSocketUnavailable: stops probing, announces from the hub view ($name)', async ({ hubMapped, natClass }) => {
    const w = world({ hubView: { hub: HUB, mapped: hubMapped }, probeError: new RawSocketUnavailable('raw socket: Operation not permitted'), failures: Number.POSITIVE_INFINITY })
    w.addresses = [...w.addresses, addr('eth1', OWN_PUBLIC)]
    const h = harness(w)
    expect(h.monitor.rawAvailable).toBe(true)
    h.monitor.start()
    await h.announcedCount(1)
    expect(h.monitor.rawAvailable).toBe(false)
    expect(h.announced[0]).toEqual({ natClass, mappedEndpoint: null, lanEndpoints: ['192.168.1.10:51820', `${OWN_PUBLIC}:${LISTEN_PORT}`] })
    expect(h.monitor.current?.reason).toMatch(/raw sockets unavailable/)
    expect(h.warn).toHaveBeenCalledWith(expect.stringMatching(/Operation not permitted.*without STUN/))
    await h.rounds(4)
    expect(h.probe).toHaveBeenCalledTimes(1)
    expect(h.announce).toHaveBeenCalledTimes(1)
    expect(h.monitor.rawAvailable).toBe(false)
  })

  it('preflight: an addon that does not load is reported once at start, with the fix, and never probed', async () => {
    const problem = 'raw sockets unavailable: the raw-socket native addon did not load (no build); fix: cd /x && npm rebuild raw-socket'
    const h = harness(world(), {}, { rawCheck: () => problem })
    h.monitor.preflight()
    expect(h.monitor.rawAvailable).toBe(false)
    expect(h.monitor.rawProblem).toBe(problem)
    expect(h.warn).toHaveBeenCalledTimes(1)
    expect(h.warn).toHaveBeenCalledWith(expect.stringContaining('fix: cd /x && npm rebuild raw-socket'))
    h.monitor.start()
    await h.announcedCount(1)
    await h.rounds(2)
    expect(h.probe).not.toHaveBeenCalled()
    expect(h.warn).toHaveBeenCalledTimes(1)
  })

  it('preflight: an addon that loads changes nothing', () => {
    const h = harness(world(), {}, { rawCheck: () => null })
    h.monitor.preflight()
    expect(h.monitor.rawAvailable).toBe(true)
    expect(h.monitor.rawProblem).toBeNull()
    expect(h.warn).not.toHaveBeenCalled()
  })

  it('--no-raw says so as the reason, without a warning', () => {
    const h = harness(world(), { raw: false }, { rawCheck: () => 'never asked' })
    h.monitor.preflight()
    expect(h.monitor.rawProblem).toMatch(/--no-raw/)
    expect(h.warn).not.toHaveBeenCalled()
  })

  const noProbe: Array<{ name: string, init: Partial<NatMonitorInit> }> = [
    { name: 'raw: false', init: { raw: false } },
    { name: 'no STUN servers', init: { stunServers: [] } }
  ]

  it.each(noProbe)('never probes with $name, and still announces', async ({ init }) => {
    const h = harness(world(), init)
    h.monitor.start()
    await h.announcedCount(1)
    await h.rounds(3)
    expect(h.probe).not.toHaveBeenCalled()
    expect(h.announced).toEqual([{ natClass: 'unknown', mappedEndpoint: null, lanEndpoints: ['192.168.1.10:51820'] }])
    expect(h.monitor.rawAvailable).toBe(init.raw ?? true)
  })
})

describe('NatMonitor: failures never stop the loop', () => {
  /** NatMonitor waits this long after a failed round (not configurable: fake timers keep the test fast). */
  const FAILURE_WAIT_MS = 5000
  const cases: Array<{ name: string, fail: (w: World, err: Error) => void }> = [
    { name: 'the registry rejects the announcement', fail: (w, err) => { w.announceError = err } },
    { name: 'listing the addresses fails', fail: (w, err) => { w.addressesError = err } },
    { name: 'the probe fails for another reason than permissions', fail: (w, err) => { w.probeError = err } }
  ]

  it.each(cases)('$name: retried after a pause, then announced', async ({ fail }) => {
    vi.useFakeTimers()
    const w = world({ failures: 2 })
    fail(w, new Error('registry 100.64.0.1:8080: connect ECONNREFUSED'))
    const h = harness(w, { recheckMs: 60_000 })
    h.monitor.start()
    await vi.advanceTimersByTimeAsync(1)
    expect(h.announced).toEqual([])
    expect(h.warn).toHaveBeenCalledWith(expect.stringMatching(/^NAT discovery failed, will retry: .*ECONNREFUSED/))
    await vi.advanceTimersByTimeAsync(FAILURE_WAIT_MS)
    expect(h.announced).toEqual([])
    expect(h.warn).toHaveBeenCalledTimes(2)
    await vi.advanceTimersByTimeAsync(FAILURE_WAIT_MS)
    expect(h.announced).toEqual([{ natClass: 'easy', mappedEndpoint: '203.0.113.7:40000', lanEndpoints: ['192.168.1.10:51820'] }])
    expect(h.monitor.rawAvailable).toBe(true)
    // Then the normal recheck schedule, with nothing new to announce.
    const before = h.addresses.mock.calls.length
    await vi.advanceTimersByTimeAsync(60_000)
    expect(h.addresses.mock.calls.length).toBe(before + 1)
    expect(h.announce.mock.calls.length).toBe(w.announceError === undefined ? 1 : 3)
    await expect(h.monitor.stop()).resolves.toBeUndefined()
  })

  it('an announcement that failed is sent again even though the discovery result did not change', async () => {
    vi.useFakeTimers()
    const w = world({ announceError: new Error('registry: HTTP 503'), failures: 1 })
    const h = harness(w, { recheckMs: 60_000 })
    h.monitor.start()
    await vi.advanceTimersByTimeAsync(1)
    expect(h.announce).toHaveBeenCalledTimes(1)
    await vi.advanceTimersByTimeAsync(FAILURE_WAIT_MS)
    expect(h.announce).toHaveBeenCalledTimes(2)
    expect(h.announced).toHaveLength(1)
    expect(found(h.announce.mock.calls[1]?.[0])).toEqual(found(h.announce.mock.calls[0]?.[0]))
    expect(found(h.announce.mock.calls[0]?.[0])).toEqual({ natClass: 'easy', mappedEndpoint: '203.0.113.7:40000', lanEndpoints: ['192.168.1.10:51820'] })
  })

  it('stop() ends the loop while an announcement hangs, by aborting its signal', async () => {
    const h = harness(world())
    let started = false
    h.announce.mockImplementation(async (_a, signal) => {
      started = true
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()))
    })
    h.monitor.start()
    await vi.waitFor(() => { expect(started).toBe(true) }, { timeout: 800, interval: 2 })
    await h.monitor.stop()
    const calls = h.addresses.mock.calls.length
    await new Promise((resolve) => setTimeout(resolve, 30))
    expect(h.addresses.mock.calls.length).toBe(calls)
  })
})

describe('NatMonitor: network changes', () => {
  it('a netlink change re-punches and runs a discovery at once', async () => {
    const h = harness(world(), { recheckMs: 60_000 })
    h.monitor.start()
    await h.announcedCount(1)
    expect(h.addresses).toHaveBeenCalledTimes(1)
    expect(watcher.onChange).toBeDefined()
    await watcher.onChange?.({ kinds: ['address'] })
    expect(h.onNetworkChange).toHaveBeenCalledTimes(1)
    await h.rounds(1)
    expect(h.addresses).toHaveBeenCalledTimes(2)
  })

  it('cannot watch for changes: warns and keeps working on the recheck schedule', async () => {
    watcher.fail = new Error('netlink change subscription: cannot open an rtnetlink socket: EPERM')
    const h = harness(world())
    expect(() => { h.monitor.start() }).not.toThrow()
    await h.announcedCount(1)
    expect(h.warn).toHaveBeenCalledWith(expect.stringMatching(/^not watching for network changes: .*EPERM/))
    await h.rounds(2)
  })

  it('stop() unsubscribes from netlink changes', async () => {
    const h = harness(world())
    h.monitor.start()
    expect(watcher.onChange).toBeDefined()
    await h.monitor.stop()
    expect(watcher.onChange).toBeUndefined()
  })
})

describe('NatMonitor: the address list between network changes', () => {
  it('reads the addresses once while netlink reports nothing, again after a reported change (and the change is announced)', async () => {
    const w = world()
    const h = harness(w, { addressMaxAgeMs: 60_000 })
    h.monitor.start()
    await h.announcedCount(1)
    const probes = h.probe.mock.calls.length
    await vi.waitFor(() => { expect(h.probe.mock.calls.length).toBeGreaterThanOrEqual(probes + 5) }, { timeout: 800, interval: 2 })
    // Five checks (STUN each time), one address dump.
    expect(h.addresses).toHaveBeenCalledTimes(1)
    w.addresses = [...w.addresses, addr('wlan0', '10.0.0.5')]
    await new Promise((resolve) => setTimeout(resolve, 30))
    // Not seen without a notification...
    expect(h.announce).toHaveBeenCalledTimes(1)
    await watcher.onChange?.({ kinds: ['address'] })
    // ...seen at once after one.
    await h.announcedCount(2)
    expect(h.announced[1]).toEqual({ natClass: 'easy', mappedEndpoint: '203.0.113.7:40000', lanEndpoints: ['192.168.1.10:51820', '10.0.0.5:51820'] })
    expect(h.addresses).toHaveBeenCalledTimes(2)
  })

  it('without change notifications (the subscription failed), reads the addresses on every check', async () => {
    watcher.fail = new Error('netlink: cannot subscribe to address changes: EPERM')
    const w = world()
    const h = harness(w, { addressMaxAgeMs: 60_000 })
    h.monitor.start()
    await h.announcedCount(1)
    await h.rounds(4)
    w.addresses = [...w.addresses, addr('wlan0', '10.0.0.5')]
    await h.announcedCount(2)
    expect(h.announced[1]?.lanEndpoints).toEqual(['192.168.1.10:51820', '10.0.0.5:51820'])
  })
})

describe('NatMonitor: the raw send socket between checks', () => {
  /** A probe that sends through the socket it is lent, and answers as `answer` says; counts the sockets opened. */
  function socketHarness (w: World, answer: () => boolean) {
    let opened = 0
    const usedBy: number[] = []
    const openSender = (): RawUdpSender => {
      const id = ++opened
      let closed = false
      return {
        send: async () => { if (closed) throw new Error('closed'); usedBy.push(id) },
        close: () => { closed = true }
      }
    }
    const probe = vi.fn(async (i: StunProbeInit, components?: Partial<StunProbeComponents>): Promise<StunProbeResult> => {
      const sender = components!.openSender!()
      await sender.send({ srcPort: i.localPort, dst: i.servers[0]!, payload: new Uint8Array(1) })
      sender.close()
      const ok = answer()
      return {
        samples: ok ? i.servers.map((s) => ({ server: formatEndpoint(s), mapped: MAPPED })) : [],
        failures: ok ? [] : i.servers.map((s) => ({ server: formatEndpoint(s), reason: 'no response' })),
        receiverStats: { seen: 0, otherPort: 0, malformed: 0, delivered: 0, handlerErrors: 0, socketErrors: 0 }
      }
    })
    const h = harness(w, {}, { probe, openSender })
    return { h, usedBy, probe, opened: () => opened }
  }

  it('keeps one socket while nothing changes; a network change or a check without any answer opens a fresh one', async () => {
    let answers = true
    const s = socketHarness(world(), () => answers)
    s.h.monitor.start()
    await vi.waitFor(() => { expect(s.usedBy.length).toBeGreaterThanOrEqual(5) }, { timeout: 800, interval: 2 })
    expect(new Set(s.usedBy)).toEqual(new Set([1]))
    await watcher.onChange?.({ kinds: ['route'] })
    const afterChange = s.usedBy.length
    await vi.waitFor(() => { expect(s.usedBy.length).toBeGreaterThanOrEqual(afterChange + 3) }, { timeout: 800, interval: 2 })
    expect(s.usedBy.slice(afterChange)).toEqual(s.usedBy.slice(afterChange).map(() => 2))
    answers = false
    await vi.waitFor(() => { expect(s.opened()).toBeGreaterThanOrEqual(5) }, { timeout: 800, interval: 2 })
  })

  it('without change notifications: a fresh socket for every check, as before', async () => {
    watcher.fail = new Error('netlink: cannot subscribe to address changes: EPERM')
    const s = socketHarness(world(), () => true)
    s.h.monitor.start()
    await vi.waitFor(() => { expect(s.usedBy.length).toBeGreaterThanOrEqual(4) }, { timeout: 800, interval: 2 })
    expect(new Set(s.usedBy).size).toBe(s.usedBy.length)
  })
})

