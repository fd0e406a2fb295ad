/**
 * Registry under load (issues 11 and 18): do the other peers still get their deltas quickly while one peer hammers
 * the registry, and while the registry reads a big interface once a second?
 *
 *   node dist/scripts/bench/registry-load.js [--peers 10000] [--seconds 10] [--runs 3]
 *        [--scenarios idle,full-loop,hammer,longpoll] [--limits on,off] [--device synthetic|real]
 *        [--idle-seconds 10] [--settle-seconds 2] [--parse changed|all] [--node-args='<flags>;<other flags>']
 *        [--wait 60|<min>-<max>] [--keep-alive off|on] [--probe-idle-ms 1000] [--online] [--spread]
 *
 * The real RegistryService and HTTP server run in a child process (registry-server.ts) over loopback; each peer's
 * allowed IP is a loopback address (127.1.x.y/32), so a driver binding it is that peer, as over the tunnel.
 * - `--device synthetic`: an in-memory device (scripts/bench/synthetic-wg.ts).
 * - `--device real` (root): a lab hub's wireguard-go interface given <peers> peers with batched `wg set`; the
 *   registry reads it with the real `wg show <iface> dump` once a second. Also prints how long that read takes (run
 *   and parse, apart).
 * Scenarios (each with 20 other peers fetching deltas, `GET /v1/table?since=V`, every 20 ms, one keep-alive
 * connection each, for --seconds):
 * - `idle`: nothing else;
 * - `full-loop`: one peer fetches the full table in a loop;
 * - `hammer`: one peer holds up to 10,000 idle connections (re-opened a second after the registry closes them)
 *   and runs 16 full-table loops at once, retrying at once on 429. The attacker runs in its own process.
 * - `longpoll` (issue 16): every other peer holds a long-poll (`--wait`, 60 s by default); --settle-seconds after they are all held, --idle-seconds with nothing else,
 *   over which the registry's RSS, V8 heap and CPU time (its own, and its `wg` runs': cutime + cstime) are read,
 *   then the victims as above. Prints a second table.
 * `--parse all` has the registry parse every line of every read (as before WgDumpReader); `--node-args` runs the
 * registry's node with each `;`-separated set of flags in turn (V8 heap sizing). BENCH_CPU_PROFILE=<prefix> writes a
 * CPU profile of the registry over the `longpoll` idle window (<prefix>.<pid>.cpuprofile, one per run); BENCH_ALLOC_PROFILE=<prefix>
 * instead a sampling heap profile of every allocation in that window, collected or not (<prefix>.<pid>.heapprofile); BENCH_HEAP_SNAPSHOT=1
 * a heap snapshot with nine in ten long-polls held (both distort the figures of their run).
 * `--wait` is what each long-poll asks (a range: a random hold in it per poll, as wgnat's client picks since issue 16);
 * `--keep-alive on` re-polls over one kept connection per peer, as wgnat's client does (off: a new connection per
 * poll, `Connection: close`), with TCP keep-alive probes after `--probe-idle-ms` of silence (1000: Node's agent,
 * what the client had before issue 16; 25000 since). The idle table then also gives the re-polls answered in the window.
 * `--online` shows every peer online (registry-server.ts), as long-polling clients are: without it every request
 * (re-polls and the victims' included) prompts an interface read, which real online clients do not.
 * `--spread`: the first long-poll of each peer asks a random 1..<max> s, so the window sees renewals at the steady
 * rate (peers' renewals spread evenly) instead of one wave a whole hold after the ramp.
 * `--limits off` raises every per-caller limit out of reach: the registry as it was before them.
 * Prints one Markdown row per device, limits and scenario: medians over the runs.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { Agent, request } from 'node:http'
import { fileURLToPath } from 'node:url'
import { execa } from 'execa'
import { createLab, labSupport, type Lab } from '../lab/lab.js'
import { wgCli } from '../../src/shared/wg.js'
import { parseWgDump } from '../../src/shared/wg-dump.js'
import { WgDumpReader } from '../../src/shared/wg-dump-reader.js'
import { peerAddress, peerKey } from './synthetic-wg.js'
import { benchArgs } from './bench-args.js'

const { values } = benchArgs({
  options: {
    peers: { type: 'string', default: '10000' },
    seconds: { type: 'string', default: '10' },
    runs: { type: 'string', default: '3' },
    scenarios: { type: 'string', default: 'idle,full-loop,hammer' },
    limits: { type: 'string', default: 'on,off' },
    device: { type: 'string', default: 'synthetic' },
    'idle-seconds': { type: 'string', default: '10' },
    'settle-seconds': { type: 'string', default: '2' },
    parse: { type: 'string', default: 'changed' },
    'node-args': { type: 'string', default: '' },
    wait: { type: 'string', default: '60' },
    'keep-alive': { type: 'string', default: 'off' },
    'probe-idle-ms': { type: 'string', default: '1000' },
    online: { type: 'boolean', default: false },
    spread: { type: 'boolean', default: false }
  }
})
const IDLE_SECONDS = Number(values['idle-seconds'])
/** Wait between every long-poll held and the start of the idle window (the ramp's GC settles). */
const SETTLE_SECONDS = Number(values['settle-seconds'])
/** `--node-args` sets of flags for the registry's node, separated by `;` (each set is run): '' is none. */
const NODE_ARG_SETS = values['node-args'].split(';').map((set) => set.trim())
const PEERS = Number(values.peers)
const SECONDS = Number(values.seconds)
const RUNS = Number(values.runs)
const VICTIMS = 20
const VICTIM_PAUSE_MS = 20
const [WAIT_MIN_S, WAIT_MAX_S] = ((r: number[]) => [r[0] ?? 60, r[1] ?? r[0] ?? 60])(values.wait.split('-').map(Number))
const KEEP_ALIVE = values['keep-alive'] === 'on'
/**
 * `--spread`: each peer's first long-poll asks a random 1..max s, so renewals come at the steady rate (peers' phases
 * spread evenly, as after a few rounds of random holds) from the start, not in one wave a whole hold after the ramp.
 */
