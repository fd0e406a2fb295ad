/**
 * The prom-client adapter: the only file that imports it. Metric objects are created through these and updated
 * with counters and observations only (a few nanoseconds each); gauges that describe state are computed when
 * scraped (`collect`), so nothing is kept up to date on hot paths.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

export { Counter, Gauge, Histogram, Registry }

/** A registry with the process metrics (CPU, memory, event-loop lag, ...) under `wgnat_`-less standard names. */
export function newMetricsRegistry (): Registry {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  return registry
}

/** The text exposition format, and its content type. */
export async function renderMetrics (registry: Registry): Promise<{ contentType: string, text: string }> {
  return { contentType: registry.contentType, text: await registry.metrics() }
}
