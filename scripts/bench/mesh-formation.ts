/**
 * Mesh formation as a user sees it (issue 16), in the NAT lab: N clients, each behind its own `easy` router, the hub
 * NOT forwarding, so a ping between two spokes is answered only over a direct path.
 *
 *   node dist/scripts/bench/mesh-formation.js [--runs 5] [--sizes 2,8,16] [--modes wgnat,no-push,nebula] [--interval 1m]
 *
 * Per run: a fresh lab; the hub's daemon started (wgnat-server, or a nebula lighthouse) and given time to come up;
 * then, in every client namespace, one `fping` pinging every other client every 0.1 s (`fping -l -p 100 -D`: one
 * process per namespace, going on through send errors, as before nebula has made its tun device); then the clients
 * are launched together: each was spawned beforehand, held by a shell that stopped itself, and all are continued at
 * once (`held`). The figure is the moment the last ordered pair got its first reply (fping's own receive timestamp),
 * counted from launching the clients. The daemons run in the environment of an installed service (service-env.ts:
 * without `NODE_EXTRA_CA_CERTS`, which makes Node parse a CA bundle at each start; `--shell-env` keeps it).
 * `--pinger ping` pings as the bench did up to its seventh session: a shell loop per ordered pair running
 * `ping -D -c 1 -i 0.1 -w ...`, restarted every 0.1 s whenever it ends without a reply (as it does at once before
 * nebula's tun exists, and at the hub's "host unreachable" while the hub does not forward): with 16 clients those
 * loops took a third of the machine's CPU (`perf record -a`: bash, ping, sed and head), so the figure measured the
 * harness as much as the mesh.
 *
 * Modes:
 * - `wgnat`: `wgnat-client -t <interval>` (defaults otherwise);
 * - `no-push`: the same with `--no-push` (wg-nat's polling; wg-nat itself also waits one interval before its first
 *   sync, which is not added here: this is the figure after its first sync);
 * - `nebula`: Debian's `nebula` (installed here with apt-get when missing): lighthouse on the hub, a static host map,
 *   `punchy: {punch: true, respond: true}`, accept-all firewall, its own tun device and overlay 100.65.0.0/24;
 * - `before`: wgnat-client from another build (`--before-bin <its dist/bin/wgnat-client.cjs>`), run like `wgnat`.
 * Also reported: CPU time (user + system) of each client process from its launch until the last pair answered,
 * median over clients; how busy the whole machine was from the launch until the bench saw that reply (/proc/stat, all
 * cores, every process: the lab's wireguard-go, pingers and hub too, and anything else running), with the clients'
 * share of that CPU (their `wg` runs included; nebula's clients are single processes); and how busy it was in the half
 * second before the launch (the lab and its pingers alone).
 * `--hub-allowed-ips host` gives the spokes' hub peer the hub's address alone instead of the mesh subnet: no spoke then
 * sends its pings to another spoke into the hub's tunnel, where the hub decrypts and drops them until the direct path
 * is up (nebula without relays sends nothing to its lighthouse either).
 * `--count-wg` also reports the `wg` runs of each client (a counting `wg` first on its PATH) and their CPU;
 * `--client-args '<options>'` gives every wgnat client more options (to see what a feature costs while a mesh forms).
 * `--cpu-prof <dir>` writes a V8 CPU profile per client (the clients are stopped at the last reply).
 * A run that times out prints the pairs that never answered and, for each client in them, whether it still runs and
 * the end of its log.
 * `--verbose` prints the wgnat daemons' logs (at debug level) after each run. Modes are interleaved run by run so the machine's noise hits all alike. Prints a Markdown table of medians.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { HUB_UNDERLAY_IP } from '../lab/plan.js'
import { createLab, labSupport, type Lab } from '../lab/lab.js'
import { CLIENT_BIN, registerWithHub, startMesh, type MeshProcesses } from '../lab/mesh.js'
import type { SpawnedProcess } from '../lab/command.js'
import { machineBusyMs, processCpuMs, processStopped } from '../lab/process-info.js'
import { envNote, useServiceEnv } from './service-env.js'
import { median } from './median.js'
import { benchArgs, benchFail } from './bench-args.js'

const MODES = ['before', 'wgnat', 'no-push', 'nebula'] as const
type Mode = typeof MODES[number]

const { values } = benchArgs({
  options: {
    runs: { type: 'string', default: '5' },
    sizes: { type: 'string', default: '2,8,16' },
    modes: { type: 'string', default: 'wgnat,no-push,nebula' },
    /** Mode `before`: wgnat-client from another build (a path to its wgnat-client.cjs, or .mjs for builds before it), run like `wgnat`. */
    'before-bin': { type: 'string' },
    interval: { type: 'string', default: '1m' },
    timeout: { type: 'string', default: '60' },
    /** Print the daemons' logs of every run to stderr. */
    verbose: { type: 'boolean', default: false },
    /** wgnat modes: write each client's V8 CPU profile (node --cpu-prof) into this directory (clients stop at the last reply). */
    'cpu-prof': { type: 'string' },
    /** wgnat modes: count the `wg` processes each client starts (through a wrapper first on its PATH). */
    'count-wg': { type: 'boolean', default: false },
    /** wgnat modes: more options for every client (split at spaces), e.g. `--client-args '--no-port-mapping'`. */
    'client-args': { type: 'string', default: '' },
    /**
     * `fping` (one process per namespace) or `ping` (a shell loop per ordered pair, as the bench pinged before);
     * `fping,ping` runs every mode with each, interleaved run by run.
     */
    pinger: { type: 'string', default: 'fping' },
    /**
     * The spokes' AllowedIPs for the hub peer: `subnet` (100.64.0.0/24, the default: pings between spokes go into the
     * hub's tunnel, where the hub decrypts and drops them, until the direct path is up) or `host` (the hub's address
     * alone: no spoke sends another spoke's traffic to the hub, as nebula without relays sends none to its lighthouse).
     */
    'hub-allowed-ips': { type: 'string', default: 'subnet' },
    /** Start the clients with this shell's whole environment (see service-env.ts). */
    'shell-env': { type: 'boolean', default: false }
  }
})
const RUNS = Number(values.runs)
if (!Number.isInteger(RUNS) || RUNS < 1) benchFail(`--runs: not a whole number of runs: '${String(values.runs)}'`)
const SIZES = (values.sizes ?? '').split(',').map(Number)
if (SIZES.some((n) => !Number.isInteger(n) || n < 2)) benchFail(`--sizes: not a list of client counts of 2 or more: '${String(values.sizes)}'`)
const RUN_MODES = (values.modes ?? '').split(',') as Mode[]
for (const m of RUN_MODES) if (!MODES.includes(m)) benchFail(`--modes: unknown mode '${m}' (${MODES.join(', ')})`)
const INTERVAL = values.interval ?? '1m'
/** Give up on a run after this long (seconds from launching the clients). */
const TIMEOUT_S = Number(values.timeout)
if (!(TIMEOUT_S > 0)) benchFail(`--timeout: not a number of seconds: '${String(values.timeout)}'`)
const PINGERS = ['fping', 'ping'] as const
type Pinger = typeof PINGERS[number]
const RUN_PINGERS = (values.pinger ?? 'fping').split(',') as Pinger[]
for (const p of RUN_PINGERS) if (!PINGERS.includes(p)) benchFail(`--pinger: unknown pinger '${p}' (${PINGERS.join(', ')})`)
const hubAllowedIps = values['hub-allowed-ips']
if (hubAllowedIps !== 'subnet' && hubAllowedIps !== 'host') benchFail(`--hub-allowed-ips: '${String(hubAllowedIps)}' is not subnet or host`)
const HUB_ALLOWED_IPS: 'subnet' | 'host' = hubAllowedIps
/** Time for the hub's daemon to come up before the clients start. */
const HUB_SETTLE_MS = 1500
/** Time for the pingers to be running before the clients start. */
const PINGERS_SETTLE_MS = 1000
/** The window before the launch in which the lab's load is measured (the clients already held). */
const BEFORE_WINDOW_MS = 500
/** How long the clients may take to be spawned and held; how often that is checked. */
const HOLD_TIMEOUT_MS = 20_000
const HOLD_POLL_MS = 10
/** A wgnat daemon writes its code cache this long after its start (CACHE_WRITE_AFTER_MS, plus a margin). */
const CODE_CACHE_SETTLE_MS = 3500
const NEBULA_PORT = 4242
const NEBULA_NET = '100.65.0'

