/**
 * The client at rest with many peers that never answer (issue 18): the real wgnat-client on a real lab WireGuard
 * interface (wireguard-go), against a fake registry (fake-registry.ts, not wgnat-server) in the hub's namespace that
 * serves N peers whose endpoints lead nowhere, holds long-polls, and says the hub relays.
 *
 *   node dist/scripts/bench/client-rest.js [--peers 1000] [--runs 3] [--warmup 150] [--seconds 60] [--cpu-prof <dir> [--cpu-prof-interval <µs>]] [--no-http] [--trace-gc] [--probe <file> [--probe-hooks]] [--client-bin <dist/bin/wgnat-client.cjs>] [--node-args='<flags>']
 *
 * Per run (a fresh lab each): start the client at the default log level; time until the interface holds all N
 * peers ("applied"); then CPU (the client's utime+stime plus its reaped `wg` children, from /proc), RSS and log lines
 * over the first minute after applied, and over `--seconds` once `--warmup` seconds have passed since applied
 * (steady state: every attempt failed and backed off). Prints medians (min-max) as Markdown.
 * The client runs with `--http` (metrics on loopback in its namespace; `--no-http`: without, as by default) for the CPU of one sync cycle (issue 16):
 * `wgnat_sync_cycle_cpu_seconds` sum / count over each window (the client process only, not its `wg` commands).
 * `--cpu-prof <dir>`: run the client under `node --cpu-prof` and leave its profile (written when it stops) in <dir>.
 * Also per window, figures the machine's load distorts less: the client's wake-ups a second (voluntary context
 * switches of all its threads, from /proc/<pid>/task) and its main thread's share of the CPU. `--trace-gc`: run the
 * client under `node --trace-gc` and count its garbage collections in each window (scavenges, mark-compacts, their
 * pauses in ms); a line a collection on its stdout, not counted as a log line. `--probe <file>`: load tick-probe.js
 * into the client, which appends to <file> one JSON line per sync cycle (per-thread CPU, the fork, V8's collections;
 * with `--probe-hooks` the main thread's CPU in other callbacks inside the cycle); summed up by tick-anatomy.js.
 * `--node-args='<flags>'` (with `=`: the flags start with a dash): more options for the client's node, V8 flags such
 * as `--no-flush-bytecode` (any flag makes the start slower, node's own code cache then being refused; the steady
 * window does not see that).
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { run } from '../lab/command.js'
import { createLab, labSupport, type Lab } from '../lab/lab.js'
import { CLIENT_BIN, registerWithHub } from '../lab/mesh.js'
import { processCpuMs } from '../lab/process-info.js'
import { anatomyTable, parseProbeLines, type ProbeLine } from './tick-anatomy.js'
import { benchArgs } from './bench-args.js'

const { values } = benchArgs({ options: { peers: { type: 'string', default: '1000' }, runs: { type: 'string', default: '3' }, warmup: { type: 'string', default: '150' }, seconds: { type: 'string', default: '60' }, 'cpu-prof': { type: 'string' }, 'no-http': { type: 'boolean', default: false }, 'trace-gc': { type: 'boolean', default: false }, probe: { type: 'string' }, 'cpu-prof-interval': { type: 'string' }, 'client-bin': { type: 'string' }, 'probe-hooks': { type: 'boolean', default: false }, 'node-args': { type: 'string' } } })
const N = Number(values.peers); const RUNS = Number(values.runs); const WARMUP_S = Number(values.warmup); const SECONDS = Number(values.seconds)
if (![N, RUNS, WARMUP_S, SECONDS].every((x) => Number.isInteger(x) && x > 0) || N > 60_000) {
  console.error(`client-rest: --peers (1-60000), --runs, --warmup and --seconds must be positive whole numbers`)
  process.exit(64)
}
const FAKE_REGISTRY = join(import.meta.dirname, 'fake-registry.js')
/** `--client-bin <path>`: another build's dist/bin/wgnat-client.cjs (a before/after with this bench and probe). */
const CLIENT = values['client-bin'] ?? CLIENT_BIN
const CLK_TCK = Number((await run(['getconf', 'CLK_TCK'], { reject: false })).stdout.trim()) || 100
const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

