/**
 * Child process of the registry benchmarks: a real RegistryService and HTTP server over a synthetic device, or over
 * a real WireGuard interface (`wgCli()`, so every poll runs and parses a real `wg show <iface> dump`).
 *
 *   registry-server.js <peers> <port> [json options: { iface?: string, limits?: Partial<CallerLimitsInit>, fullParse?: boolean }]
 *
 * Messages from the parent: { move: i } changes synthetic peer i's endpoint; { usage: true } answers with RSS, CPU
 * time, event-loop delay and the time each interface read took ({ reset: true } clears those samples).
 */
import { readFileSync, readdirSync } from 'node:fs'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { getHeapSpaceStatistics, writeHeapSnapshot } from 'node:v8'
import { Session } from 'node:inspector/promises'
import { writeFileSync } from 'node:fs'
import { closeAll, listenOn, registryHandler } from '../../src/server/registry/registry-http.js'
import { RegistryService } from '../../src/server/registry/registry-service.js'
import type { CallerLimitsInit } from '../../src/server/registry/caller-limits.js'
import { silentLogger } from '../../src/shared/log.js'
import { wgCli, type WgControl } from '../../src/shared/wg.js'
import { syntheticWg } from './synthetic-wg.js'
import { processCpuMs } from '../lab/process-info.js'
import type { WgPeer } from '../../src/shared/wg-dump.js'

const peers = Number(process.argv[2] ?? 1000)
const port = Number(process.argv[3] ?? 18080)
const opts = JSON.parse(process.argv[4] ?? '{}') as { iface?: string, limits?: Partial<CallerLimitsInit>, fullParse?: boolean, online?: boolean }
const synthetic = syntheticWg(peers)
// As wgnat-server reads it (unchanged peer lines not parsed again), or with every line parsed every read (fullParse).
// As wgnat-server runs `wg`: through a kept shell; BENCH_WG_FORK_EACH=1: a process per call, as before session 8.
const real = wgCli({ timeoutMs: 30_000, reuseUnchangedPeers: opts.fullParse !== true, persistent: process.env.BENCH_WG_FORK_EACH !== '1' })
const readMs: number[] = []
/**
 * `online`: every peer shown online, as long-polling clients are (they keep a handshake with the hub); a lab hub's
 * 10,000 peers never shake hands, and a request from a peer shown offline prompts a read. A handshake time in the
 * future reads as online; one patched copy per peer object, so unchanged peers keep their identity from read to read.
 */
const FUTURE_S = Math.floor(Date.now() / 1000) + 10 * 365 * 86400
const patched = new WeakMap<WgPeer, WgPeer>()
const online = (p: WgPeer): WgPeer => {
  let q = patched.get(p)
  if (q === undefined) { q = Object.freeze({ ...p, latestHandshake: FUTURE_S }); patched.set(p, q) }
  return q
}
// Time each read of the interface as the service sees it (run + parse for a real one).
const wg: WgControl = {
  async show (iface, o) {
    const t = performance.now()
    let d = await (opts.iface === undefined ? synthetic : real).show(iface, o)
    if (opts.online === true) d = { ...d, peers: d.peers.map(online) }
    readMs.push(performance.now() - t)
    return d
  },
  async set () {}
}
const service = new RegistryService({ iface: opts.iface ?? 'bench0', pollMs: 1000 }, { wg, logger: silentLogger() })
await service.start()
const handler = registryHandler(service, silentLogger(), { limits: opts.limits })
const servers = await listenOn(['127.0.0.1'], port, handler)
// The event-loop monitor is a 5 ms timer: about 0.9 % of a core on its own in an idle process (measured: 1.03 % against
// 0.10 % without). It runs only from the first { reset: true } on (the victims' phase), never in the idle window.
const loop = monitorEventLoopDelay({ resolution: 5 })

/**
 * CPU time of each of this process's threads, ms, summed by thread name (`main` for the main thread; V8's helpers are
 * `V8 DefaultWorke`, libuv's `libuv-worker`): where the idle CPU goes, off the main thread or on it.
 */
function threadCpuMs (): Record<string, number> {
  const out: Record<string, number> = {}
  let tasks: string[] = []
  try { tasks = readdirSync('/proc/self/task') } catch { return out }
  for (const tid of tasks) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8')
      const name = tid === String(process.pid) ? 'main' : stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      out[name] = (out[name] ?? 0) + (Number(fields[11]) + Number(fields[12])) * 10
    } catch {}
  }
  return out
}

