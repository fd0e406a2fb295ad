/**
 * Client CPU benchmark, in the NAT lab: two clients behind `easy` home routers, a direct path between them, and
 * the wgnat-client processes' CPU while idle and while iperf3 pushes traffic through the tunnel.
 *
 *   node dist/scripts/bench/client-cpu.js [--seconds 20] [--runs 3] [--modes idle,udp,tcp] [--bandwidth 200M]
 *                                         [--client-args "--nat-check 1m"]
 *
 * Why: the STUN check opens a raw UDP receive socket, and a raw socket gets a copy of every UDP datagram the host
 * receives (WireGuard's own included). Held open, it would cost CPU in proportion to the traffic; opened for one
 * round trip every `--nat-check` (5 s by default) it should not. The target: under load the client stays under 2%
 * of one core, and idle it is near zero.
 *
 * One lab for all runs; per run and mode, over `--seconds`:
 * - `idle`: no traffic but keepalives;
 * - `udp`: `iperf3 -u -b <bandwidth>` from a to b's tunnel address (a sends, b receives every datagram);
 * - `tcp`: `iperf3` TCP from a to b (data one way, ACKs the other).
 * CPU is utime+stime from /proc/<pid>/stat (all threads) over the wall time of the window, in % of one core, for
 * both clients (a sends, b receives) and their wireguard-go; the `wg` commands a client runs are reaped children,
 * counted apart (cutime+cstime). Datagrams: iperf3's packet count (UDP) and the UDP datagrams each client's
 * namespace received (/proc/net/snmp InDatagrams: the WireGuard packets and the tunnelled ones, which is what a raw
 * UDP socket there would see). Prints medians (min–max) over the runs as a Markdown table on stdout.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { run } from '../lab/command.js'
import { createLab, labSupport, type Lab } from '../lab/lab.js'
import { CLIENT_BIN, pathBetween, startMesh, waitFor } from '../lab/mesh.js'
import { processCpuMs } from '../lab/process-info.js'

const OPTIONS = {
  seconds: { type: 'string', default: '20' },
  runs: { type: 'string', default: '3' },
  modes: { type: 'string', default: 'idle,udp,tcp' },
  bandwidth: { type: 'string', default: '200M' },
  'client-args': { type: 'string', default: '' }
} as const

function usage (message: string): never {
  console.error(`client-cpu: ${message}`)
  process.exit(64)
}

/** `--client-args "--nat-check 1m"`: parseArgs takes a value starting with a dash only as `--client-args=...`. */
function joinClientArgs (argv: string[]): string[] {
  const out: string[] = []
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--client-args' && i + 1 < argv.length) out.push(`--client-args=${argv[++i]}`)
    else out.push(argv[i]!)
  }
  return out
}

const { values } = (() => {
  try {
    return parseArgs({ args: joinClientArgs(process.argv.slice(2)), options: OPTIONS })
  } catch (err) {
    return usage(err instanceof Error ? err.message : String(err))
  }
})()

type Mode = 'idle' | 'udp' | 'tcp'
const MODES: readonly Mode[] = ['idle', 'udp', 'tcp']

const SECONDS = Number(values.seconds)
if (!Number.isInteger(SECONDS) || SECONDS < 1 || SECONDS > 600) usage(`--seconds: not a whole number of seconds from 1 to 600: '${values.seconds}'`)
const RUNS = Number(values.runs)
if (!Number.isInteger(RUNS) || RUNS < 1 || RUNS > 50) usage(`--runs: not a whole number from 1 to 50: '${values.runs}'`)
const SELECTED = (values.modes ?? '').split(',').map((m) => m.trim()).filter((m) => m !== '')
for (const m of SELECTED) if (!(MODES as readonly string[]).includes(m)) usage(`--modes: unknown mode '${m}' (idle, udp, tcp)`)
const BANDWIDTH = values.bandwidth ?? '200M'
if (!/^\d+(\.\d+)?[KMG]?$/.test(BANDWIDTH)) usage(`--bandwidth: not an iperf3 rate like 200M: '${BANDWIDTH}'`)
const CLIENT_ARGS = (values['client-args'] ?? '').split(/\s+/).filter((a) => a !== '')
/** Time for the mesh to form: registry start, first sync, punching, handshake. */
const DIRECT_TIMEOUT_MS = 60_000
const IPERF_PORT = 5201
/** Let a finished iperf3 test and its last packets settle before the next window. */
const SETTLE_MS = 1000