const SPREAD = values.spread
const PROBE_IDLE_MS = Number(values['probe-idle-ms'])
/** Long-polls answered so far (the driver's count: re-polls the registry served). */
let pollsAnswered = 0
/** The last idle window's CPU by thread, for the run's line. */
let lastThreads = ''
const NO_LIMITS = { maxConnectionsPerSource: 1e9, maxRequestsPerPeer: 1e9, fullFetchesPerMinute: 1e9, fullFetchBurst: 1e9 }

interface Usage { threadCpuMs?: Record<string, number>, systemMs?: number, spaces?: Record<string, [number, number]>, rss: number, heapUsed: number, heapTotal: number, external: number, cpuMs: number, childCpuMs: number, waiting: number, version: number, readMs: number[], loopP99Ms: number, loopMaxMs: number }
interface AttackResult { full: number, refused: number, errors: number, heldAtEnd: number, connectAttempts: number }

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))
const pct = (xs: number[], p: number): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p / 100 * s.length))] ?? NaN }
const median = (xs: number[]): number => pct(xs, 50)
const threadPct = (u0: Usage, u1: Usage, name: string, ms: number): number => ((u1.threadCpuMs?.[name] ?? NaN) - (u0.threadCpuMs?.[name] ?? 0)) / ms * 100

function get (port: number, path: string, from: string, agent: Agent): Promise<{ status: number, body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, localAddress: from, agent }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }))
    })
    req.on('error', reject)
    req.end()
  })
}

function ask<T> (child: ChildProcess, msg: object): Promise<T> {
  return new Promise((resolve) => {
    child.once('message', (m) => resolve(m as T))
    child.send(msg)
  })
}

