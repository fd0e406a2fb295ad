import { UsageError, quote } from './errors.js'

const UNIT_MS: Record<string, number> = {
  ns: 1e-6, us: 1e-3, 'µs': 1e-3, 'μs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000
}

/**
 * Parse a duration in Go's `time.ParseDuration` syntax (`300ms`, `1.5s`, `1m`, `1h30m`), as wg-nat's `-t` took it,
 * into milliseconds. Negative durations and a bare `0` are accepted by Go; callers decide what is allowed.
 * Stricter than general-purpose parsers on purpose: `1 hour` or `5` (no unit) are errors, as in Go.
 */
export function parseGoDuration (text: string): number {
  if (text === '0') return 0
  const m = /^([-+]?)((?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|\u00b5s|\u03bcs|ms|s|m|h))+$/.exec(text)
  if (m === null) throw new UsageError(`invalid duration ${quote(text)}: use Go syntax such as 300ms, 30s, 1m or 1h30m`)
  let total = 0
  for (const part of text.slice(m[1]?.length ?? 0).matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)/g)) {
    total += Number(part[1]) * (UNIT_MS[part[2] ?? ''] ?? Number.NaN)
  }
  return m[1] === '-' ? -total : total
}

/** Format milliseconds the way Go prints a duration, for logs and --help (`1m0s` becomes `1m`). */
export function formatDuration (ms: number): string {
  if (ms < 1000) return `${ms}ms`
  const h = Math.floor(ms / 3_600_000)
  const m = Math.floor((ms % 3_600_000) / 60_000)
  const s = (ms % 60_000) / 1000
  return `${h > 0 ? `${h}h` : ''}${m > 0 ? `${m}m` : ''}${s > 0 ? `${s}s` : ''}`
}
