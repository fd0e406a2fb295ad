/**
 * Reachability table (issue 17): which path every NAT pair reaches, and how soon, with and without IPv6.
 *
 *   flock /work/wt/bench.lock node dist/scripts/bench/reachability.js [--runs 1] [--timeout 90] [--stack both|v4|v6]
 *
 * One lab per stack and run, holding every pair at once: two sites of each router kind (public, easy, hard,
 * hard+upnp, clash, udpblock; one client each), plus one hard site with two clients (the LAN pair). IPv4 only, then
 * dual stack (every site +ipv6; the hub stays IPv4-only). The hub does not forward, so a ping that gets an answer
 * took the direct path. Every client starts at once, with default timings; the clients mesh with each other, and
 * the pairs shown are one per kind pair (x1-y1, and x1-x2 for a kind with itself).
 *
 * Per pair: the path it reached (`direct <candidate>`, the candidate `wgnat-client status` says won: ipv6, ipv4,
 * mapped or lan; `hub` when no direct path formed within the timeout: its traffic goes through the hub when the hub
 * relays), and the time from the clients' start until both sides logged the pair direct. Several runs: the median.
 * Wall-clock figures: run alone (the flock), and read the load average printed with the table.
 */
import { loadavg } from 'node:os'
import { createLab, labSupport, type Lab } from '../lab/lab.js'
import { clientStatus, registerWithHub, startMesh, waitFor } from '../lab/mesh.js'
import { parseSiteList } from '../lab/site-list.js'
import { benchArgs } from './bench-args.js'

const { values } = benchArgs({ options: { runs: { type: 'string', default: '1' }, timeout: { type: 'string', default: '90' }, stack: { type: 'string', default: 'both' } } })
const RUNS = Number(values.runs)
const TIMEOUT_MS = Number(values.timeout) * 1000
const STACKS = values.stack === 'v4' ? [false] : values.stack === 'v6' ? [true] : [false, true]
if (!Number.isInteger(RUNS) || RUNS < 1 || !Number.isFinite(TIMEOUT_MS) || TIMEOUT_MS <= 0 || !['both', 'v4', 'v6'].includes(values.stack ?? '')) {
  console.error('reachability: usage: [--runs N>=1] [--timeout seconds] [--stack both|v4|v6]')
  process.exit(64)
}

/** The router kinds of the table, and the site-name letter of each. */
const KINDS: Array<{ kind: string, letter: string }> = [
  { kind: 'public', letter: 'p' },
  { kind: 'easy', letter: 'e' },
  { kind: 'hard', letter: 'h' },
  { kind: 'hard+upnp', letter: 'm' },
  { kind: 'clash', letter: 'c' },
  { kind: 'udpblock', letter: 'u' }
]

interface Pair { label: string, a: string, b: string }
const PAIRS: Pair[] = []
KINDS.forEach((x, i) => {
  KINDS.slice(i).forEach((y) => {
    PAIRS.push({ label: `${x.kind} – ${y.kind}`, a: `${x.letter}1`, b: x === y ? `${x.letter}2` : `${y.letter}1` })
  })
})
PAIRS.push({ label: 'hard – hard, same router (LAN)', a: 'l1', b: 'l2' })

function sites (ipv6: boolean): string {
  const v6 = ipv6 ? '+ipv6' : ''
  return [...KINDS.flatMap(({ kind, letter }) => [`${letter}1:${kind}${v6}`, `${letter}2:${kind}${v6}`]), `l:hard${v6}:l1+l2`].join(',')
}

interface Cell { path: string, ms?: number }

