/**
 * The prom-client adapter: the only file that imports it. Metric objects are created through these and updated
 * with counters and observations only (a few nanoseconds each); gauges that describe state are computed when
 * scraped (`collect`), so nothing is kept up to date on hot paths.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

export { Counter, Gauge, Histogram, Registry }

/**
 * Sampling interval of the event-loop lag histogram (`nodejs_eventloop_lag_*`, perf_hooks.monitorEventLoopDelay).
 * prom-client's default, 10 ms, is a timer waking the process 100 times a second for as long as it runs: an otherwise
 * idle node process used 0.88 % of a core with the default metrics at 10 ms, 0.44 % at 100 ms, 0.11 % without them
 * (20 s each): a third of a client at rest with 1,000 peers (issue 18). A stall of 100 ms or more is still always seen.
 */
export const EVENT_LOOP_SAMPLE_MS = 100

/** A registry with the process metrics (CPU, memory, event-loop lag, ...) under `wgnat_`-less standard names. */
export function newMetricsRegistry (): Registry {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS })
  return registry
}

/** The text exposition format, and its content type. */
export async function renderMetrics (registry: Registry): Promise<{ contentType: string, text: string }> {
  return { contentType: registry.contentType, text: await registry.metrics() }
}
