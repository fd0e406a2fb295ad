/**
 * A diagnostic preload for the client (issue 16), loaded by `client-rest.js --probe <file>` as
 * `node --import dist/scripts/bench/tick-probe.js dist/bin/wgnat-client.mjs ...` with TICK_PROBE_OUT=<file>.
 * Not part of wgnat: it changes nothing the client does, it only watches.
 *
 * The client counts a sync cycle as `process.cpuUsage()` from the start to the end of `tick()` (mesh-client.ts,
 * tickLoop). This probe wraps `process.cpuUsage` and, for each such window (a call without an argument, then the call
 * that passes its result back), writes one JSON line with what the process did inside it:
 * - the client's own figure (`cpuMs`: user+system of every thread, from getrusage) and the wall time;
 * - each thread's CPU from /proc/self/task/<tid>/schedstat (ns on a CPU), grouped as the main thread, the threads
 *   node starts with it (V8's platform workers, which run the concurrent and parallel parts of garbage collection, and
 *   the inspector's signal thread) and the threads started later (libuv's threadpool);
 * - the synchronous part of every `ChildProcess.spawn` in the window (node forks there: the page-table copy is the
 *   parent's system time), its CPU, user and system, and the minor faults of the process over the window;
 * - V8's collections that ended in the window (PerformanceObserver 'gc': kind and main-thread pause);
 * - with TICK_PROBE_HOOKS=1, the main thread's CPU inside the callbacks of other async resources that ran in the
 *   window (timers, sockets, the long-poll's HTTP, the NAT check's UDP), by resource type (async_hooks before/after;
 *   this itself costs CPU, so those runs are for the split, not the totals).
 */
import { createHook } from 'node:async_hooks'
import { ChildProcess, execFileSync } from 'node:child_process'
import { appendFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { PerformanceObserver, performance } from 'node:perf_hooks'

const OUT = process.env.TICK_PROBE_OUT
/** TICK_PROBE_DUMPS=<prefix>: 2 s after each cycle, save the interface's dump as <prefix>-<n>.txt (what changed between reads). */
const DUMPS = process.env.TICK_PROBE_DUMPS
const IFACE = process.argv[process.argv.indexOf('-i') + 1]
let dumps = 0
const realCpuUsage = process.cpuUsage.bind(process)
const cpuMs = (u: NodeJS.CpuUsage): number => (u.user + u.system) / 1000

/** The threads present at load time besides the main one: V8's platform workers and node's signal thread. */
const early = new Set(readdirSync('/proc/self/task').map(Number).filter((t) => t !== process.pid))

function threadNs (): Map<number, number> {
  const out = new Map<number, number>()
  for (const tid of readdirSync('/proc/self/task')) {
    try { out.set(Number(tid), Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0])) } catch {}
  }
  return out
}
function groups (a: Map<number, number>, b: Map<number, number>): { main: number, v8: number, later: number } {
  const g = { main: 0, v8: 0, later: 0 }
  for (const [tid, ns] of b) {
    const d = (ns - (a.get(tid) ?? 0)) / 1e6
    if (tid === process.pid) g.main += d
    else if (early.has(tid)) g.v8 += d
    else g.later += d
  }
  return g
}

interface Open { wall0: number, mono0Us: number, threads: Map<number, number>, usage: NodeJS.ResourceUsage, spawnUser: number, spawnSys: number, spawns: number, others: Map<string, number> }
/** Every collection, by its start on performance.now()'s clock (entries arrive after the fact, so they are matched late). */
const gcLog: Array<{ startMs: number, kind: string, pauseMs: number }> = []
let open: Open | undefined
const starts = new WeakMap<NodeJS.CpuUsage, Open>()

// The fork: ChildProcess.prototype.spawn runs uv_spawn synchronously (fork + the child's exec handshake).
type SpawnFn = (this: ChildProcess, ...args: unknown[]) => unknown
const proto = ChildProcess.prototype as unknown as { spawn: SpawnFn }
const realSpawn = proto.spawn
proto.spawn = function (this: ChildProcess, ...args: unknown[]) {
  const c0 = realCpuUsage()
  try { return realSpawn.apply(this, args) } finally {
    const c = realCpuUsage(c0)
    if (open !== undefined) { open.spawnUser += c.user / 1000; open.spawnSys += c.system / 1000; open.spawns++ }
  }
}