async function once (ipv6: boolean): Promise<Cell[]> {
  const lab: Lab = await createLab({ sites: parseSiteList(sites(ipv6)) })
  const mesh = startMesh(lab, { clients: [], clientArgs: ['--log-level', 'info'] })
  try {
    await registerWithHub(lab)
    await new Promise((resolve) => setTimeout(resolve, 1500)) // registry up
    const short = (name: string): string => lab.clients[name]!.publicKey.slice(0, 8)
    /** When `from` logged `to` as direct (first time), keyed `from>to`. */
    const directAt = new Map<string, number>()
    const t0 = Date.now()
    const names = Object.keys(lab.clients)
    const watched = new Map(names.map((n) => [n, new Map(names.filter((m) => m !== n).map((m) => [`peer ${short(m)}:`, m]))]))
    for (const name of names) {
      mesh.startClient(name).all?.on('data', (chunk: Buffer) => {
        for (const line of String(chunk).split('\n')) {
          if (!line.includes('-> direct')) continue
          for (const [needle, peer] of watched.get(name) ?? []) {
            if (line.includes(needle) && !directAt.has(`${name}>${peer}`)) directAt.set(`${name}>${peer}`, Date.now() - t0)
          }
        }
      })
    }
    const both = (p: Pair): number | undefined => {
      const x = directAt.get(`${p.a}>${p.b}`); const y = directAt.get(`${p.b}>${p.a}`)
      return x === undefined || y === undefined ? undefined : Math.max(x, y)
    }
    await waitFor(async () => PAIRS.every((p) => both(p) !== undefined), TIMEOUT_MS)
    return await Promise.all(PAIRS.map(async (p): Promise<Cell> => {
      const status = await clientStatus(lab, p.a).catch(() => undefined)
      const peer = status?.peers.find((x) => x.publicKey === lab.clients[p.b]!.publicKey)
      if (peer?.path !== 'direct') return { path: 'hub' }
      // The hub does not forward: only the direct path can answer.
      const ping = await lab.ping(p.a, lab.clients[p.b]!.tunnelIp, { count: 2, timeoutS: 2 })
      return { path: ping.received > 0 ? `direct ${peer.candidate ?? '?'}` : 'direct (no ping answer)', ms: both(p) }
    }))
  } finally {
    // Stop the clients first: removing their state directory under them fails (they write it as they stop).
    await Promise.all(Object.keys(lab.clients).map(async (n) => await mesh.stopClient(n).catch(() => undefined)))
    try { await mesh.cleanup() } catch (err) { console.error(`cleanup: ${String(err)}`) }
    await lab.destroy()
  }
}

const median = (xs: number[]): number | undefined => { const s = [...xs].sort((a, b) => a - b); return s.length === 0 ? undefined : s[Math.floor((s.length - 1) / 2)] }
const sec = (ms: number | undefined): string => ms === undefined ? '–' : `${(ms / 1000).toFixed(1)} s`

const support = await labSupport()
if (!support.ok) { console.error(`reachability bench: ${support.reason}`); process.exit(69) }
const load = (): string => loadavg().map((l) => l.toFixed(2)).join(' ')
const loadBefore = load()
const results = new Map<boolean, Cell[][]>()
for (const ipv6 of STACKS) {
  const runs: Cell[][] = []
  for (let i = 0; i < RUNS; i++) {
    const cells = await once(ipv6)
    runs.push(cells)
    console.error(`${ipv6 ? 'dual stack' : 'IPv4 only'} run ${i + 1}: ${JSON.stringify(cells)}`)
  }
  results.set(ipv6, runs)
}

/** Per pair: the path most runs reached (and how many), and the median time of the runs that reached it. */
function summary (runs: Cell[][], i: number): string[] {
  const cells = runs.map((r) => r[i]!)
  const counts = new Map<string, number>()
  for (const c of cells) counts.set(c.path, (counts.get(c.path) ?? 0) + 1)
  const [path, n] = [...counts].sort((x, y) => y[1] - x[1])[0]!
  const ms = cells.filter((c) => c.path === path && c.ms !== undefined).map((c) => c.ms!)
  return [runs.length > 1 ? `${path} (${n}/${runs.length})` : path, path.startsWith('direct') ? sec(median(ms)) : '–']
}

const header = ['pair', ...STACKS.flatMap((v6) => v6 ? ['dual stack: path', 'time'] : ['IPv4 only: path', 'time'])]
const rows = PAIRS.map((p, i) => [p.label, ...STACKS.flatMap((v6) => summary(results.get(v6)!, i))])
console.log(`| ${header.join(' | ')} |`)
console.log(`|${header.map(() => '---').join('|')}|`)
for (const r of rows) console.log(`| ${r.join(' | ')} |`)
console.log(`\n${RUNS} run(s) per stack, timeout ${TIMEOUT_MS / 1000} s; load average before ${loadBefore}, after ${load()}`)
