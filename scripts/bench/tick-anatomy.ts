/**
 * Sums up tick-probe.js's lines (one a sync cycle) for client-rest.js `--probe`: per cycle, where the CPU the client
 * counts went. Every figure is a median over the cycles given, with its range.
 */

/** One line of tick-probe.js. */
export interface ProbeLine {
  atMs: number
  wallMs: number
  mono0Us?: number
  mono1Us?: number
  cpuMs: number
  userMs: number
  sysMs: number
  mainMs: number
  v8Ms: number
  laterMs: number
  spawns: number
  spawnUserMs: number
  spawnSysMs: number
  minorFaults: number
  gcs?: string[]
  gcPauseMs?: number
  others?: Record<string, number>
  rssMb: number
}

export function parseProbeLines (text: string): ProbeLine[] {
  return text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as ProbeLine)
}

function med (xs: number[]): string {
  if (xs.length === 0) return '—'
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  const v = s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
  return s.length === 1 ? v.toFixed(1) : `${v.toFixed(1)} (${s[0]!.toFixed(1)}–${s.at(-1)!.toFixed(1)})`
}

/** Markdown rows: the client's figure and its parts, over the cycles given. */
export function anatomyTable (lines: ProbeLine[]): string[] {
  const others = new Set(lines.flatMap((l) => Object.keys(l.others ?? {})))
  const rows = [
    ['cycles', String(lines.length)],
    ['the client\'s figure: process CPU, every thread (ms)', med(lines.map((l) => l.cpuMs))],
    ['  of it user / system (ms)', `${med(lines.map((l) => l.userMs))} / ${med(lines.map((l) => l.sysMs))}`],
    ['wall time of the cycle (ms)', med(lines.map((l) => l.wallMs))],
    ['main thread (ms)', med(lines.map((l) => l.mainMs))],
    ['V8 platform threads: concurrent/parallel GC (ms)', med(lines.map((l) => l.v8Ms))],
    ['threads started later: libuv pool (ms)', med(lines.map((l) => l.laterMs))],
    ['`spawn` calls in the cycle', med(lines.map((l) => l.spawns))],
    ['  their synchronous part, user / system (ms)', `${med(lines.map((l) => l.spawnUserMs))} / ${med(lines.map((l) => l.spawnSysMs))}`],
    ['minor page faults of the process', med(lines.map((l) => l.minorFaults))],
    ['V8 collections ended in the cycle: count / main-thread pause (ms)', `${med(lines.map((l) => l.gcs?.length ?? 0))} / ${med(lines.map((l) => l.gcPauseMs ?? 0))}`],
    ...[...others].sort().map((t) => [`  main thread in ${t} callbacks (ms)`, med(lines.map((l) => l.others?.[t] ?? 0))]),
    ['RSS at the end (MB)', med(lines.map((l) => l.rssMb))]
  ]
  return ['| per cycle | median (range) |', '| --- | --- |', ...rows.map(([k, v]) => `| ${k} | ${v} |`)]
}