/** Clock ticks per second, for /proc/<pid>/stat times. */
const CLK_TCK = await (async () => {
  const n = Number((await run(['getconf', 'CLK_TCK'], { reject: false })).stdout.trim())
  return Number.isInteger(n) && n > 0 ? n : 100
})()

interface CpuTicks { self: number, children: number }

/** utime+stime (all threads) and cutime+cstime (reaped children) of a process, in clock ticks. */
function cpuTicks (pid: number): CpuTicks {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // Fields after the parenthesised command name start at field 3: utime is field 14, so index 11.
  const f = stat.slice(stat.lastIndexOf(')') + 2).trim().split(' ').map(Number)
  // children: reaped ones, and the shell a client keeps to run `wg` with all it reaped.
  return { self: (f[11] ?? 0) + (f[12] ?? 0), children: (processCpuMs(pid, { children: true }) ?? 0) * CLK_TCK / 1000 }
}

function cmdline (pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '')
  } catch {
    return []
  }
}

function allPids (): number[] {
  return readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number)
}

function parentOf (pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
  } catch {
    return undefined
  }
}

/**
 * The node process running the client: `ip netns exec` execs its command in place, so normally the spawned pid
 * itself; otherwise a descendant of it.
 */
function clientPid (spawnedPid: number): number {
  const isClient = (pid: number): boolean => { const c = cmdline(pid); return c.includes(CLIENT_BIN) && c[0] === process.execPath }
  if (isClient(spawnedPid)) return spawnedPid
  const descendants = new Set([spawnedPid])
  for (let grew = true; grew;) {
    grew = false
    for (const pid of allPids()) {
      const ppid = parentOf(pid)
      if (ppid !== undefined && descendants.has(ppid) && !descendants.has(pid)) { descendants.add(pid); grew = true }
    }
  }
  const found = [...descendants].find(isClient)
  if (found === undefined) throw new Error(`wgnat-client not found under pid ${spawnedPid}: its command line is '${cmdline(spawnedPid).join(' ')}'`)
  return found
}

/** The wireguard-go process serving `wgIf` (the lab starts it as `wireguard-go -f <wgIf>`). */
function wireguardGoPid (wgIf: string): number {
  const found = allPids().filter((pid) => { const c = cmdline(pid); return (c[0] ?? '').endsWith('wireguard-go') && c.at(-1) === wgIf })
  if (found.length !== 1) throw new Error(`wireguard-go for '${wgIf}': found ${found.length} processes`)
  return found[0]!
}

/** UDP datagrams received in a host's namespace so far (/proc/net/snmp is per network namespace). */
async function udpInDatagrams (lab: Lab, host: string): Promise<number> {
  const out = await lab.exec(host, ['cat', '/proc/net/snmp'])
  const lines = out.stdout.split('\n').filter((l) => l.startsWith('Udp:'))
  const names = (lines[0] ?? '').split(/\s+/); const nums = (lines[1] ?? '').split(/\s+/)
  const i = names.indexOf('InDatagrams')
  if (i < 0) throw new Error(`/proc/net/snmp in ${host}: no Udp InDatagrams`)
  return Number(nums[i])
}

/** The STUN check interval the clients run with: the last `--nat-check` given, else the environment, else the default. */
async function natCheckInEffect (lab: Lab): Promise<string> {
  const i = CLIENT_ARGS.lastIndexOf('--nat-check')
  if (i >= 0 && CLIENT_ARGS[i + 1] !== undefined) return `${CLIENT_ARGS[i + 1]} (--client-args)`
  const given = CLIENT_ARGS.find((a) => a.startsWith('--nat-check='))
  if (given !== undefined) return `${given.slice('--nat-check='.length)} (--client-args)`
  if (process.env.WGNAT_NAT_CHECK !== undefined) return `${process.env.WGNAT_NAT_CHECK} (WGNAT_NAT_CHECK)`
  const help = (await lab.exec('a', [process.execPath, CLIENT_BIN, '--help'])).stdout.replace(/\s+/g, ' ')
  const m = /--nat-check <duration> .*?\(default: ([^,)]+)/.exec(help)
  return `${m?.[1] ?? 'unknown'} (default)`
}