/**
 * The pinger of one namespace: every target every 0.1 s, in one process; each reply printed as
 * `[<epoch s>] <ip> : [<seq>], ...`. `--interval`: the time between two sends, so that all targets fit in each
 * 0.1 s (fping wakes at that interval: 1 ms for every namespace took 15 % of the machine with 16 clients).
 */
function fpingArgs (targets: string[]): string[] {
  const interval = Math.max(1, Math.min(10, Math.floor(90 / Math.max(1, targets.length))))
  return ['fping', '--loop', '--period=100', `--interval=${interval}`, '--timestamp', ...targets]
}

/** `--pinger ping`: for every target, a loop of `ping` until the first reply; print `<ip> <epoch s>`. */
function pingerScript (targets: string[], deadlineS: number): string {
  const loops = targets.map((ip) => `( until out=$(ping -D -n -c 1 -i 0.1 -W 1 -w ${deadlineS} ${ip} 2>/dev/null); do sleep 0.1; done
  ts=$(printf '%s\\n' "$out" | sed -n 's/^\\[\\([0-9.]*\\)\\].*bytes from.*/\\1/p' | head -n 1); echo "${ip} $ts" ) &`)
  return [...loops, 'wait'].join('\n')
}

/** A reply line of each pinger; fping's: `[1795967868.64656] 100.64.0.3 : [0], 64 bytes, 0.059 ms (0.059 avg, 0% loss)`. */
const REPLY: Record<Pinger, RegExp> = {
  fping: /^\[(?<at>\d+\.\d+)\] (?<ip>\S+)\s+: \[\d+\], \d+ bytes/,
  /** A line of `pingerScript`: `<ip> <epoch s>`. */
  ping: /^(?<ip>\S+) (?<at>\d+\.\d+)$/
}

