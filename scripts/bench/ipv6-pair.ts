/**
 * Time to direct of one `hard+ipv6` – `hard+ipv6` pair (issue 17), and where the time goes.
 *
 *   flock /work/wt/bench.lock node dist/scripts/bench/ipv6-pair.js [--runs 3] [--timeout 60] [--timeline]
 *
 * Per run: a fresh lab of two dual-stack sites behind symmetric IPv4 NATs (the hub IPv4-only and not forwarding),
 * both clients started at once with default timings and `--log-level debug --log-format json`; the time from their
 * start until both logged the pair direct. `--timeline` prints, per run, the lines of both clients that make the
 * timeline (start, first table, NAT class, announcements, attempts and their reasons, direct), in ms from the start.
 * Wall-clock figures: run alone (the flock), and read the load average printed with the table.
 */
import { loadavg } from 'node:os'
import { createLab, labSupport, type Lab } from '../lab/lab.js'
import { registerWithHub, startMesh, waitFor } from '../lab/mesh.js'
import { parseSiteList } from '../lab/site-list.js'
import { benchArgs } from './bench-args.js'

const { values } = benchArgs({ options: { runs: { type: 'string', default: '3' }, timeout: { type: 'string', default: '60' }, timeline: { type: 'boolean', default: false } } })
const RUNS = Number(values.runs)
const TIMEOUT_MS = Number(values.timeout) * 1000
if (!Number.isInteger(RUNS) || RUNS < 1 || !Number.isFinite(TIMEOUT_MS) || TIMEOUT_MS <= 0) {
  console.error('ipv6-pair: usage: [--runs N>=1] [--timeout seconds] [--timeline]')
  process.exit(64)
}

/** Log lines that make the timeline. */
const INTERESTING = /syncing|table received|NAT |announc|peer .*->|ipv6|IPv6|kick|handshake/

interface Run { ms: number | undefined, timeline: string[] }

async function once (): Promise<Run> {
  const lab: Lab = await createLab({ sites: parseSiteList('a:hard+ipv6,b:hard+ipv6') })
  const mesh = startMesh(lab, { clients: [], clientArgs: ['--log-format', 'json'] })
  const timeline: Array<{ t: number, line: string }> = []
  try {
    await registerWithHub(lab)
    await new Promise((resolve) => setTimeout(resolve, 1500)) // registry up
    const directAt = new Map<string, number>()
    const t0 = Date.now()
    for (const name of ['a', 'b']) {
      mesh.startClient(name).all?.on('data', (chunk: Buffer) => {
        for (const line of String(chunk).split('\n')) {
          if (line.trim() === '') continue
          let rec: Record<string, unknown>
          try { rec = JSON.parse(line) as Record<string, unknown> } catch { continue }
          const msg = String(rec.msg ?? '')
          const t = typeof rec.time === 'number' ? rec.time - t0 : Date.now() - t0
          if (msg.includes('-> direct') && !directAt.has(name)) directAt.set(name, t)
          if (INTERESTING.test(msg)) {
            const { level: _l, time: _t, msg: _m, ...rest } = rec
            timeline.push({ t, line: `${name}: ${msg}${Object.keys(rest).length > 0 ? ` ${JSON.stringify(rest)}` : ''}` })
          }
        }
      })
    }
    await waitFor(async () => directAt.size === 2, TIMEOUT_MS)
    const ms = directAt.size === 2 ? Math.max(...directAt.values()) : undefined
    return { ms, timeline: timeline.sort((x, y) => x.t - y.t).map((e) => `${String(e.t).padStart(6)} ms  ${e.line}`) }
  } finally {
    await Promise.all(['a', 'b'].map(async (n) => await mesh.stopClient(n).catch(() => undefined)))
    try { await mesh.cleanup() } catch (err) { console.error(`cleanup: ${String(err)}`) }
    await lab.destroy()
  }
}

const support = await labSupport()
if (!support.ok) { console.error(`ipv6-pair bench: ${support.reason}`); process.exit(69) }
const load = (): string => loadavg().map((l) => l.toFixed(2)).join(' ')
const loadBefore = load()
const times: Array<number | undefined> = []
for (let i = 0; i < RUNS; i++) {
  const run = await once()
  times.push(run.ms)
  console.log(`run ${i + 1}: ${run.ms === undefined ? `not direct within ${TIMEOUT_MS / 1000} s` : `direct after ${(run.ms / 1000).toFixed(1)} s`}`)
  if (values.timeline) console.log(run.timeline.join('\n'))
}
const done = times.filter((t): t is number => t !== undefined).sort((a, b) => a - b)
const median = done.length === 0 ? undefined : done[Math.floor((done.length - 1) / 2)]
console.log(`\nhard+ipv6 – hard+ipv6: direct in ${done.length}/${RUNS} runs; median ${median === undefined ? '–' : `${(median / 1000).toFixed(1)} s`} (${done.map((t) => (t / 1000).toFixed(1)).join(', ')} s)`)
console.log(`load average before ${loadBefore}, after ${load()}`)
