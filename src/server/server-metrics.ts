import { Counter, Gauge, newMetricsRegistry, type Registry } from '../shared/metrics/prom.js'
import type { RelayCounters } from './relay.js'
import type { StunServerStats } from './stun-server.js'

/** Routes counted by name; anything else is `other`, so a scanner cannot blow up the label set. */
const KNOWN_ROUTES = new Set(['GET /v1/table', 'POST /v1/announce', 'POST /v1/report', 'POST /keepalive'])

/** One reading of the relay rule's counters serves the metrics of one scrape. */
const RELAY_READING_REUSE_MS = 1000

export interface ServerMetricsSources {
  /** Peers in the registry's table. */
  peers: () => number
  /** Long-polls held open right now. */
  longPolls: () => number
  stun?: () => StunServerStats
  /** The relay rule's counters (run at scrape time only); absent without --relay. */
  relay?: () => Promise<RelayCounters | null>
}

export interface ServerMetrics {
  registry: Registry
  /** Count one answered registry request (called when the response is finished). */
  request: (method: string, path: string, status: number) => void
}

/** The hub's metrics (docs/metrics.md). State is read when scraped; requests are counted as they finish. */
export function createServerMetrics (src: ServerMetricsSources): ServerMetrics {
  const registry = newMetricsRegistry()
  const register = [registry]
  new Gauge({ name: 'wgnat_registry_peers', help: 'Peers of the hub interface in the registry\'s table', registers: register, collect () { this.set(src.peers()) } })
  new Gauge({ name: 'wgnat_registry_long_polls_open', help: 'Table requests held open (long-poll) right now', registers: register, collect () { this.set(src.longPolls()) } })
  const requests = new Counter({ name: 'wgnat_registry_requests_total', help: 'Registry requests answered, by route (method and path; other for unknown ones) and HTTP status', labelNames: ['route', 'status'], registers: register })
  const stun = src.stun
  if (stun !== undefined) {
    // The STUN server keeps its own plain counters; they are copied into the metrics when scraped.
    new Counter({
      name: 'wgnat_stun_requests_total',
      help: 'STUN datagrams received by the hub\'s STUN server',
      registers: register,
      collect () { const s = stun(); this.reset(); this.inc(s.answered + s.ignored + s.rateLimited + s.sendErrors) }
    })
    new Counter({
      name: 'wgnat_stun_dropped_total',
      help: 'STUN datagrams not answered, by reason: rate_limited (over the per-source limit), invalid (not a Binding request), send_error',
      labelNames: ['reason'],
      registers: register,
      collect () {
        const s = stun()
        this.reset()
        this.inc({ reason: 'rate_limited' }, s.rateLimited)
        this.inc({ reason: 'invalid' }, s.ignored)
        this.inc({ reason: 'send_error' }, s.sendErrors)
      }
    })
  }
  const readRelay = src.relay
  if (readRelay !== undefined) {
    // Both relay metrics come from one reading per scrape (iptables and ip6tables run once, not once per metric).
    let last: { atMs: number, value: Promise<RelayCounters | null> } | undefined
    const relay = async (): Promise<RelayCounters | null> => {
      if (last === undefined || Date.now() - last.atMs > RELAY_READING_REUSE_MS) last = { atMs: Date.now(), value: readRelay() }
      return await last.value
    }
    new Counter({
      name: 'wgnat_relayed_bytes_total',
      help: 'Bytes the hub forwarded between peers (the relay rule\'s iptables/ip6tables counter; resets when the rule is re-created)',
      registers: register,
      async collect () { const c = await relay(); this.reset(); if (c !== null) this.inc(c.bytes) }
    })
    new Counter({
      name: 'wgnat_relayed_packets_total',
      help: 'Packets the hub forwarded between peers (the relay rule\'s counter)',
      registers: register,
      async collect () { const c = await relay(); this.reset(); if (c !== null) this.inc(c.packets) }
    })
  }
  return {
    registry,
    request (method, path, status) {
      const route = `${method} ${path}`
      requests.inc({ route: KNOWN_ROUTES.has(route) ? route : 'other', status: String(status) })
    }
  }
}
