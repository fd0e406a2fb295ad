/**
 * Outage times of issue 11, repeated: how long traffic stops, seen from the side that did not cause it.
 *
 *   node dist/scripts/bench/outage.js [--runs 10] [--scenarios rebind,cut]
 *
 * - `rebind`: two `easy` clients with a direct path, the hub NOT forwarding (an answer proves the direct path); b
 *   pings a every 0.5 s; a's router "reboots" (conntrack flushed, a's WireGuard port now mapped to a new public
 *   port). Reported: the longest run of unanswered pings, in ms (to within 0.5 s).
 * - `cut`: the same pair, hub relaying (`--relay`); both ping each other every 200 ms; the internet router drops
 *   everything between the two routers. Reported: the longest outage each way (to within 0.2 s); then the cut is
 *   healed: time until both sides are direct again, and pings lost on the way back.
 * One lab per scenario, runs back to back in it. Prints per-run figures on stderr, medians and worst as Markdown.
 */
import { createLab, labSupport, type Lab } from '../lab/lab.js'
import { pathBetween, registerWithHub, startMesh, waitFor, type MeshProcesses } from '../lab/mesh.js'
import { pingGaps, type PingGaps } from '../lab/ping-gaps.js'
import { benchArgs } from './bench-args.js'

const { values } = benchArgs({ options: { runs: { type: 'string', default: '10' }, scenarios: { type: 'string', default: 'rebind,cut' } } })
const RUNS = Number(values.runs)
const SCENARIOS = (values.scenarios ?? '').split(',').filter((s) => s !== '')
if (!Number.isInteger(RUNS) || RUNS < 1 || SCENARIOS.some((s) => s !== 'rebind' && s !== 'cut')) {
  console.error(`outage: --runs must be a positive whole number and --scenarios a list of rebind, cut: '${values.runs}', '${values.scenarios}'`)
  process.exit(64)
}
const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

async function ping (lab: Lab, from: string, to: string, intervalS: number, seconds: number): Promise<PingGaps> {
  const out = await lab.exec(from, ['ping', '-n', '-i', String(intervalS), '-W', '1', '-c', String(Math.round(seconds / intervalS)), lab.clients[to]!.tunnelIp], { reject: false, timeoutMs: (seconds + 15) * 1000 })
  return pingGaps(out.stdout, intervalS)
}
const bothDirect = async (lab: Lab): Promise<boolean> => (await pathBetween(lab, 'a', 'b')).path === 'direct' && (await pathBetween(lab, 'b', 'a')).path === 'direct'

function summary (xs: number[]): string {
  const s = [...xs].sort((x, y) => x - y)
  const m = Math.floor(s.length / 2)
  const med = s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
  return `${Math.round(med)} / ${Math.round(s.at(-1)!)}`
}

async function withLab<T> (relay: boolean, fn: (lab: Lab, mesh: MeshProcesses) => Promise<T>): Promise<T> {
  const lab = await createLab({ sites: [{ name: 'a', kind: 'easy', clients: ['a'] }, { name: 'b', kind: 'easy', clients: ['b'] }] })
  let mesh: MeshProcesses | undefined
  try {
    await registerWithHub(lab)
    mesh = startMesh(lab, relay ? { serverArgs: ['--relay'] } : {})
    if (await waitFor(async () => await bothDirect(lab), 60_000) === undefined) throw new Error(`outage: no direct path\n${mesh.logs()}`)
    return await fn(lab, mesh)
  } finally {
    await mesh?.cleanup()
    await lab.destroy()
  }
}

const support = await labSupport()
if (!support.ok) { console.error(`outage: no lab here: ${support.reason}`); process.exit(69) }

if (SCENARIOS.includes('rebind')) {
  const gaps = await withLab(false, async (lab) => {
    const out: number[] = []
    const { wanIf, wanIp } = lab.routers.a!
    const a = lab.clients.a!
    for (let r = 0; r < RUNS; r++) {
      if (await waitFor(async () => await bothDirect(lab), 30_000) === undefined) throw new Error(`outage: rebind run ${r + 1}: not direct before the run`)
      const pinging = ping(lab, 'b', 'a', 0.5, 15)
      await sleep(3000)
      await lab.exec('router:a', ['iptables', '-w', '-t', 'nat', '-I', 'POSTROUTING', '1', '-o', wanIf, '-s', a.underlayIp, '-p', 'udp', '--sport', String(a.listenPort), '-j', 'SNAT', '--to-source', `${wanIp}:${31000 + r}`])
      await lab.exec('router:a', ['conntrack', '-F'], { reject: false })
      const g = await pinging
      out.push(g.longestGapMs)
      console.error(`rebind run ${r + 1}: longest outage seen from b ${g.longestGapMs} ms (${g.received}/${g.sent})`)
    }
    return out
  })
  console.log(`| rebind, seen from the side that did not move (ping every 0.5 s) | runs ${RUNS} | longest outage median / worst (ms) | ${summary(gaps)} |`)
}

if (SCENARIOS.includes('cut')) {
  const res = await withLab(true, async (lab) => {
    const out: Array<{ ab: number, ba: number, healMs: number, lost: number }> = []
    const [wa, wb] = [lab.routers.a!.wanIp, lab.routers.b!.wanIp]
    const rules = async (op: '-I' | '-D'): Promise<void> => {
      await lab.exec('inet', ['iptables', '-w', op, 'FORWARD', '-s', wa, '-d', wb, '-j', 'DROP'])
      await lab.exec('inet', ['iptables', '-w', op, 'FORWARD', '-s', wb, '-d', wa, '-j', 'DROP'])
    }
    for (let r = 0; r < RUNS; r++) {
      if (await waitFor(async () => await bothDirect(lab), 40_000) === undefined) throw new Error(`outage: cut run ${r + 1}: not direct before the run`)
      const both = Promise.all([ping(lab, 'a', 'b', 0.2, 12), ping(lab, 'b', 'a', 0.2, 12)])
      await sleep(3000)
      await rules('-I')
      const [ab, ba] = await both
      const healing = Promise.all([ping(lab, 'a', 'b', 0.2, 35), ping(lab, 'b', 'a', 0.2, 35)])
      await sleep(500)
      await rules('-D')
      const t0 = Date.now()
      const healMs = await waitFor(async () => await bothDirect(lab), 34_000)
      const [hab, hba] = await healing
      const lost = (hab.sent - hab.received) + (hba.sent - hba.received)
      out.push({ ab: ab.longestGapMs, ba: ba.longestGapMs, healMs: healMs ?? Number.POSITIVE_INFINITY, lost })
      console.error(`cut run ${r + 1}: longest outage a -> b ${ab.longestGapMs} ms, b -> a ${ba.longestGapMs} ms; healed: direct after ${healMs ?? 'never'} ms (${Date.now() - t0}), ${lost} pings lost on the way back`)
    }
    return out
  })
  console.log(`| cut between the routers, hub relaying (ping every 0.2 s each way) | runs ${RUNS} | longest outage a -> b, b -> a median / worst (ms) | ${summary(res.map((x) => x.ab))}, ${summary(res.map((x) => x.ba))} |`)
  console.log(`| heal | runs ${RUNS} | direct again median / worst (ms); pings lost on the way back (total) | ${summary(res.map((x) => x.healMs))}; ${res.reduce((n, x) => n + x.lost, 0)} |`)
}