async function forkReady (file: string, args: string[], execArgv: string[] = []): Promise<ChildProcess> {
  const child = fork(fileURLToPath(new URL(file, import.meta.url)), args, { stdio: 'inherit', execArgv })
  await new Promise((resolve, reject) => { child.once('message', resolve); child.once('exit', reject) })
  return child
}

/** Give a lab hub `n` peers whose allowed IPs are the benchmark's loopback addresses; returns the interface. */
async function realInterface (lab: Lab, n: number): Promise<string> {
  const wg = wgCli({ timeoutMs: 60_000 })
  const t = Date.now()
  await wg.set(lab.hub.wgIf, Array.from({ length: n }, (_, i) => ({
    publicKey: peerKey(i),
    endpoint: { address: `198.18.${200 + Math.floor(i / 250) % 50}.${(i % 250) + 2}`, port: 40000 + (i % 20000) },
    allowedIps: [`${peerAddress(i)}/32`]
  })))
  console.error(`registry-load: ${n} peers on ${lab.hub.wgIf} in ${Date.now() - t} ms`)
  return lab.hub.wgIf
}

/** How long a real `wg show dump` of the interface takes: the run, and the parse on its own. */
async function measureRead (iface: string): Promise<{ runMs: number, parseMs: number, reuseMs: number, bytes: number }> {
  const runs: number[] = []; const parses: number[] = []; const reuses: number[] = []; let bytes = 0
  const reader = new WgDumpReader()
  for (let i = 0; i < 7; i++) {
    const t0 = performance.now()
    const { stdout } = await execa('wg', ['show', iface, 'dump'], { stripFinalNewline: false })
    const t1 = performance.now()
    parseWgDump(stdout)
    const t2 = performance.now()
    await reader.parse(stdout)
    // The first read through the reader parses every line; the later ones only what changed (here: nothing).
    if (i > 0) reuses.push(performance.now() - t2)
    parses.push(t2 - t1)
    runs.push(t1 - t0)
    bytes = stdout.length
  }
  return { runMs: median(runs), parseMs: median(parses), reuseMs: median(reuses), bytes }
}

/**
 * Every peer but the attacker's and the victims' holds a long-poll (`--wait`), re-issued when answered, as idle
 * clients do. Returns a function that ends them.
 */
function holdLongPolls (port: number, version: number): () => void {
  // One agent: its pools are per local address, so with keep-alive each peer keeps its own connection.
  const agent = new Agent(KEEP_ALIVE ? { keepAlive: true, keepAliveMsecs: PROBE_IDLE_MS, maxSockets: 1 } : { keepAlive: false })
  const open = new Set<ReturnType<typeof request>>()
  let running = true
  const poll = (i: number, since: number, first = false): void => {
    if (!running) return
    const wait = first && SPREAD ? 1 + Math.floor(Math.random() * WAIT_MAX_S) : WAIT_MIN_S + Math.floor(Math.random() * (WAIT_MAX_S - WAIT_MIN_S + 1))
    const req = request({ host: '127.0.0.1', port, path: `/v1/table?since=${since}&wait=${wait}`, localAddress: peerAddress(i), agent }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        open.delete(req)
        pollsAnswered++
        let next = since
        try { next = (JSON.parse(Buffer.concat(chunks).toString()) as { version: number }).version } catch {}
        setTimeout(() => poll(i, next), res.statusCode === 200 ? 0 : 1000)
      })
    })
    if (KEEP_ALIVE) req.on('socket', (socket) => { socket.setKeepAlive(true, PROBE_IDLE_MS) })
    req.on('error', () => { open.delete(req); setTimeout(() => poll(i, since), 1000) })
    open.add(req)
    req.end()
  }
  for (let i = VICTIMS + 1; i < PEERS; i++) poll(i, version, true)
  return () => { running = false; for (const r of open) r.destroy(); agent.destroy() }
}