interface Sample {
  clientA: number
  clientB: number
  /** CPU of the `wg` commands client a ran (reaped children). */
  childrenA: number
  wgGoA: number
  wgGoB: number
  /** Throughput iperf3 measured at the receiver, bits per second. */
  bps: number | undefined
  /** Datagrams iperf3 sent (UDP only). */
  iperfPackets: number | undefined
  /** Loss iperf3 reported (UDP only), percent. */
  lostPercent: number | undefined
  udpInA: number
  udpInB: number
}

interface Pids { clientA: number, clientB: number, wgGoA: number, wgGoB: number }

async function measure (lab: Lab, pids: Pids, mode: Mode): Promise<Sample> {
  const bIp = lab.clients.b!.tunnelIp
  const before = { a: cpuTicks(pids.clientA), b: cpuTicks(pids.clientB), ga: cpuTicks(pids.wgGoA), gb: cpuTicks(pids.wgGoB), inA: await udpInDatagrams(lab, 'a'), inB: await udpInDatagrams(lab, 'b') }
  const t0 = process.hrtime.bigint()
  let json: any
  if (mode === 'idle') {
    await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000))
  } else {
    const argv = ['iperf3', '-c', bIp, '-p', String(IPERF_PORT), '-t', String(SECONDS), '--json', ...(mode === 'udp' ? ['-u', '-b', BANDWIDTH] : [])]
    const out = await lab.exec('a', argv, { timeoutMs: (SECONDS + 30) * 1000, reject: false })
    try { json = JSON.parse(out.stdout) } catch { throw new Error(`iperf3 ${mode}: no JSON output (exit ${out.exitCode}): '${out.stderr.trim().slice(-300)}'`) }
    if (typeof json.error === 'string') throw new Error(`iperf3 ${mode}: '${json.error}'`)
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9
  const after = { a: cpuTicks(pids.clientA), b: cpuTicks(pids.clientB), ga: cpuTicks(pids.wgGoA), gb: cpuTicks(pids.wgGoB), inA: await udpInDatagrams(lab, 'a'), inB: await udpInDatagrams(lab, 'b') }
  const pct = (ticks: number): number => ticks / CLK_TCK / seconds * 100
  const end = json?.end
  // UDP: end.sum is the receiver's view (packets, loss); TCP: end.sum_received.
  const bps: number | undefined = mode === 'udp' ? (end?.sum_received?.bits_per_second ?? end?.sum?.bits_per_second) : mode === 'tcp' ? end?.sum_received?.bits_per_second : undefined
  return {
    clientA: pct(after.a.self - before.a.self),
    clientB: pct(after.b.self - before.b.self),
    childrenA: pct(after.a.children - before.a.children),
    wgGoA: pct(after.ga.self - before.ga.self),
    wgGoB: pct(after.gb.self - before.gb.self),
    bps,
    iperfPackets: mode === 'udp' ? (end?.sum_sent?.packets ?? end?.sum?.packets) : undefined,
    lostPercent: mode === 'udp' ? end?.sum?.lost_percent : undefined,
    udpInA: after.inA - before.inA,
    udpInB: after.inB - before.inB
  }
}

function median (xs: number[]): number {
  const v = [...xs].sort((a, b) => a - b)
  return v.length % 2 === 1 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2
}

const support = await labSupport()
if (!support.ok) { console.error(`client-cpu: the lab cannot run here: ${support.reason}`); process.exit(1) }

