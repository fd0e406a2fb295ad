import { describe, expect, it, vi } from 'vitest'
import { silentLogger } from '../../src/shared/log.js'
import { PortMapper } from '../../src/client/portmap/port-mapper.js'
import { PortMapError, type MapFunction, type MapRequest, type PortMapping } from '../../src/client/portmap/port-mapping.js'

const until = async (check: () => boolean, ms = 3000): Promise<void> => {
  const t0 = Date.now()
  while (!check()) {
    if (Date.now() - t0 > ms) throw new Error('timed out')
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

/** A fake protocol: grants `port` after `delayMs`, or fails; records requests, renewals and removals. */
function fake (protocol: PortMapping['protocol'], opts: { port?: number, delayMs?: number, fail?: string, lifetimeS?: number }) {
  const log = { requests: [] as MapRequest[], renewals: 0, removals: 0 }
  const make = (req: MapRequest): PortMapping => ({
    protocol,
    external: { address: '198.18.12.2', port: opts.port ?? 40000 },
    internalPort: req.internalPort,
    lifetimeS: opts.lifetimeS ?? 7200,
    renew: async () => { log.renewals++; return make(req) },
    remove: async () => { log.removals++ }
  })
  const fn: MapFunction = async (req) => {
    log.requests.push(req)
    await new Promise((resolve) => setTimeout(resolve, opts.delayMs ?? 0))
    if (opts.fail !== undefined) throw new PortMapError(opts.fail)
    if (req.signal?.aborted === true) throw new PortMapError(`${protocol}: cancelled`)
    return make(req)
  }
  return { fn, log }
}

/** A gateway that answers nothing: each attempt waits its whole timeout. */
const silent = (name: string): MapFunction => async (req) => {
  await new Promise<void>((resolve) => {
    const t = setTimeout(resolve, req.timeoutMs)
    req.signal?.addEventListener('abort', () => { clearTimeout(t); resolve() })
  })
  throw new PortMapError(`${name}: no answer`)
}

const gateway = async (): Promise<string> => '198.19.2.1'

describe('PortMapper', () => {
  it('takes the first protocol that succeeds, asks for the WireGuard port, and deletes the mapping on stop', async () => {
    const pcp = fake('pcp', { port: 51820, delayMs: 5 })
    const upnp = fake('upnp', { port: 51820, delayMs: 200 })
    const changes: Array<PortMapping | null> = []
    const mapper = new PortMapper({ internalPort: 51820 }, { logger: silentLogger(), gateway, protocols: { pcp: pcp.fn, upnp: upnp.fn, natPmp: silent('nat-pmp') }, onChange: (m) => changes.push(m) })
    mapper.start()
    await until(() => mapper.current !== null)
    expect(mapper.current?.protocol).toBe('pcp')
    expect(mapper.status()).toMatchObject({ protocol: 'pcp', endpoint: '198.18.12.2:51820', gateway: '198.19.2.1', lifetimeS: 7200 })
    expect(pcp.log.requests[0]).toMatchObject({ gateway: '198.19.2.1', internalPort: 51820, lifetimeS: 7200 })
    // UPnP was asked in parallel, and told to give up once PCP won.
    expect(upnp.log.requests).toHaveLength(1)
    expect(upnp.log.requests[0]?.signal?.aborted).toBe(true)
    expect(changes.map((m) => m?.protocol)).toEqual(['pcp'])
    await mapper.stop()
    expect(pcp.log.removals).toBe(1)
    expect(mapper.current).toBeNull()
  })

  it('falls back from PCP to NAT-PMP on the same gateway', async () => {
    const natPmp = fake('nat-pmp', { port: 40001 })
    const mapper = new PortMapper({ internalPort: 51820 }, { logger: silentLogger(), gateway, protocols: { pcp: fake('pcp', { fail: 'PCP: speaks NAT-PMP only' }).fn, natPmp: natPmp.fn, upnp: silent('upnp') } })
    mapper.start()
    await until(() => mapper.current !== null)
    expect(mapper.status()).toMatchObject({ protocol: 'nat-pmp', endpoint: '198.18.12.2:40001' })
    await mapper.stop()
    expect(natPmp.log.removals).toBe(1)
  })

  it('costs one short timeout in the background when the gateway answers nothing, then waits for the retry interval', async () => {
    const calls: number[] = []
    const pcp: MapFunction = async (req) => { calls.push(Date.now()); return await silent('pcp')(req) }
    const mapper = new PortMapper({ internalPort: 51820, timeoutMs: 300, retryBaseMs: 60_000 }, { logger: silentLogger(), gateway, protocols: { pcp, natPmp: silent('nat-pmp'), upnp: silent('upnp') } })
    const t0 = Date.now()
    mapper.start()
    expect(Date.now() - t0).toBeLessThan(50)
    await new Promise((resolve) => setTimeout(resolve, 800))
    expect(calls).toHaveLength(1)
    expect(mapper.current).toBeNull()
    const s0 = Date.now()
    await mapper.stop()
    expect(Date.now() - s0).toBeLessThan(200)
  })

  it('asks again on a network change, but not more often than minRetryMs', async () => {
    let n = 0
    const pcp: MapFunction = async () => { n++; throw new PortMapError('refused') }
    const mapper = new PortMapper({ internalPort: 51820, retryBaseMs: 60_000, minRetryMs: 200 }, { logger: silentLogger(), gateway, protocols: { pcp, natPmp: fake('nat-pmp', { fail: 'no' }).fn, upnp: fake('upnp', { fail: 'no' }).fn } })
    mapper.start()
    await until(() => n === 1)
    mapper.recheck()
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(n).toBe(1)
    await new Promise((resolve) => setTimeout(resolve, 250))
    mapper.recheck()
    await until(() => n === 2)
    await mapper.stop()
  })

  it('renews at half the lifetime', async () => {
    const pcp = fake('pcp', { lifetimeS: 2 })
    const mapper = new PortMapper({ internalPort: 51820 }, { logger: silentLogger(), gateway, protocols: { pcp: pcp.fn, natPmp: silent('nat-pmp'), upnp: silent('upnp') } })
    mapper.start()
    await until(() => mapper.current !== null)
    const t0 = Date.now()
    await until(() => pcp.log.renewals === 1, 3000)
    expect(Date.now() - t0).toBeGreaterThan(800)
    await mapper.stop()
  })

  it('asks again from scratch when a renewal fails, telling the client the mapping is gone', async () => {
    let renewFails = true
    const changes: Array<string | null> = []
    const pcp: MapFunction = async (req) => ({
      protocol: 'pcp', external: { address: '198.18.12.2', port: 40000 }, internalPort: req.internalPort, lifetimeS: 2,
      renew: async () => { if (renewFails) { renewFails = false; throw new PortMapError('gone') } throw new Error('unexpected') },
      remove: async () => {}
    })
    const mapper = new PortMapper({ internalPort: 51820 }, { logger: silentLogger(), gateway, protocols: { pcp, natPmp: silent('nat-pmp'), upnp: silent('upnp') }, onChange: (m) => changes.push(m === null ? null : m.protocol) })
    mapper.start()
    await until(() => changes.length >= 3, 4000)
    expect(changes.slice(0, 3)).toEqual(['pcp', null, 'pcp'])
    await mapper.stop()
  })

  it('deletes a losing protocol\'s mapping when it differs from the winner\'s', async () => {
    const upnp = fake('upnp', { port: 50000, delayMs: 30 })
    // A UPnP fake that ignores the abort: it maps anyway.
    const stubborn: MapFunction = async (req) => await upnp.fn({ ...req, signal: undefined })
    const mapper = new PortMapper({ internalPort: 51820 }, { logger: silentLogger(), gateway, protocols: { pcp: fake('pcp', { port: 51820 }).fn, natPmp: silent('nat-pmp'), upnp: stubborn } })
    mapper.start()
    await until(() => upnp.log.removals === 1)
    expect(mapper.status()?.endpoint).toBe('198.18.12.2:51820')
    await mapper.stop()
  })

  it('asks again after failed rounds with a doubling wait, and keeps the mapping once a round succeeds', async () => {
    const at: number[] = []
    let n = 0
    const pcp: MapFunction = async (req) => {
      at.push(Date.now())
      if (++n < 4) throw new PortMapError('busy')
      return { protocol: 'pcp', external: { address: '198.18.12.2', port: 51820 }, internalPort: req.internalPort, lifetimeS: 7200, renew: async () => { throw new Error('not yet') }, remove: async () => {} }
    }
    const mapper = new PortMapper({ internalPort: 51820, retryBaseMs: 100, retryMaxMs: 250 }, { logger: silentLogger(), gateway, protocols: { pcp, natPmp: fake('nat-pmp', { fail: 'no' }).fn, upnp: fake('upnp', { fail: 'no' }).fn } })
    mapper.start()
    await until(() => mapper.current !== null, 3000)
    const gaps = at.slice(1).map((t, i) => t - at[i]!)
    // 100, 200, then capped at 250 ms (timers may run late on a busy machine, never early).
    expect(gaps[0]).toBeGreaterThanOrEqual(95)
    expect(gaps[1]).toBeGreaterThanOrEqual(195)
    expect(gaps[2]).toBeGreaterThanOrEqual(245)
    expect(gaps[2]).toBeLessThan(400 + 1000)
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(at).toHaveLength(4)
    await mapper.stop()
  })

  it('does nothing without a default gateway', async () => {
    const pcp = vi.fn<MapFunction>()
    const mapper = new PortMapper({ internalPort: 51820 }, { logger: silentLogger(), gateway: async () => null, protocols: { pcp } })
    mapper.start()
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(pcp).not.toHaveBeenCalled()
    await mapper.stop()
  })
})