async function scenario (port: number, server: ChildProcess, name: string): Promise<Record<string, number>> {
  const attackerAddress = peerAddress(0)
  let stopPolls: (() => void) | undefined
  let idle = { cpuPct: NaN, childCpuPct: NaN, rss: NaN, heapUsed: NaN, heapTotal: NaN, external: NaN, waiting: NaN, reads: NaN, repolls: NaN, rssMedian: NaN, rssMax: NaN, systemPct: NaN, mainPct: NaN, threads: '' }
  if (name === 'longpoll') {
    const first = await get(port, '/v1/table', peerAddress(VICTIMS + 1), new Agent())
    stopPolls = holdLongPolls(port, (JSON.parse(first.body) as { version: number }).version)
    // Spread: some polls are always between an answer and their renewal; a held 99 % is everyone.
    const want = Math.floor((PEERS - VICTIMS - 1) * (SPREAD ? 0.99 : 1))
    for (let t = Date.now(); Date.now() - t < 120_000; await sleep(500)) {
      if ((await ask<Usage>(server, { usage: true })).waiting >= want) break
    }
    await sleep(SETTLE_SECONDS * 1000)
    server.send({ profile: true })
    const u0 = await ask<Usage>(server, { usage: true })
    const answered0 = pollsAnswered
    // RSS every 5 s over the window: the end of a window can fall right after a burst of renewals.
    const rssSamples: number[] = []
    for (const end = Date.now() + IDLE_SECONDS * 1000; Date.now() < end - 100;) {
      await sleep(Math.min(5000, end - Date.now()))
      rssSamples.push((await ask<Usage>(server, { usage: true })).rss / 1048576)
    }
    const u1 = await ask<Usage>(server, { usage: true })
    const repolls = pollsAnswered - answered0
    server.send({ profile: true })
    const ms = IDLE_SECONDS * 1000
    idle = {
      cpuPct: (u1.cpuMs - u0.cpuMs) / ms * 100,
      childCpuPct: (u1.childCpuMs - u0.childCpuMs) / ms * 100,
      rss: u1.rss / 1048576,
      heapUsed: u1.heapUsed / 1048576,
      heapTotal: u1.heapTotal / 1048576,
      external: u1.external / 1048576,
      waiting: u1.waiting,
      reads: u1.readMs.length - u0.readMs.length,
      repolls,
      systemPct: ((u1.systemMs ?? NaN) - (u0.systemMs ?? NaN)) / ms * 100,
      rssMedian: median(rssSamples),
      rssMax: Math.max(...rssSamples),
      // The main thread's share and each other thread's (by name, summed), % of a core over the window.
      mainPct: threadPct(u0, u1, 'main', ms),
      threads: Object.keys(u1.threadCpuMs ?? {}).map((n) => `${n} ${threadPct(u0, u1, n, ms).toFixed(2)}`).join(', ')
    }
    lastThreads = idle.threads
    const spaces = Object.entries(u1.spaces ?? {}).filter(([, [size]]) => size >= 0.5).map(([name, [size, used]]) => `${name} ${size.toFixed(1)}/${used.toFixed(1)}`)
    console.error(`registry-load: longpoll idle window: V8 spaces committed/used (MB): ${spaces.join(', ')}`)
  }
  let attacker: ChildProcess | undefined
  if (name === 'full-loop' || name === 'hammer') {
    const [conns, loops] = name === 'hammer' ? [10_000, 16] : [0, 1]
    attacker = await forkReady('./registry-attacker.js', [String(port), attackerAddress, String(conns), String(loops)])
    await sleep(2000)
  }
  const agents = Array.from({ length: VICTIMS }, () => new Agent({ keepAlive: true, maxSockets: 1 }))
  const versions = await Promise.all(agents.map(async (agent, i) => {
    const r = await get(port, '/v1/table', peerAddress(i + 1), agent)
    return (JSON.parse(r.body) as { version: number }).version
  }))
  await ask(server, { reset: true })
  const latencies: number[] = []
  let failed = 0
  const until = Date.now() + SECONDS * 1000
  await Promise.all(agents.map(async (agent, i) => {
    while (Date.now() < until) {
      const t = performance.now()
      try {
        const r = await get(port, `/v1/table?since=${versions[i] ?? 0}`, peerAddress(i + 1), agent)
        if (r.status === 200) latencies.push(performance.now() - t)
        else failed++
      } catch { failed++ }
      await sleep(VICTIM_PAUSE_MS)
    }
  }))
  const usage = await ask<Usage>(server, { usage: true })
  for (const a of agents) a.destroy()
  stopPolls?.()
  const attack: AttackResult = attacker === undefined ? { full: 0, refused: 0, errors: 0, heldAtEnd: 0, connectAttempts: 0 } : await ask<AttackResult>(attacker, { stop: true })
  // Still up: a fresh peer gets its table.
  const up = (await get(port, '/v1/table', peerAddress(VICTIMS + 5), new Agent()).catch(() => ({ status: 0 }))).status === 200
  return {
    p50: pct(latencies, 50),
    p99: pct(latencies, 99),
    max: Math.max(...latencies),
    victimRequests: latencies.length,
    victimFailed: failed,
    attackerFull: attack.full,
    attackerRefused: attack.refused,
    attackerErrors: attack.errors,
    attackerHeld: attack.heldAtEnd,
    loopP99: usage.loopP99Ms,
    loopMax: usage.loopMaxMs,
    readMedian: median(usage.readMs),
    readMax: Math.max(...usage.readMs),
    rss: usage.rss / 1048576,
    up: up ? 1 : 0,
    idleCpuPct: idle.cpuPct,
    idleChildCpuPct: idle.childCpuPct,
    idleRss: idle.rss,
    idleHeapUsed: idle.heapUsed,
    idleHeapTotal: idle.heapTotal,
    idleExternal: idle.external,
    idleWaiting: idle.waiting,
    idleReads: idle.reads,
    idleRepolls: idle.repolls,
    idleSystemPct: idle.systemPct,
    idleRssMedian: idle.rssMedian,
    idleRssMax: idle.rssMax,
    idleMainPct: idle.mainPct
  }
}