const started = Date.now()
const lab = await createLab({ sites: [{ name: 'a', kind: 'easy', clients: ['a'] }, { name: 'b', kind: 'easy', clients: ['b'] }] })
const mesh = startMesh(lab, { clientArgs: CLIENT_ARGS })
const results = new Map<Mode, Sample[]>(SELECTED.map((m) => [m as Mode, []]))
let natCheck = 'unknown'
try {
  const direct = await waitFor(async () => (await pathBetween(lab, 'a', 'b')).path === 'direct', DIRECT_TIMEOUT_MS)
  if (direct === undefined) throw new Error(`a -> b not direct after ${DIRECT_TIMEOUT_MS / 1000} s:\n${mesh.logs()}`)
  console.error(`a -> b direct after ${((Date.now() - started) / 1000).toFixed(1)} s (lab and mesh start included)`)
  const pids: Pids = {
    clientA: clientPid(mesh.clients.a!.pid!),
    clientB: clientPid(mesh.clients.b!.pid!),
    wgGoA: wireguardGoPid(lab.clients.a!.wgIf),
    wgGoB: wireguardGoPid(lab.clients.b!.wgIf)
  }
  console.error(`pids: client a ${pids.clientA}${pids.clientA === mesh.clients.a!.pid ? ' (the spawned pid: ip netns exec exec\'d node)' : ` (child of ${mesh.clients.a!.pid})`}, client b ${pids.clientB}, wireguard-go a ${pids.wgGoA}, b ${pids.wgGoB}; CLK_TCK ${CLK_TCK}`)
  natCheck = await natCheckInEffect(lab)
  if (SELECTED.some((m) => m !== 'idle')) {
    lab.spawn('b', ['iperf3', '-s', '-B', lab.clients.b!.tunnelIp, '-p', String(IPERF_PORT)])
    const up = await waitFor(async () => (await lab.exec('b', ['ss', '-Hltn', `sport = :${IPERF_PORT}`])).stdout.trim() !== '', 10_000)
    if (up === undefined) throw new Error(`iperf3 server in b not listening on ${IPERF_PORT} after 10 s`)
  }
  for (let r = 0; r < RUNS; r++) {
    // Interleave the modes so machine noise hits all alike.
    for (const mode of SELECTED as Mode[]) {
      const s = await measure(lab, pids, mode)
      results.get(mode)!.push(s)
      const rate = s.bps === undefined ? '' : `, ${(s.bps / 1e6).toFixed(0)} Mbit/s`
      console.error(`  run ${r + 1} ${mode}: client a ${s.clientA.toFixed(2)}%, client b ${s.clientB.toFixed(2)}%, a's wg children ${s.childrenA.toFixed(2)}%, wireguard-go a ${s.wgGoA.toFixed(1)}% b ${s.wgGoB.toFixed(1)}%${rate}, UDP in a ${s.udpInA} b ${s.udpInB}${s.iperfPackets === undefined ? '' : `, iperf3 packets ${s.iperfPackets} (lost ${s.lostPercent?.toFixed(1)}%)`}`)
      await new Promise((resolve) => setTimeout(resolve, SETTLE_MS))
    }
  }
} finally {
  await mesh.cleanup()
  await lab.destroy()
}

const pct = (xs: number[]): string => `${median(xs).toFixed(2)}% (${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)})`
const count = (xs: number[]): string => median(xs).toFixed(0)
console.log(`Client CPU, % of one core, over ${SECONDS} s windows; median (min–max) of ${RUNS} runs. STUN check interval: ${natCheck}. Client args: ${CLIENT_ARGS.length === 0 ? '(defaults)' : CLIENT_ARGS.join(' ')}.`)
console.log('')
console.log('| mode | client a (sender) | client b (receiver) | client a `wg` children | wireguard-go a | wireguard-go b | iperf3 throughput | iperf3 datagrams | UDP datagrams received, a / b |')
console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |')
for (const [mode, xs] of results) {
  const bps = xs.map((s) => s.bps).filter((b): b is number => b !== undefined)
  const pkts = xs.map((s) => s.iperfPackets).filter((p): p is number => p !== undefined)
  const loss = xs.map((s) => s.lostPercent).filter((p): p is number => p !== undefined)
  const label = mode === 'udp' ? `udp (-b ${BANDWIDTH})` : mode
  console.log(`| ${label} | ${pct(xs.map((s) => s.clientA))} | ${pct(xs.map((s) => s.clientB))} | ${pct(xs.map((s) => s.childrenA))} | ${median(xs.map((s) => s.wgGoA)).toFixed(1)}% | ${median(xs.map((s) => s.wgGoB)).toFixed(1)}% | ${bps.length === 0 ? '-' : `${(median(bps) / 1e6).toFixed(0)} Mbit/s`} | ${pkts.length === 0 ? '-' : `${count(pkts)}${loss.length === 0 ? '' : ` (${median(loss).toFixed(1)}% lost)`}`} | ${count(xs.map((s) => s.udpInA))} / ${count(xs.map((s) => s.udpInB))} |`)
}
console.error(`total ${((Date.now() - started) / 1000).toFixed(0)} s`)