function statFields (pid: number): number[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  return stat.slice(stat.lastIndexOf(')') + 2).trim().split(' ').map(Number)
}
/** utime+stime of the client and of all its descendants, in clock ticks: the client and the `wg` commands it ran. */
function cpuTicks (pid: number): number { const f = statFields(pid); return (f[11] ?? 0) + (f[12] ?? 0) + childTicks(pid) }
/** The `wg` commands alone (reaped by the client, or by the shell it keeps to run them: `processCpuMs`). */
function childTicks (pid: number): number { return (processCpuMs(pid, { children: true }) ?? 0) * CLK_TCK / 1000 }
/** Voluntary context switches of every thread (each a wake-up after a wait), and the main thread's utime+stime. */
function wakeFigures (pid: number): { wakes: number, mainTicks: number } {
  let wakes = 0
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try { wakes += Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8'))?.[1] ?? 0) } catch {}
  }
  const stat = readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8')
  const t = stat.slice(stat.lastIndexOf(')') + 2).trim().split(' ').map(Number)
  return { wakes, mainTicks: (t[11] ?? 0) + (t[12] ?? 0) }
}
/** One line of `node --trace-gc`: its kind and pause. */
interface GcEvent { atMs: number, kind: 'scavenge' | 'mark-compact' | 'other', pauseMs: number, line: string }
function parseGcLine (line: string, atMs: number): GcEvent | undefined {
  const m = /ms: (Scavenge|Mark-Compact|Mark-sweep|Minor Mark-Sweep)[^,]*, ([\d.]+) \/ [\d.]+ ms/.exec(line)
  if (m === null) return undefined
  return { atMs, kind: m[1] === 'Scavenge' ? 'scavenge' : m[1]!.startsWith('Mark') ? 'mark-compact' : 'other', pauseMs: Number(m[2]), line: line.replace(/^\[[^\]]*\]\s*/, '').trim() }
}
function rssMb (pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return Number(m?.[1] ?? 0) / 1024
}
/** The node process running the client (`ip netns exec` execs in place; else a descendant). */
function clientPid (spawned: number): number {
  const isClient = (pid: number): boolean => { try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(CLIENT) } catch { return false } }
  if (isClient(spawned)) return spawned
  const found = readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number).find((pid) => isClient(pid) && pid > spawned)
  if (found === undefined) throw new Error(`client-rest: wgnat-client not found under pid ${spawned}`)
  return found
}

interface Window { cpuPct: number, wgPct: number, rssMb: number, logLines: number, cycleMs: number, cycles: number, wakesPerS: number, mainPct: number, scavenges: number, markCompacts: number, gcPauseMs: number }
/** Where the client serves its metrics, inside its namespace. */
const METRICS = '127.0.0.1:9586'
interface Result { appliedS: number, first: Window, steady: Window, probe: ProbeLine[] }