async function main (): Promise<void> {
  let lab: Lab | undefined
  let iface: string | undefined
  const rows: string[] = []
  const idleRows: string[] = []
  try {
    if (values.device === 'real') {
      const support = await labSupport()
      if (!support.ok) throw new Error(`no lab: ${support.reason}`)
      lab = await createLab({ sites: [{ name: 'a', kind: 'easy', clients: ['a'] }] })
      iface = await realInterface(lab, PEERS)
      const read = await measureRead(iface)
      console.log(`real \`wg show ${iface} dump\` of ${PEERS + 1} peers: ${read.bytes} bytes; run ${read.runMs.toFixed(1)} ms, parse every line ${read.parseMs.toFixed(1)} ms, parse changed lines only (none changed) ${read.reuseMs.toFixed(2)} ms (medians of 7)`)
    }
    console.log('| device | limits | scenario | others\' delta p50 / p99 / max (ms) | others\' deltas served (failed) | hammering peer: full tables served / 429 / refused connections | its idle connections held | registry event-loop delay p99 / max (ms) | interface read median / max (ms) | registry RSS (MB) | up |')
    console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |')
    for (const nodeArgs of NODE_ARG_SETS) for (const limits of values.limits.split(',')) {
      for (const name of values.scenarios.split(',')) {
        const results: Array<Record<string, number>> = []
        for (let run = 0; run < RUNS; run++) {
          const port = 18080 + Math.floor(Math.random() * 1000)
          const opts = { ...(iface === undefined ? {} : { iface }), ...(limits === 'off' ? { limits: NO_LIMITS } : {}), fullParse: values.parse === 'all', online: values.online }
          const server = await forkReady('./registry-server.js', [String(PEERS), String(port), JSON.stringify(opts)], nodeArgs === '' ? [] : nodeArgs.split(' '))
          try {
            const r = await scenario(port, server, name)
            results.push(r)
            if (name === 'longpoll') console.log(`run ${run + 1}: idle window RSS end ${r.idleRss?.toFixed(0) ?? ''} (every 5 s: median ${r.idleRssMedian?.toFixed(0) ?? ''}, max ${r.idleRssMax?.toFixed(0) ?? ''}) MB, registry CPU ${r.idleCpuPct?.toFixed(2) ?? ''} % (system ${r.idleSystemPct?.toFixed(2) ?? ''} %; by thread: ${lastThreads}), wg ${r.idleChildCpuPct?.toFixed(2) ?? ''} %, re-polls ${r.idleRepolls ?? ''}, reads ${r.idleReads ?? ''}; others' delta p99 ${r.p99?.toFixed(1) ?? ''} ms`)
          } finally {
            server.send({ stop: true })
            await new Promise((resolve) => server.once('exit', resolve))
          }
        }
        const m = (k: string): number => median(results.map((r) => r[k] ?? NaN))
        const row = `| ${values.device ?? ''} ${PEERS}${nodeArgs === '' ? '' : ` (${nodeArgs})`} | ${limits} | ${name} | ${m('p50').toFixed(2)} / ${m('p99').toFixed(1)} / ${m('max').toFixed(0)} | ${m('victimRequests').toFixed(0)} (${m('victimFailed').toFixed(0)}) | ${m('attackerFull').toFixed(0)} / ${m('attackerRefused').toFixed(0)} / ${m('attackerErrors').toFixed(0)} | ${m('attackerHeld').toFixed(0)} | ${m('loopP99').toFixed(1)} / ${m('loopMax').toFixed(0)} | ${m('readMedian').toFixed(1)} / ${m('readMax').toFixed(0)} | ${m('rss').toFixed(0)} | ${results.every((r) => r.up === 1) ? 'yes' : 'NO'} |`
        console.log(row)
        rows.push(row)
        if (name === 'longpoll') {
          idleRows.push(`| ${values.device ?? ''} ${PEERS} | ${nodeArgs === '' ? '-' : nodeArgs} | ${m('idleWaiting').toFixed(0)} | ${m('idleRss').toFixed(0)} | ${m('idleHeapUsed').toFixed(0)} / ${m('idleHeapTotal').toFixed(0)} / ${m('idleExternal').toFixed(0)} | ${m('idleCpuPct').toFixed(2)} | ${m('idleChildCpuPct').toFixed(2)} | ${(m('idleCpuPct') + m('idleChildCpuPct')).toFixed(2)} | ${m('idleReads').toFixed(0)} | ${m('idleRepolls').toFixed(0)} | ${m('idleRssMedian').toFixed(0)} / ${m('idleRssMax').toFixed(0)} |`)
          console.log(`idle row (so far): ${idleRows[idleRows.length - 1] ?? ''}`)
        }
      }
    }
    if (idleRows.length > 0) {
      console.log(`\nAll peers long-polling (wait=${values.wait}${SPREAD ? ', first hold spread over 1..max' : ''}, keep-alive ${values['keep-alive']}${KEEP_ALIVE ? `, probes after ${PROBE_IDLE_MS} ms idle` : ''}), nothing else, ${IDLE_SECONDS} s from ${SETTLE_SECONDS} s after they were all held (medians; a window ending past the shortest wait holds re-polls):\n`)
      console.log('| device | node flags | long-polls held | registry RSS (MB) | V8 heap used / total / external (MB) | registry CPU (% core) | its `wg` runs (% core) | both (% core) | interface reads | re-polls answered | RSS every 5 s over the window: median / max (MB) |')
      console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |')
      for (const r of idleRows) console.log(r)
    }
  } finally {
    await lab?.destroy()
  }
}

await main()