interface Pingers { firstReply: Map<string, number>, expected: number }

/** The key of an ordered pair in `Pingers.firstReply`: the pinging client's name and the address it pings. */
const pairKey = (from: string, toIp: string): string => `${from}>${toIp}`

function startPingers (lab: Lab, pinger: Pinger, names: string[], ipOf: (name: string) => string): Pingers {
  const firstReply = new Map<string, number>()
  for (const from of names) {
    const targets = names.filter((to) => to !== from).map(ipOf)
    const p = lab.spawn(from, pinger === 'fping' ? fpingArgs(targets) : ['bash', '-c', pingerScript(targets, TIMEOUT_S + 30)])
    let buf = ''
    p.stdout?.on('data', (chunk: Buffer) => {
      buf += String(chunk)
      const lines = buf.split('\n')
      buf = lines.pop() ?? ''
      for (const line of lines) {
        const reply = REPLY[pinger].exec(line)?.groups
        if (reply === undefined) continue
        const pair = pairKey(from, reply.ip ?? '')
        if (!firstReply.has(pair)) firstReply.set(pair, Number(reply.at) * 1000)
      }
    })
  }
  return { firstReply, expected: names.length * (names.length - 1) }
}

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

/** nebula's CA and one certificate per node (index 0: the lighthouse), made once for the whole benchmark. */
function nebulaPki (dir: string, nodes: number): void {
  execFileSync('nebula-cert', ['ca', '-name', 'wgnat-bench', '-out-crt', join(dir, 'ca.crt'), '-out-key', join(dir, 'ca.key')])
  for (let i = 0; i < nodes; i++) {
    execFileSync('nebula-cert', ['sign', '-ca-crt', join(dir, 'ca.crt'), '-ca-key', join(dir, 'ca.key'), '-name', `n${i}`,
      '-ip', `${NEBULA_NET}.${i + 1}/24`, '-out-crt', join(dir, `n${i}.crt`), '-out-key', join(dir, `n${i}.key`)])
  }
}