async function once (): Promise<Result> {
  const lab = await createLab({ sites: [{ name: 'a', kind: 'easy', clients: ['a'] }] })
  const stateDir = mkdtempSync(join(tmpdir(), 'wgnat-bench-rest-'))
  try {
    await registerWithHub(lab)
    const a = lab.clients.a!
    // A /16 mesh through the hub, so that N /32s fit.
    await lab.exec('a', ['wg', 'set', a.wgIf, 'peer', lab.hub.publicKey, 'allowed-ips', '100.64.0.0/16'])
    const registry = lab.spawn('hub', [process.execPath, FAKE_REGISTRY, '--listen', `${lab.hub.tunnelIp}:${lab.hub.listenPort}`, '--peers', String(N), '--self', `${a.publicKey}=${lab.routers.a!.wanIp}:${a.listenPort}`, '--prefix', '100.64', '--relay'])
    await sleep(1500)
    const lines: number[] = []
    const profile = [...(values['cpu-prof'] === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', values['cpu-prof'], ...(values['cpu-prof-interval'] === undefined ? [] : ['--cpu-prof-interval', values['cpu-prof-interval']])]), ...(values['trace-gc'] === true ? ['--trace-gc'] : []), ...(values['node-args'] ?? '').split(' ').filter((x) => x !== '')]
    const gcs: GcEvent[] = []
    // --no-http: the client exactly as installed by default (no metrics endpoint; the sync-cycle column is then empty).
    const http = values['no-http'] === true ? [] : ['--http', METRICS]
    // --probe <file>: tick-probe.js watches each sync cycle from inside the client and writes a JSON line a cycle.
    const probeArgs = values.probe === undefined ? [] : ['--import', join(import.meta.dirname, 'tick-probe.js')]
    const probeEnv = values.probe === undefined ? undefined : { ...process.env as Record<string, string>, TICK_PROBE_OUT: values.probe, TICK_PROBE_HOOKS: values['probe-hooks'] === true ? '1' : '0', ...(process.env.TICK_PROBE_DUMPS === undefined ? {} : { TICK_PROBE_DUMPS: process.env.TICK_PROBE_DUMPS }) }
    const client = lab.spawn('a', [process.execPath, ...profile, ...probeArgs, CLIENT, '-i', a.wgIf, '-r', lab.hub.publicKey, '-t', '1m', '--state-dir', stateDir, ...http], probeEnv === undefined ? undefined : { env: probeEnv })
    client.stderr?.on('data', (chunk: Buffer) => { for (const l of String(chunk).split('\n')) if (l.trim() !== '') lines.push(Date.now()) })
    client.stdout?.on('data', (chunk: Buffer) => { for (const l of String(chunk).split('\n')) { const e = parseGcLine(l, Date.now()); if (e !== undefined) gcs.push(e) } })
    const t0 = Date.now()
    let appliedAt = 0
    while (Date.now() - t0 < 120_000) {
      const peers = (await lab.exec('a', ['wg', 'show', a.wgIf, 'peers'], { reject: false })).stdout.split('\n').filter((l) => l !== '').length
      if (peers >= N + 1) { appliedAt = Date.now(); break }
      await sleep(200)
    }
    if (appliedAt === 0) throw new Error(`client-rest: the table was not applied within 120 s\n${client.all === undefined ? '' : ''}`)
    const pid = clientPid(client.pid!)
    /** Sum and count of the sync cycles' CPU so far (seconds), from the client's metrics. */
    const cycles = async (): Promise<{ sum: number, count: number }> => {
      if (http.length === 0) return { sum: NaN, count: NaN }
      const text = (await lab.exec('a', [process.execPath, '-e', `fetch('http://${METRICS}/metrics').then((r) => r.text()).then((t) => { process.stdout.write(t) })`], { reject: false })).stdout
      const value = (name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN)
      return { sum: value('wgnat_sync_cycle_cpu_seconds_sum'), count: value('wgnat_sync_cycle_cpu_seconds_count') }
    }
    const measure = async (seconds: number): Promise<Window> => {
      const s0 = await cycles()
      const c0 = cpuTicks(pid); const k0 = childTicks(pid); const x0 = wakeFigures(pid); const w0 = Date.now()
      await sleep(seconds * 1000)
      const c1 = cpuTicks(pid); const k1 = childTicks(pid); const x1 = wakeFigures(pid); const w1 = Date.now()
      const s1 = await cycles()
      const n = s1.count - s0.count
      const wallS = (w1 - w0) / 1000
      const inWindow = gcs.filter((e) => e.atMs >= w0 && e.atMs < w1)
      return {
        cpuPct: (c1 - c0) / CLK_TCK / wallS * 100,
        wgPct: (k1 - k0) / CLK_TCK / wallS * 100,
        rssMb: rssMb(pid),
        logLines: lines.filter((t) => t >= w0 && t < w1).length * 60 / wallS,
        cycleMs: n > 0 ? (s1.sum - s0.sum) / n * 1000 : NaN,
        cycles: n,
        wakesPerS: (x1.wakes - x0.wakes) / wallS,
        mainPct: (x1.mainTicks - x0.mainTicks) / CLK_TCK / wallS * 100,
        scavenges: inWindow.filter((e) => e.kind === 'scavenge').length,
        markCompacts: inWindow.filter((e) => e.kind === 'mark-compact').length,
        gcPauseMs: inWindow.reduce((sum, e) => sum + e.pauseMs, 0)
      }
    }
    const first = await measure(60)
    const rest = appliedAt + WARMUP_S * 1000 - Date.now()
    if (rest > 0) await sleep(rest)
    const steadyFromMs = Date.now()
    const steady = await measure(SECONDS)
    const steadyToMs = Date.now()
    client.kill('SIGTERM'); registry.kill('SIGTERM')
    // The profile is written as the client exits.
    if (values['cpu-prof'] !== undefined) await client.catch(() => {})
    // --trace-gc: every collection after the table was applied, with its time since then and V8's reason.
    for (const e of gcs.filter((g) => g.atMs >= appliedAt && g.kind !== 'other')) console.error(`  gc +${((e.atMs - appliedAt) / 1000).toFixed(1)} s: ${e.line}`)
    // --probe: the cycles that ended in the steady window (each line is written 200 ms after its cycle).
    await sleep(values.probe === undefined ? 0 : 500)
    const probe = values.probe === undefined ? [] : parseProbeLines(readFileSync(values.probe, 'utf8')).filter((l) => l.atMs >= steadyFromMs && l.atMs < steadyToMs)
    return { appliedS: (appliedAt - t0) / 1000, first, steady, probe }
  } finally {
    await lab.destroy()
    rmSync(stateDir, { recursive: true, force: true })
  }
}

function stat (xs: number[], digits = 1): string {
  const s = [...xs].sort((x, y) => x - y)
  const m = Math.floor(s.length / 2)
  const med = s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
  return `${med.toFixed(digits)} (${s[0]!.toFixed(digits)}–${s.at(-1)!.toFixed(digits)})`
}

const support = await labSupport()
if (!support.ok) { console.error(`client-rest: no lab here: ${support.reason}`); process.exit(69) }
const results: Result[] = []
for (let r = 0; r < RUNS; r++) {
  const res = await once()
  results.push(res)
  console.error(`run ${r + 1}: applied after ${res.appliedS.toFixed(1)} s; first minute ${res.first.cpuPct.toFixed(2)} % CPU, ${res.first.rssMb.toFixed(0)} MB, ${res.first.logLines.toFixed(0)} lines/min; steady ${res.steady.cpuPct.toFixed(2)} % CPU (wg commands ${res.steady.wgPct.toFixed(2)}), ${res.steady.rssMb.toFixed(0)} MB, ${res.steady.logLines.toFixed(0)} lines/min, ${res.steady.cycles} sync cycles of ${res.steady.cycleMs.toFixed(2)} ms CPU; main thread ${res.steady.mainPct.toFixed(2)} %, ${res.steady.wakesPerS.toFixed(1)} wake-ups/s${values['trace-gc'] === true ? `, GC ${res.steady.scavenges} scavenges + ${res.steady.markCompacts} mark-compacts, ${res.steady.gcPauseMs.toFixed(1)} ms paused` : ''}`)
}
console.log(`| peers | table applied (s) | first minute: CPU % / RSS MB / log lines/min | steady (after ${WARMUP_S} s): CPU % core | RSS MB | log lines/min | sync cycle CPU ms (cycles/min) |`)
console.log('| --- | --- | --- | --- | --- | --- | --- |')
console.log(`| ${N} | ${stat(results.map((x) => x.appliedS))} | ${stat(results.map((x) => x.first.cpuPct), 2)} / ${stat(results.map((x) => x.first.rssMb), 0)} / ${stat(results.map((x) => x.first.logLines), 0)} | ${stat(results.map((x) => x.steady.cpuPct), 2)} | ${stat(results.map((x) => x.steady.rssMb), 0)} | ${stat(results.map((x) => x.steady.logLines), 0)} | ${stat(results.map((x) => x.steady.cycleMs), 2)} (${stat(results.map((x) => x.steady.cycles * 60 / SECONDS), 0)}) |`)
console.log('')
console.log(`| peers | steady: main thread CPU % core | wake-ups a second (all threads) |${values['trace-gc'] === true ? ' GC in the window: scavenges / mark-compacts / ms paused |' : ''}`)
console.log(`| --- | --- | --- |${values['trace-gc'] === true ? ' --- |' : ''}`)
console.log(`| ${N} | ${stat(results.map((x) => x.steady.mainPct), 2)} | ${stat(results.map((x) => x.steady.wakesPerS), 1)} |${values['trace-gc'] === true ? ` ${stat(results.map((x) => x.steady.scavenges), 0)} / ${stat(results.map((x) => x.steady.markCompacts), 0)} / ${stat(results.map((x) => x.steady.gcPauseMs), 1)} |` : ''}`)
if (values.probe !== undefined) {
  console.log('')
  console.log(`Where a cycle's CPU went (tick-probe.js, the steady windows' ${results.reduce((n, r) => n + r.probe.length, 0)} cycles of ${RUNS} run(s)):`)
  console.log('')
  for (const row of anatomyTable(results.flatMap((r) => r.probe))) console.log(row)
}
