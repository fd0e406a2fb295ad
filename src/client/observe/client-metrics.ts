import { Counter, Gauge, Histogram, newMetricsRegistry, type Registry } from '../../shared/metrics/prom.js'
import type { MeshObserver } from './mesh-observer.js'
import type { ClientStatus, PathStatus } from './status.js'

/** Label values of `wgnat_peers{path}`, by the status path they count. */
const PATH_LABEL: Record<PathStatus, string> = { direct: 'direct', 'via hub': 'hub', trying: 'trying', unreachable: 'unreachable' }
const NAT_CLASSES = ['public', 'easy', 'hard', 'unknown']

/** Seconds from the start of an attempt to a proven direct path: a handshake takes one round trip, a slow one a few retries. */
const TIME_TO_DIRECT_BUCKETS = [0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60]
/** One STUN exchange: a LAN answers in microseconds, a distant server in a few hundred ms, retransmissions in seconds. */
const STUN_RTT_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]
/** CPU of one sync cycle: under a millisecond with a few peers, about ten with 1,000 (issue 16's bound), more with 10,000. */
const SYNC_CPU_BUCKETS = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1]

export interface ClientMetrics {
  registry: Registry
  observer: MeshObserver
}

/**
 * The client's metrics (docs/metrics.md). State gauges are computed from `status()` when scraped; the observer
 * only bumps counters and observes durations.
 */
export function createClientMetrics (statusNow: () => ClientStatus): ClientMetrics {
  const registry = newMetricsRegistry()
  const register = [registry]
  // One status per scrape, not one per gauge: with 1,000 peers each is about a thousand objects, and a scrape's
  // garbage sets off collections inside the next sync cycle at rest (issue 16).
  let scraped: ClientStatus | undefined
  const status = (): ClientStatus => (scraped ??= statusNow())
  const collectAll = registry.metrics.bind(registry)
  registry.metrics = async () => {
    scraped = undefined
    try { return await collectAll() } finally { scraped = undefined }
  }
  new Gauge({
    name: 'wgnat_peers',
    help: 'Mesh peers by path: direct, hub (via the hub, which relays), trying (an attempt in progress), unreachable (no direct path, hub does not relay)',
    labelNames: ['path'],
    registers: register,
    collect () {
      const counts = new Map(Object.values(PATH_LABEL).map((p) => [p, 0]))
      for (const p of status().peers) counts.set(PATH_LABEL[p.path], (counts.get(PATH_LABEL[p.path]) ?? 0) + 1)
      for (const [path, n] of counts) this.set({ path }, n)
    }
  })
  new Gauge({
    name: 'wgnat_nat_class',
    help: 'This client\'s NAT class: 1 for the current class, 0 for the others',
    labelNames: ['class'],
    registers: register,
    collect () {
      const now = status().self.natClass
      for (const c of NAT_CLASSES) this.set({ class: c }, c === now ? 1 : 0)
    }
  })
  new Gauge({
    name: 'wgnat_raw_sockets_available',
    help: '1 when raw sockets work (STUN from the WireGuard port, punching); 0 when not (see wgnat-client status for why)',
    registers: register,
    collect () { this.set(status().self.rawProblem == null ? 1 : 0) }
  })
  new Gauge({
    name: 'wgnat_registry_reachable',
    help: '1 when the last registry call succeeded',
    registers: register,
    collect () { this.set(status().registry.reachable ? 1 : 0) }
  })
  const pathChanges = new Counter({ name: 'wgnat_path_changes_total', help: 'Path changes of mesh peers, by phase left and phase entered (arming, trying, direct, hub; new, removed)', labelNames: ['from', 'to'], registers: register })
  const timeToDirect = new Histogram({ name: 'wgnat_time_to_direct_seconds', help: 'Time from the start of a direct attempt (endpoint given to WireGuard) to the handshake that proved it', buckets: TIME_TO_DIRECT_BUCKETS, registers: register })
  const natChanges = new Counter({ name: 'wgnat_nat_mapping_changes_total', help: 'Changes of the STUN-mapped endpoint or the NAT class after the first discovery (a router reboot, a new uplink)', registers: register })
  const stunRtt = new Histogram({ name: 'wgnat_stun_round_trip_seconds', help: 'Round trip of answered STUN requests sent from the WireGuard port', buckets: STUN_RTT_BUCKETS, registers: register })
  const registryErrors = new Counter({ name: 'wgnat_registry_errors_total', help: 'Failed registry calls, by operation (table, announce, report)', labelNames: ['op'], registers: register })
  for (const op of ['table', 'announce', 'report']) registryErrors.inc({ op }, 0)
  const syncCpu = new Histogram({ name: 'wgnat_sync_cycle_cpu_seconds', help: 'CPU (user+system) of this process during one sync cycle: read the interface, vet, reconcile, apply (the wg commands not included)', buckets: SYNC_CPU_BUCKETS, registers: register })

  const observer: MeshObserver = {
    pathEvents (events, before, nowMs) {
      for (const e of events) {
        pathChanges.inc({ from: e.from, to: e.to })
        const old = before.get(e.publicKey)
        if (e.to === 'direct' && old !== undefined && (old.phase === 'trying' || old.phase === 'arming')) timeToDirect.observe(Math.max(0, nowMs - old.sinceMs) / 1000)
      }
    },
    registryError (op) { registryErrors.inc({ op }) },
    stunRoundTrip (ms) { stunRtt.observe(ms / 1000) },
    natChanged () { natChanges.inc() },
    syncCycle (cpuMs) { syncCpu.observe(cpuMs / 1000) }
  }
  return { registry, observer }
}