function nebulaConfig (dir: string, i: number): string {
  const lighthouse = i === 0
  const path = join(dir, `n${i}.yml`)
  // JSON is YAML: one line per node, no YAML library needed.
  writeFileSync(path, JSON.stringify({
    pki: { ca: join(dir, 'ca.crt'), cert: join(dir, `n${i}.crt`), key: join(dir, `n${i}.key`) },
    static_host_map: lighthouse ? {} : { [`${NEBULA_NET}.1`]: [`${HUB_UNDERLAY_IP}:${NEBULA_PORT}`] },
    lighthouse: { am_lighthouse: lighthouse, interval: 60, hosts: lighthouse ? [] : [`${NEBULA_NET}.1`] },
    listen: { host: '0.0.0.0', port: NEBULA_PORT },
    punchy: { punch: true, respond: true },
    tun: { dev: 'neb0', mtu: 1300 },
    logging: { level: 'info' },
    firewall: { outbound: [{ port: 'any', proto: 'any', host: 'any' }], inbound: [{ port: 'any', proto: 'any', host: 'any' }] }
  }))
  return path
}

/**
 * `argv` held before it starts: a shell that stops itself (SIGSTOP) and, once continued (SIGCONT), becomes `argv`
 * (same pid: `ip netns exec` and the shell each exec the next). The clients are spawned held beforehand and all
 * released at the launch: spawning them one after another at the launch took the bench 150 to 230 ms with 8 clients
 * (each spawn forks this process), so the last client started that late, and the bench's own spawning competed with
 * the first clients for the CPU.
 */
function held (argv: string[]): string[] {
  return ['sh', '-c', 'kill -STOP $$ && exec "$@"', 'sh', ...argv]
}

/** Wait until every client is held (stopped); their pids. Throws naming a client that exited or was never held. */
async function allHeld (clients: Map<string, SpawnedProcess>, run: string): Promise<number[]> {
  const deadline = Date.now() + HOLD_TIMEOUT_MS
  for (;;) {
    const pending = [...clients].filter(([, p]) => p.pid === undefined || !processStopped(p.pid))
    if (pending.length === 0) return [...clients.values()].map((p) => p.pid as number)
    const gone = pending.find(([, p]) => p.exitCode !== null || p.signalCode !== null)
    if (gone !== undefined) {
      throw new Error(`${run}: client ${gone[0]} exited before its launch (${gone[1].exitCode ?? gone[1].signalCode ?? '?'})`)
    }
    if (Date.now() > deadline) {
      throw new Error(`${run}: clients ${pending.map(([name]) => name).join(', ')} not held within ${HOLD_TIMEOUT_MS} ms`)
    }
    await sleep(HOLD_POLL_MS)
  }
}

/** How much of a client's log a run keeps without --verbose: the end, for a run that times out. */
const LOG_TAIL_CHARS = 8000
/** Log lines quoted per client when a run times out. */
const TIMEOUT_LOG_LINES = 15

/** What a run that timed out leaves to go on: the pairs that never answered, each client's state, the end of its log. */
function timeoutReport (
  names: string[], ipOf: (name: string) => string, pingers: Pingers, clients: Map<string, SpawnedProcess>, logs: Map<string, string>
): string {
  const answered = (from: string, to: string): boolean => pingers.firstReply.has(pairKey(from, ipOf(to)))
  const missing = names.flatMap((from) => names.filter((to) => to !== from && !answered(from, to)).map((to) => `${from}>${to}`))
  const involved = new Set(missing.flatMap((pair) => pair.split('>')))
  const lines = [`    no reply: ${missing.join(', ')}`]
  for (const name of names.filter((x) => involved.has(x))) {
    const p = clients.get(name)
    const state = p === undefined
      ? 'not started'
      : p.exitCode !== null ? `exited ${p.exitCode}` : p.signalCode !== null ? `killed by ${p.signalCode}` : 'running'
    const log = (logs.get(name) ?? '').trimEnd()
    const tail = log.split('\n').slice(-TIMEOUT_LOG_LINES).map((l) => `      ${l}`).join('\n')
    lines.push(`    client ${name}: ${state}; ${log === '' ? 'nothing logged' : `the end of its log:\n${tail}`}`)
  }
  return lines.join('\n')
}

const launchTimes = new Map<Lab, number>()
const t0Of = (lab: Lab): number => launchTimes.get(lab) ?? 0

interface RunResult {
  ms: number
  cpuMs: number | undefined
  childCpuMs?: number
  wgRuns?: number
  /**
   * How busy the whole machine was (all its cores, every process) from the launch until the bench saw the last
   * reply, in % of its capacity; and the clients' share of that CPU (their `wg` runs included).
   */
  machineBusyPct: number
  /** How busy the machine was in the half second before the launch, with the lab and its pingers running. */
  beforePct: number
  clientsPct: number | undefined
}