new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind
    gcLog.push({ startMs: e.startTime, kind: kind === 1 ? 'scavenge' : kind === 4 ? 'mark-compact' : kind === 2 ? 'minor-mc' : kind === 8 ? 'weak' : `gc${kind ?? '?'}`, pauseMs: e.duration })
    if (gcLog.length > 1000) gcLog.splice(0, 500)
  }
}).observe({ entryTypes: ['gc'] })

if (process.env.TICK_PROBE_HOOKS === '1') {
  // Main-thread CPU in other resources' callbacks while a window is open (the tick's own work runs in PROMISE ones).
  const stack: Array<{ type: string, c0: number }> = []
  const types = new Map<number, string>()
  createHook({
    init (id, type) { if (type !== 'PROMISE') types.set(id, type) },
    before (id) { const type = types.get(id); if (type !== undefined) stack.push({ type, c0: cpuMs(realCpuUsage()) }) },
    after (id) {
      if (!types.has(id)) return
      const top = stack.pop()
      if (top !== undefined && open !== undefined) open.others.set(top.type, (open.others.get(top.type) ?? 0) + cpuMs(realCpuUsage()) - top.c0)
    },
    destroy (id) { types.delete(id) }
  }).enable()
}

process.cpuUsage = function (prev?: NodeJS.CpuUsage): NodeJS.CpuUsage {
  if (prev === undefined) {
    // The probe's own reads first, then the client's figure: they stay outside the window.
    open = { wall0: 0, mono0Us: 0, threads: threadNs(), usage: process.resourceUsage(), spawnUser: 0, spawnSys: 0, spawns: 0, others: new Map() }
    open.wall0 = performance.now()
    open.mono0Us = Number(process.hrtime.bigint() / 1000n)
    const u0 = realCpuUsage()
    starts.set(u0, open)
    return u0
  }
  const u = realCpuUsage(prev)
  const w = starts.get(prev)
  if (w !== undefined && OUT !== undefined) {
    const end = process.resourceUsage()
    const g = groups(w.threads, threadNs())
    const wall1 = performance.now()
    const mono1Us = Number(process.hrtime.bigint() / 1000n)
    const line: Record<string, unknown> = {
      atMs: Date.now(),
      wallMs: wall1 - w.wall0,
      // CLOCK_MONOTONIC in µs, the clock of a --cpu-prof profile's timestamps: to pick the cycle's samples.
      mono0Us: w.mono0Us,
      mono1Us,
      cpuMs: cpuMs(u),
      userMs: u.user / 1000,
      sysMs: u.system / 1000,
      mainMs: g.main,
      v8Ms: g.v8,
      laterMs: g.later,
      spawns: w.spawns,
      spawnUserMs: w.spawnUser,
      spawnSysMs: w.spawnSys,
      minorFaults: end.minorPageFault - w.usage.minorPageFault,
      others: Object.fromEntries(w.others),
      rssMb: process.memoryUsage.rss() / 2 ** 20
    }
    if (open === w) open = undefined
    // The collections of the window are reported a little later: their entries arrive after the fact.
    setTimeout(() => {
      const gcs = gcLog.filter((e) => e.startMs >= w.wall0 && e.startMs < wall1)
      line.gcs = gcs.map((e) => e.kind)
      line.gcPauseMs = gcs.reduce((sum, e) => sum + e.pauseMs, 0)
      appendFileSync(OUT, JSON.stringify(line) + '\n')
    }, 200).unref()
    if (DUMPS !== undefined && IFACE !== undefined) {
      setTimeout(() => { writeFileSync(`${DUMPS}-${dumps++ % 20}.txt`, execFileSync('wg', ['show', IFACE, 'dump'])) }, 2000).unref()
    }
  }
  return u
}
