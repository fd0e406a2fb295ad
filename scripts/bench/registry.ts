/**
 * Registry benchmark (issue 4): a synthetic hub with N peers, served by the real registry in a child process,
 * driven over loopback by clients that each bind their peer's address (so identity works as over the tunnel).
 *
 *   node dist/scripts/bench/registry.js [peers ...]      (default: 1000 10000)
 *
 * The server runs with --expose-gc so resident memory can be shown both as found and after a full collection.
 * Prints a Markdown table: full-fetch and delta latency (p50/p99), bytes, requests per second, resident memory,
 * CPU while all peers long-poll, and how long a change takes to reach every long-polling peer.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { Agent, request } from 'node:http'
import { fileURLToPath } from 'node:url'
import { peerAddress } from './synthetic-wg.js'

interface Usage { rss: number, rssBeforeGc: number, cpuMs: number, version: number }

const PORT = 18080 + Math.floor(Math.random() * 1000)
const SAMPLES = 200

function get (path: string, from: string, agent: Agent | false = false): Promise<{ status: number, bytes: number, body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: PORT, path, localAddress: from, agent }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => { const b = Buffer.concat(chunks); resolve({ status: res.statusCode ?? 0, bytes: b.length, body: b.toString() }) })
    })
    req.on('error', reject)
    req.end()
  })
}

function ask (child: ChildProcess, msg: object): Promise<Usage> {
  return new Promise((resolve) => {
    child.once('message', (m) => resolve(m as Usage))
    child.send(msg)
  })
}

function pct (xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(p / 100 * s.length))] ?? NaN
}

async function timed<T> (fn: () => Promise<T>): Promise<[number, T]> {
  const t = process.hrtime.bigint()
  const r = await fn()
  return [Number(process.hrtime.bigint() - t) / 1e6, r]
}

async function bench (peers: number): Promise<Record<string, string>> {
  const child = fork(fileURLToPath(new URL('./registry-server.js', import.meta.url)), [String(peers), String(PORT)], { stdio: 'inherit', execArgv: ['--expose-gc'] })
  await new Promise((resolve) => child.once('message', resolve))
  try {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    const me = peerAddress(0)
    // Full fetches.
    const full: number[] = []
    let fullBytes = 0
    let version = 0
    for (let i = 0; i < Math.min(SAMPLES, peers >= 10000 ? 100 : SAMPLES); i++) {
      const [ms, res] = await timed(async () => await get('/v1/table', me, agent))
      full.push(ms)
      fullBytes = res.bytes
      version = (JSON.parse(res.body) as { version: number }).version
    }
    // One change, then delta fetches from the version before it.
    child.send({ move: 1 })
    await new Promise((resolve) => setTimeout(resolve, 1500))
    const delta: number[] = []
    let deltaBytes = 0
    for (let i = 0; i < SAMPLES; i++) {
      const [ms, res] = await timed(async () => await get(`/v1/table?since=${version}`, me, agent))
      delta.push(ms)
      deltaBytes = res.bytes
    }
    // Requests per second: 64 concurrent delta fetches for 3 s.
    const until = Date.now() + 3000
    let count = 0
    const rpsAgent = new Agent({ keepAlive: true, maxSockets: 64 })
    await Promise.all(Array.from({ length: 64 }, async (_, w) => {
      while (Date.now() < until) { await get(`/v1/table?since=${version}`, peerAddress(w + 2), rpsAgent); count++ }
    }))
    rpsAgent.destroy()
    const rps = count / 3

    // Every peer long-polls; measure idle CPU and memory, then how long one change takes to reach them all.
    const now = await ask(child, { usage: true })
    const pollAgent = new Agent({ keepAlive: false })
    let answered = 0
    let lastAt = 0
    const polls = Array.from({ length: peers }, async (_, i) => {
      const res = await get(`/v1/table?since=${now.version}&wait=60`, peerAddress(i), pollAgent)
      if (res.status === 200) { answered++; lastAt = Date.now() }
    })
    await new Promise((resolve) => setTimeout(resolve, 3000))
    const before = await ask(child, { usage: true })
    await new Promise((resolve) => setTimeout(resolve, 10_000))
    const after = await ask(child, { usage: true })
    const afterGc = await ask(child, { usage: true, gc: true })
    if (process.env.BENCH_DEBUG !== undefined) console.error(now, after, afterGc)
    const idleCpuPct = (after.cpuMs - before.cpuMs) / 10_000 * 100
    const changedAt = Date.now()
    child.send({ move: 2 })
    await Promise.all(polls)
    const propagationMs = lastAt - changedAt
    agent.destroy()
    return {
      peers: String(peers),
      'full p50 / p99 (ms)': `${pct(full, 50).toFixed(1)} / ${pct(full, 99).toFixed(1)}`,
      'full bytes': String(fullBytes),
      'delta p50 / p99 (ms)': `${pct(delta, 50).toFixed(2)} / ${pct(delta, 99).toFixed(2)}`,
      'delta bytes (1 change)': String(deltaBytes),
      'delta req/s (64 conc.)': rps.toFixed(0),
      'RSS all long-polling / after a GC (MB)': `${(after.rss / 1048576).toFixed(0)} / ${(afterGc.rss / 1048576).toFixed(0)}`,
      'CPU idle, all long-polling (% core)': idleCpuPct.toFixed(2),
      'change to all peers (ms)': `${propagationMs} (${answered}/${peers})`
    }
  } finally {
    child.send({ stop: true })
    await new Promise((resolve) => child.once('exit', resolve))
  }
}

const sizes = process.argv.slice(2).map(Number)
const rows = []
for (const n of sizes.length > 0 ? sizes : [1000, 10000]) rows.push(await bench(n))
const cols = Object.keys(rows[0] ?? {})
console.log(`| ${cols.join(' | ')} |`)
console.log(`| ${cols.map(() => '---').join(' | ')} |`)
for (const r of rows) console.log(`| ${cols.map((c) => r[c]).join(' | ')} |`)
