import { InvalidArgumentError } from 'commander'
import { afterEach, describe, expect, it } from 'vitest'
import { createClientMetrics } from '../../src/client/observe/client-metrics.js'
import type { PeerTrack } from '../../src/client/paths/reconcile.js'
import type { ClientStatus, PeerStatus } from '../../src/client/observe/status.js'
import { httpAddressArg, startHttpListener, type HttpListener } from '../../src/shared/metrics/http-listener.js'
import { parseRelayCounters } from '../../src/server/relay.js'
import { createServerMetrics } from '../../src/server/server-metrics.js'
import { silentLogger } from '../../src/shared/log.js'
import { testKey } from '../helpers/keys.js'

const peer = (name: string, path: PeerStatus['path']): PeerStatus => ({ publicKey: testKey(name), path, endpoint: null, natClass: 'easy', latestHandshake: 0, sinceS: 0, reason: '' })

function status (peers: PeerStatus[], natClass = 'easy', rawProblem: string | null = null): ClientStatus {
  return {
    interface: 'wg0',
    publicKey: testKey('self'),
    registry: { url: 'http://100.64.0.1:51820', reachable: true, version: 1, relay: true, lastSyncS: 0 },
    self: { endpoint: null, natClass, mappedEndpoint: null, rawProblem },
    peers
  }
}