/**
 * A directory holding a `wg` that logs one line per run to `log` (the client's pid: its parent, or its parent's parent
 * when that is the shell a daemon keeps to run `wg`), then runs the real one.
 */
function wgCounter (dir: string, log: string): string {
  const real = execFileSync('sh', ['-c', 'command -v wg'], { encoding: 'utf8' }).trim()
  writeFileSync(join(dir, 'wg'), `#!/bin/sh
p=$PPID
[ "$(cat /proc/$p/comm)" = sh ] && p=$(cut -d' ' -f4 /proc/$p/stat)
echo "$p $1 $3" >> ${log}
exec ${real} "$@"
`, { mode: 0o755 })
  return dir
}

async function once (n: number, mode: Mode, pinger: Pinger, pkiDir: string): Promise<RunResult | undefined> {
  const names = Array.from({ length: n }, (_, i) => `c${i + 1}`)
  const lab = await createLab({ sites: names.map((name) => ({ name, kind: 'easy' as const, clients: [name] })), hubAllowedIps: HUB_ALLOWED_IPS })
  let mesh: MeshProcesses | undefined
  const clients = new Map<string, SpawnedProcess>()
  const clientLogs = new Map<string, string>()
  let wgLog: string | undefined
  try {
    /** Start every client's process, held (see `held`) until the launch. */
    let spawnClients: () => void
    let ipOf: (name: string) => string
    if (mode === 'nebula') {
      lab.spawn('hub', ['nebula', '-config', nebulaConfig(pkiDir, 0)])
      ipOf = (name) => `${NEBULA_NET}.${names.indexOf(name) + 2}`
      spawnClients = () => { names.forEach((name, i) => clients.set(name, lab.spawn(name, held(['nebula', '-config', nebulaConfig(pkiDir, i + 1)])))) }
    } else {
      // Spokes of a running hub: each has handshaked with the hub, so the hub knows its endpoint.
      await registerWithHub(lab)
      const bin = mode === 'before' ? values['before-bin'] : CLIENT_BIN
      if (bin === undefined) throw new Error('mode before needs --before-bin <path to an older dist/bin/wgnat-client.cjs>')
      const clientArgs = ['-t', INTERVAL, '--log-level', values.verbose === true ? 'debug' : 'info', ...(mode === 'no-push' ? ['--no-push'] : []), ...(values['client-args'] ?? '').split(' ').filter((x) => x !== '')]
      mesh = startMesh(lab, { clients: [], clientArgs })
      ipOf = (name) => lab.clients[name]!.tunnelIp
      const m = mesh
      const prof = values['cpu-prof']
      const nodeArgs = (name: string): string[] => prof === undefined ? [] : ['--cpu-prof', '--cpu-prof-interval=200', `--cpu-prof-dir=${prof}`, `--cpu-prof-name=${mode}-n${n}-${lab.id}-${name}.cpuprofile`]
      let env: Record<string, string> | undefined
      if (values['count-wg'] === true) {
        wgLog = join(m.stateDir, 'wg-runs.log')
        env = { PATH: `${wgCounter(m.stateDir, wgLog)}:${process.env.PATH ?? ''}` }
      }
      spawnClients = () => {
        for (const name of names) {
          const proc = lab.spawn(name, held([process.execPath, ...nodeArgs(name), bin, '-i', lab.clients[name]!.wgIf, '-r', lab.hub.publicKey, '--state-dir', join(m.stateDir, name), ...clientArgs]), { env })
          clients.set(name, proc)
          // Every client's log is kept: whole with --verbose, else its end, for a run that times out.
          proc.stderr?.on('data', (b: Buffer) => {
            const text = (clientLogs.get(name) ?? '') + b.toString()
            clientLogs.set(name, values.verbose === true ? text : text.slice(-LOG_TAIL_CHARS))
          })
        }
      }
    }
    await sleep(HUB_SETTLE_MS)
    const pingers = startPingers(lab, pinger, names, ipOf)
    spawnClients()
    const pids = await allHeld(clients, `n=${n} ${mode}`)
    await sleep(Math.max(0, PINGERS_SETTLE_MS - BEFORE_WINDOW_MS))
    // How busy the lab keeps the machine before the launch: the pings (into the hub's tunnel for wgnat), wireguard-go.
    const idle0 = { busy: machineBusyMs(), at: Date.now() }
    await sleep(BEFORE_WINDOW_MS)
    const beforePct = 100 * (machineBusyMs() - idle0.busy) / ((Date.now() - idle0.at) * availableParallelism())
    // What `ip netns exec` and the holding shell used, left out of each client's CPU.
    const cpuBefore = new Map(pids.map((pid) => [pid, processCpuMs(pid) ?? 0]))
    const t0 = Date.now()
    launchTimes.set(lab, t0)
    const busy0 = machineBusyMs()
    for (const [name, p] of clients) {
      try {
        process.kill(p.pid as number, 'SIGCONT')
      } catch (err) {
        throw new Error(`n=${n} ${mode}: client ${name} (pid ${String(p.pid)}) could not be released: ${String(err)}`)
      }
    }
    while (pingers.firstReply.size < pingers.expected && Date.now() - t0 < TIMEOUT_S * 1000) await sleep(100)
    if (pingers.firstReply.size < pingers.expected) {
      console.error(`  n=${n} ${mode}: only ${pingers.firstReply.size} of ${pingers.expected} pairs answered within ${TIMEOUT_S} s`)
      console.error(timeoutReport(names, ipOf, pingers, clients, clientLogs))
      return undefined
    }
    const machineCpuMs = machineBusyMs() - busy0
    const machineBusyPct = 100 * machineCpuMs / ((Date.now() - t0) * availableParallelism())
    const cpu = pids.map((pid) => { const ms = processCpuMs(pid); return ms === undefined ? undefined : ms - (cpuBefore.get(pid) ?? 0) })
      .filter((x): x is number => x !== undefined)
    const childCpu = [...clients.values()].map((p) => processCpuMs(p.pid, { children: true }))
    const clientsCpuMs = cpu.length < clients.size || childCpu.includes(undefined) ? undefined : [...cpu, ...childCpu].reduce((a: number, b) => a + (b ?? 0), 0)
    const clientsPct = clientsCpuMs === undefined ? undefined : 100 * clientsCpuMs / machineCpuMs
    // `wg` runs per client, counted by the wrapper (the parent pid of each run is the client).
    const wgRuns = wgLog === undefined ? undefined : median([...clients.values()].map((p) => runsOf(wgLog as string, p.pid)))
    // Let the clients live past the moment a daemon writes its code cache (3 s after its start), as an installed
    // client does once: the next runs start with it, as every start after an installed client's first does.
    await sleep(Math.max(0, t0 + CODE_CACHE_SETTLE_MS - Date.now()))
    if (values.verbose === true) console.error(`first replies (ms after launch): ${[...pingers.firstReply].sort((x, y) => x[1] - y[1]).map(([pair, at]) => `${pair} ${Math.round(at - t0)}`).join(', ')}`)
    return { ms: Math.max(...pingers.firstReply.values()) - t0, cpuMs: median(cpu), childCpuMs: mode === 'nebula' ? undefined : median(childCpu), wgRuns, machineBusyPct, clientsPct, beforePct }
  } finally {
    for (const p of clients.values()) p.kill('SIGTERM')
    // Let them exit (wgnat-client writes its state file on the way) before their state directory goes.
    await Promise.all(clients.values())
    if (values.verbose === true && mesh !== undefined) console.error(`t0 ${new Date(t0Of(lab)).toISOString()}\n${mesh.logs()}\n${[...clientLogs].map(([name, text]) => `--- wgnat-client ${name} (launched at t0)\n${text}`).join('\n')}`)
    await mesh?.cleanup()
    await lab.destroy()
  }
}