/** CPU time of this process's `wg` runs, ms: its descendants, reaped or running (the shell kept to run `wg`). */
function childCpuMs (): number {
  return processCpuMs(process.pid, { children: true }) ?? 0
}

let snapshotTaken = false
// BENCH_CPU_PROFILE=<file>: a CPU profile between two { profile: true } messages (the idle window of `longpoll`).
// BENCH_ALLOC_PROFILE=<file>: instead, V8's sampling heap profile over the same window, counting objects already
// collected too (every allocation sampled, not only what is still live at its end): what makes the garbage.
let profiling: Session | undefined
let profiled = false
async function profileStep (): Promise<void> {
  const cpuFile = process.env.BENCH_CPU_PROFILE
  const allocFile = process.env.BENCH_ALLOC_PROFILE
  const file = allocFile ?? cpuFile
  if (file === undefined || profiled || service.waiting < 1000) return
  if (profiling === undefined) {
    profiling = new Session()
    profiling.connect()
    if (allocFile !== undefined) {
      await profiling.post('HeapProfiler.enable')
      await profiling.post('HeapProfiler.startSampling', { samplingInterval: 16384, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true })
    } else {
      await profiling.post('Profiler.enable')
      await profiling.post('Profiler.start')
    }
    return
  }
  const { profile } = allocFile !== undefined ? await profiling.post('HeapProfiler.stopSampling') : await profiling.post('Profiler.stop')
  // One file per registry process: each run (and each set of --node-args) has its own.
  const path = `${file}.${process.pid}.${allocFile !== undefined ? 'heapprofile' : 'cpuprofile'}`
  writeFileSync(path, JSON.stringify(profile))
  profiled = true
  console.error(`registry-server: ${allocFile !== undefined ? 'allocation' : 'CPU'} profile ${path} (node flags: ${process.execArgv.join(' ') || 'none'})`)
}
process.on('message', (msg: { profile?: boolean, move?: number, usage?: boolean, gc?: boolean, stop?: boolean, reset?: boolean }) => {
  if (msg.move !== undefined) synthetic.moveEndpoint(msg.move)
  if (msg.reset === true) { readMs.length = 0; loop.enable(); loop.reset(); process.send?.({ reset: true }) }
  // BENCH_HEAP_SNAPSHOT=1: one heap snapshot (in the working directory), at the first usage report taken with nine
  // in ten peers' long-polls held (profiling: it distorts that run's RSS and CPU figures).
  if (msg.usage === true && process.env.BENCH_HEAP_SNAPSHOT !== undefined && service.waiting >= peers * 0.9 && !snapshotTaken) {
    snapshotTaken = true
    console.error(`registry-server: heap snapshot ${writeHeapSnapshot(undefined)}`)
  }
  if (msg.profile === true) void profileStep()
  if (msg.usage === true) {
    const rssBeforeGc = process.memoryUsage().rss
    if (msg.gc === true) (globalThis as { gc?: () => void }).gc?.()
    const cpu = process.cpuUsage()
    const mu = process.memoryUsage()
    process.send?.({
      heapUsed: mu.heapUsed,
      heapTotal: mu.heapTotal,
      external: mu.external,
      rssBeforeGc,
      rss: mu.rss,
      cpuMs: (cpu.user + cpu.system) / 1000,
      systemMs: cpu.system / 1000,
      childCpuMs: childCpuMs(),
      threadCpuMs: threadCpuMs(),
      waiting: service.waiting,
      version: service.table.version,
      readMs: [...readMs],
      loopP99Ms: loop.percentile(99) / 1e6,
      loopMaxMs: loop.max / 1e6,
      // V8's spaces (MB committed / used): where the heap's size goes.
      spaces: Object.fromEntries(getHeapSpaceStatistics().map((sp) => [sp.space_name, [sp.physical_space_size / 1048576, sp.space_used_size / 1048576]])),
      load: handler.limits.load
    })
  }
  if (msg.stop === true) {
    service.stop()
    void closeAll(servers).then(() => process.exit(0))
  }
})
process.send?.({ ready: true })