/** The value of one sample line in Prometheus text, or undefined. */
function sample (text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

const track = (phase: PeerTrack['phase'], sinceMs: number): PeerTrack => ({ phase, sinceMs, failures: 0, retryAtMs: 0, endpoint: null, targets: null, rx: 0, rxAtMs: 0, reason: '' })

describe('client metrics', () => {
  it('counts peers by path and shows the NAT class, read from status when scraped', async () => {
    let s = status([peer('a', 'direct'), peer('b', 'direct'), peer('c', 'via hub'), peer('d', 'trying')])
    const m = createClientMetrics(() => s)
    let text = await m.registry.metrics()
    expect(sample(text, 'wgnat_peers{path="direct"}')).toBe(2)
    expect(sample(text, 'wgnat_peers{path="hub"}')).toBe(1)
    expect(sample(text, 'wgnat_peers{path="trying"}')).toBe(1)
    expect(sample(text, 'wgnat_peers{path="unreachable"}')).toBe(0)
    expect(sample(text, 'wgnat_nat_class{class="easy"}')).toBe(1)
    expect(sample(text, 'wgnat_nat_class{class="hard"}')).toBe(0)
    expect(sample(text, 'wgnat_raw_sockets_available')).toBe(1)
    s = status([peer('a', 'unreachable')], 'unknown', 'raw sockets unavailable')
    text = await m.registry.metrics()
    expect(sample(text, 'wgnat_peers{path="direct"}')).toBe(0)
    expect(sample(text, 'wgnat_peers{path="unreachable"}')).toBe(1)
    expect(sample(text, 'wgnat_nat_class{class="unknown"}')).toBe(1)
    expect(sample(text, 'wgnat_nat_class{class="easy"}')).toBe(0)
    expect(sample(text, 'wgnat_raw_sockets_available')).toBe(0)
  })

  it('builds the status once per scrape, afresh for each', async () => {
    let calls = 0
    const m = createClientMetrics(() => { calls++; return status([peer('a', 'direct')]) })
    await m.registry.metrics()
    expect(calls).toBe(1)
    await Promise.all([m.registry.metrics(), m.registry.metrics()])
    expect(calls).toBeGreaterThanOrEqual(2)
    expect(calls).toBeLessThanOrEqual(3)
    const before = calls
    await m.registry.metrics()
    expect(calls).toBe(before + 1)
  })

  it('counts path changes and observes the time to direct from the attempt\'s start', async () => {
    const m = createClientMetrics(() => status([]))
    const a = testKey('a')
    const b = testKey('b')
    m.observer.pathEvents?.([{ publicKey: a, from: 'trying', to: 'direct', reason: '' }, { publicKey: b, from: 'trying', to: 'hub', reason: '' }],
      new Map([[a, track('trying', 10_000)], [b, track('trying', 10_000)]]), 11_500)
    // A path that was direct already, or came from the hub, is no attempt that succeeded.
    m.observer.pathEvents?.([{ publicKey: a, from: 'hub', to: 'direct', reason: '' }], new Map([[a, track('hub', 0)]]), 99_000)
    const text = await m.registry.metrics()
    expect(sample(text, 'wgnat_path_changes_total{from="trying",to="direct"}')).toBe(1)
    expect(sample(text, 'wgnat_path_changes_total{from="trying",to="hub"}')).toBe(1)
    expect(sample(text, 'wgnat_path_changes_total{from="hub",to="direct"}')).toBe(1)
    expect(sample(text, 'wgnat_time_to_direct_seconds_count')).toBe(1)
    expect(sample(text, 'wgnat_time_to_direct_seconds_sum')).toBe(1.5)
    expect(sample(text, 'wgnat_time_to_direct_seconds_bucket{le="1"}')).toBe(0)
    expect(sample(text, 'wgnat_time_to_direct_seconds_bucket{le="2"}')).toBe(1)
  })

  it('counts registry errors by operation, STUN round trips and NAT changes', async () => {
    const m = createClientMetrics(() => status([]))
    m.observer.registryError?.('table')
    m.observer.registryError?.('table')
    m.observer.registryError?.('announce')
    m.observer.stunRoundTrip?.(20)
    m.observer.natChanged?.()
    const text = await m.registry.metrics()
    expect(sample(text, 'wgnat_registry_errors_total{op="table"}')).toBe(2)
    expect(sample(text, 'wgnat_registry_errors_total{op="announce"}')).toBe(1)
    expect(sample(text, 'wgnat_registry_errors_total{op="report"}')).toBe(0)
    expect(sample(text, 'wgnat_stun_round_trip_seconds_count')).toBe(1)
    expect(sample(text, 'wgnat_stun_round_trip_seconds_bucket{le="0.025"}')).toBe(1)
    expect(sample(text, 'wgnat_stun_round_trip_seconds_bucket{le="0.01"}')).toBe(0)
    expect(sample(text, 'wgnat_nat_mapping_changes_total')).toBe(1)
  })

  it('observes the CPU of each sync cycle in seconds', async () => {
    const m = createClientMetrics(() => status([]))
    m.observer.syncCycle?.(3, 40)
    m.observer.syncCycle?.(30, 45)
    const text = await m.registry.metrics()
    expect(sample(text, 'wgnat_sync_cycle_cpu_seconds_count')).toBe(2)
    expect(sample(text, 'wgnat_sync_cycle_cpu_seconds_sum')).toBeCloseTo(0.033)
    expect(sample(text, 'wgnat_sync_cycle_cpu_seconds_bucket{le="0.005"}')).toBe(1)
    expect(sample(text, 'wgnat_sync_cycle_cpu_seconds_bucket{le="0.05"}')).toBe(2)
  })
})

describe('server metrics', () => {
  it('reads peers, long-polls, STUN and relay counters when scraped; counts requests by route and status', async () => {
    let peers = 3
    const stats = { answered: 10, ignored: 2, rateLimited: 5, sendErrors: 1 }
    const m = createServerMetrics({ peers: () => peers, longPolls: () => 2, stun: () => stats, relay: async () => ({ packets: 7, bytes: 7000 }) })
    m.request('GET', '/v1/table', 200)
    m.request('GET', '/v1/table', 200)
    m.request('POST', '/v1/announce', 429)
    m.request('GET', '/../../etc/passwd', 404)
    let text = await m.registry.metrics()
    expect(sample(text, 'wgnat_registry_peers')).toBe(3)
    expect(sample(text, 'wgnat_registry_long_polls_open')).toBe(2)
    expect(sample(text, 'wgnat_registry_requests_total{route="GET /v1/table",status="200"}')).toBe(2)
    expect(sample(text, 'wgnat_registry_requests_total{route="POST /v1/announce",status="429"}')).toBe(1)
    expect(sample(text, 'wgnat_registry_requests_total{route="other",status="404"}')).toBe(1)
    expect(text).not.toContain('passwd')
    expect(sample(text, 'wgnat_stun_requests_total')).toBe(18)
    expect(sample(text, 'wgnat_stun_dropped_total{reason="rate_limited"}')).toBe(5)
    expect(sample(text, 'wgnat_stun_dropped_total{reason="invalid"}')).toBe(2)
    expect(sample(text, 'wgnat_relayed_bytes_total')).toBe(7000)
    expect(sample(text, 'wgnat_relayed_packets_total')).toBe(7)
    peers = 1
    stats.answered = 11
    text = await m.registry.metrics()
    expect(sample(text, 'wgnat_registry_peers')).toBe(1)
    expect(sample(text, 'wgnat_stun_requests_total')).toBe(19)
  })

  it('reads the relay counters once per scrape for both relay metrics', async () => {
    let calls = 0
    const m = createServerMetrics({ peers: () => 0, longPolls: () => 0, relay: async () => { calls++; return { packets: 1, bytes: 2 } } })
    await m.registry.metrics()
    expect(calls).toBe(1)
  })

  it('has no STUN or relay metrics when those are off', async () => {
    const text = await createServerMetrics({ peers: () => 0, longPolls: () => 0 }).registry.metrics()
    expect(text).not.toContain('wgnat_stun_')
    expect(text).not.toContain('wgnat_relayed_')
  })
})

describe('parseRelayCounters', () => {
  const listing = `Chain FORWARD (policy DROP 0 packets, 0 bytes)
    pkts      bytes target     prot opt in     out     source               destination
     120    98765 ACCEPT     all  --  wg0    wg0     0.0.0.0/0            0.0.0.0/0            /* wgnat relay */
       4      400 ACCEPT     all  --  wg1    wg1     0.0.0.0/0            0.0.0.0/0            /* wgnat relay */
       9      900 ACCEPT     all  --  wg0    eth0    0.0.0.0/0            0.0.0.0/0
`
  it.each([['wg0', { packets: 120, bytes: 98765 }], ['wg1', { packets: 4, bytes: 400 }], ['wg2', null]])('%s -> %j', (iface, want) => {
    expect(parseRelayCounters(listing, iface)).toEqual(want)
  })
  it('ignores a rule with the comment but another target', () => {
    expect(parseRelayCounters('  1 2 DROP all -- wg0 wg0 0.0.0.0/0 0.0.0.0/0 /* wgnat relay */', 'wg0')).toBeNull()
  })
})

describe('--http', () => {
  it.each([['127.0.0.1:9586', { host: '127.0.0.1', port: 9586 }], ['[::1]:9586', { host: '::1', port: 9586 }], ['0.0.0.0:1', { host: '0.0.0.0', port: 1 }]])('%s', (text, want) => {
    expect(httpAddressArg(text)).toEqual(want)
  })
  it.each(['9586', 'localhost:9586', '127.0.0.1:0', '127.0.0.1:65536', '::1:9586', '127.0.0.1:'])('refuses %j', (text) => {
    expect(() => httpAddressArg(text)).toThrow(InvalidArgumentError)
  })

  const listeners: HttpListener[] = []
  afterEach(async () => { await Promise.all(listeners.splice(0).map(async (l) => { await l.close() })) })

  it('serves /metrics, its own routes, 404 elsewhere and 405 for writes', async () => {
    const m = createServerMetrics({ peers: () => 4, longPolls: () => 0 })
    const l = await startHttpListener({ host: '127.0.0.1', port: 0 }, m.registry, silentLogger(), [(_req, res, url) => {
      if (url.pathname !== '/hello') return false
      res.end('hi')
      return true
    }])
    listeners.push(l)
    const metrics = await fetch(`${l.url}/metrics`)
    expect(metrics.status).toBe(200)
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
    expect(sample(await metrics.text(), 'wgnat_registry_peers')).toBe(4)
    expect(await (await fetch(`${l.url}/hello`)).text()).toBe('hi')
    expect((await fetch(`${l.url}/nope`)).status).toBe(404)
    expect((await fetch(`${l.url}/metrics`, { method: 'POST' })).status).toBe(405)
  })
})