function runsOf (log: string, pid: number | undefined): number {
  let text = ''
  try { text = readFileSync(log, 'utf8') } catch {}
  return text.split('\n').filter((line) => line.split(' ')[0] === String(pid)).length
}

/** Installs Debian's package `pkg` when `command versionArg` does not run. */
function ensureDebianPackage (pkg: string, command: string, versionArg: string): void {
  try {
    execFileSync(command, [versionArg], { stdio: 'ignore' })
  } catch {
    console.error(`mesh-formation: installing Debian's ${pkg} (apt-get install ${pkg})`)
    execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', pkg], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } })
  }
}

const ENV_NOTE = envNote(values['shell-env'] === true)
useServiceEnv(values['shell-env'] === true)
const support = await labSupport()
if (!support.ok) { console.error(`mesh-formation: the lab cannot run here: ${support.reason}`); process.exit(1) }
/** One column per mode and pinger; a mode's name carries its pinger when more than one runs. */
const COLUMNS = RUN_MODES.flatMap((mode) => RUN_PINGERS.map((pinger) => ({ mode, pinger, name: RUN_PINGERS.length > 1 ? `${mode} (${pinger})` : mode })))
const pkiDir = mkdtempSync(join(tmpdir(), 'wgnat-bench-nebula-'))
try {
  if (RUN_PINGERS.includes('fping')) ensureDebianPackage('fping', 'fping', '--version')
  if (RUN_MODES.includes('nebula')) { ensureDebianPackage('nebula', 'nebula', '-version'); nebulaPki(pkiDir, Math.max(...SIZES) + 1) }
  const fmt = (ms: number | undefined): string => ms === undefined ? 'timeout' : `${(ms / 1000).toFixed(2)} s`
  const fmtCpu = (ms: number | undefined): string => ms === undefined ? '-' : `${Math.round(ms)} ms CPU`
  const fmtMachine = (x: { machineBusyPct: number, clientsPct: number | undefined, beforePct: number | undefined }): string =>
    `${Math.round(x.machineBusyPct)} % busy${x.clientsPct === undefined ? '' : `, ${Math.round(x.clientsPct)} % of it clients`}${x.beforePct === undefined ? '' : ` (${Math.round(x.beforePct)} % before the launch)`}`
  const rows: string[] = []
  for (const n of SIZES) {
    const res = new Map<string, Array<RunResult | undefined>>(COLUMNS.map((c) => [c.name, []]))
    for (let r = 0; r < RUNS; r++) {
      for (const { name: mode, mode: m, pinger } of COLUMNS) {
        const x = await once(n, m, pinger, pkiDir)
        res.get(mode)?.push(x)
        const extra = `${x?.childCpuMs === undefined ? '' : `; its wg runs ${Math.round(x.childCpuMs)} ms CPU`}${x?.wgRuns === undefined ? '' : `, ${x.wgRuns} wg runs`}${x === undefined ? '' : `; machine ${fmtMachine(x)}`}`
        console.error(`  n=${n} ${mode} run ${r + 1}: last pair answered ${fmt(x?.ms)} after launch; CPU per client ${fmtCpu(x?.cpuMs)}${extra}`)
      }
    }
    const cell = (m: string): string => {
      const xs = (res.get(m) ?? []).map((x) => x?.ms)
      const ok = xs.filter((x): x is number => x !== undefined)
      const cpu = median((res.get(m) ?? []).map((x) => x?.cpuMs))
      const done = (res.get(m) ?? []).filter((x): x is RunResult => x !== undefined)
      const machine = median(done.map((x) => x.machineBusyPct))
      const clients = median(done.map((x) => x.clientsPct))
      const before = median(done.map((x) => x.beforePct))
      const whole = machine === undefined ? '' : `; machine ${fmtMachine({ machineBusyPct: machine, clientsPct: clients, beforePct: before })}`
      return `${fmt(median(xs))} (${ok.length === 0 ? '-' : `${fmt(Math.min(...ok))}–${fmt(Math.max(...ok))}`}); ${fmtCpu(cpu)}${whole}`
    }
    rows.push(`| ${n} | ${COLUMNS.map((c) => cell(c.name)).join(' | ')} |`)
  }
  console.log(`| clients | ${COLUMNS.map(({ name: m }) => `${m}: median of ${RUNS} (min–max); CPU per client; machine busy from launch to the last pair (clients' share; busy in the half second before the launch)`).join(' | ')} |`)
  console.log(`| --- | ${COLUMNS.map(() => '---').join(' | ')} |`)
  for (const row of rows) console.log(row)
  console.log(`\n${ENV_NOTE}; the spokes' hub peer: AllowedIPs ${HUB_ALLOWED_IPS === 'host' ? 'the hub\'s address alone' : 'the whole mesh subnet'} (--hub-allowed-ips ${HUB_ALLOWED_IPS})`)
} finally {
  rmSync(pkiDir, { recursive: true, force: true })
}
