/**
 * Where pings go when a healed pair moves from the hub to its direct path (issue 11: no loss on the way back).
 *
 *   node dist/scripts/bench/heal-trace.js [--runs 3]
 *
 * The `cut` scenario of outage.ts (two `easy` spokes, hub relaying, a ping every 200 ms each way, the internet
 * drops everything between the routers, then lets it through again), with tcpdump on the tunnel interfaces of both
 * spokes and the hub. For every ping lost after the heal it prints where its request and reply were last seen
 * (sent, relayed by the hub, accepted by the far side), and the instants each client switched its routes (from its
 * JSON log), so a loss can be put on a side and a direction.
 */
import { createLab, labSupport, type Lab } from '../lab/lab.js'
import { pathBetween, registerWithHub, startMesh, waitFor } from '../lab/mesh.js'
import type { SpawnedProcess } from '../lab/command.js'
import { benchArgs } from './bench-args.js'

const { values } = benchArgs({ options: { runs: { type: 'string', default: '3' } } })
const RUNS = Number(values.runs)
if (!Number.isInteger(RUNS) || RUNS < 1) {
  console.error(`heal-trace: --runs must be a positive whole number: '${values.runs}'`)
  process.exit(64)
}
const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

interface Seen { t: number, src: string, dst: string, kind: 'request' | 'reply', id: number, seq: number }

/** tcpdump -tt -n -l lines of ICMP echo on a tunnel interface. */
function parseCapture (text: string): Seen[] {
  const out: Seen[] = []
  for (const m of text.matchAll(/^(\d+\.\d+) IP (\S+) > (\S+): ICMP echo (request|reply), id (\d+), seq (\d+)/gm)) {
    out.push({ t: Number(m[1]) * 1000, src: m[2]!, dst: m[3]!, kind: m[4] as 'request' | 'reply', id: Number(m[5]), seq: Number(m[6]) })
  }
  return out
}

/** JSON log lines of path changes: when and what. */
function pathEvents (log: string): Array<{ t: number, msg: string }> {
  const out: Array<{ t: number, msg: string }> = []
  for (const line of log.split('\n')) {
    if (!line.startsWith('{')) continue
    try {
      const j = JSON.parse(line) as { time?: number, msg?: string }
      if (typeof j.time === 'number' && typeof j.msg === 'string' && /-> (direct|hub|trying|arming)|probing|switch/.test(j.msg)) out.push({ t: j.time, msg: j.msg })
    } catch {}
  }
  return out
}

const support = await labSupport()
if (!support.ok) { console.error(`heal-trace: no lab here: ${support.reason}`); process.exit(69) }

const lab: Lab = await createLab({ sites: [{ name: 'a', kind: 'easy', clients: ['a'] }, { name: 'b', kind: 'easy', clients: ['b'] }] })
const captures: Array<{ where: string, proc: SpawnedProcess }> = []
try {
  await registerWithHub(lab)
  const mesh = startMesh(lab, { serverArgs: ['--relay'], clientArgs: ['--log-format', 'json'] })
  const bothDirect = async (): Promise<boolean> => (await pathBetween(lab, 'a', 'b')).path === 'direct' && (await pathBetween(lab, 'b', 'a')).path === 'direct'
  if (await waitFor(bothDirect, 60_000) === undefined) throw new Error(`heal-trace: no direct path\n${mesh.logs()}`)
  const [wa, wb] = [lab.routers.a!.wanIp, lab.routers.b!.wanIp]
  const cut = async (op: '-I' | '-D'): Promise<void> => {
    await lab.exec('inet', ['iptables', '-w', op, 'FORWARD', '-s', wa, '-d', wb, '-j', 'DROP'])
    await lab.exec('inet', ['iptables', '-w', op, 'FORWARD', '-s', wb, '-d', wa, '-j', 'DROP'])
  }
  const ip = { a: lab.clients.a!.tunnelIp, b: lab.clients.b!.tunnelIp }
  const name = (addr: string): string => addr === ip.a ? 'a' : addr === ip.b ? 'b' : addr
  let total = 0
  for (let r = 0; r < RUNS; r++) {
    if (await waitFor(bothDirect, 40_000) === undefined) throw new Error(`heal-trace: run ${r + 1}: not direct before the run`)
    const caps = (['a', 'b', 'hub'] as const).map((where) => {
      const host = where === 'hub' ? lab.hub : lab.clients[where]!
      const proc = lab.spawn(where, ['tcpdump', '-tt', '-n', '-l', '-U', '-i', host.wgIf, 'icmp'])
      captures.push({ where, proc })
      return { where, proc }
    })
    await sleep(1000)
    const both = Promise.all([
      lab.exec('a', ['ping', '-n', '-i', '0.2', '-W', '1', '-c', '60', ip.b], { reject: false, timeoutMs: 30_000 }),
      lab.exec('b', ['ping', '-n', '-i', '0.2', '-W', '1', '-c', '60', ip.a], { reject: false, timeoutMs: 30_000 })
    ])
    await sleep(3000)
    await cut('-I')
    await both
    const pingStart = Date.now()
    const pings = Promise.all([
      lab.exec('a', ['ping', '-n', '-i', '0.2', '-W', '1', '-c', '175', ip.b], { reject: false, timeoutMs: 60_000 }),
      lab.exec('b', ['ping', '-n', '-i', '0.2', '-W', '1', '-c', '175', ip.a], { reject: false, timeoutMs: 60_000 })
    ])
    await sleep(500)
    await cut('-D')
    const healT = Date.now()
    const healMs = await waitFor(bothDirect, 34_000)
    const [pa, pb] = await pings
    await sleep(500)
    for (const c of caps) c.proc.kill('SIGINT')
    const seen = new Map<string, Seen[]>()
    for (const c of caps) seen.set(c.where, parseCapture(String((await c.proc).stdout ?? '')))
    const lostOf = (out: string): number[] => {
      const got = new Set([...out.matchAll(/icmp_seq=(\d+)/g)].map((m) => Number(m[1])))
      const sent = Number(/(\d+) packets transmitted/.exec(out)?.[1] ?? 0)
      return Array.from({ length: sent }, (_, i) => i + 1).filter((s) => !got.has(s))
    }
    const lost = { ab: lostOf(pa.stdout), ba: lostOf(pb.stdout) }
    total += lost.ab.length + lost.ba.length
    console.log(`run ${r + 1}: direct again ${healMs ?? 'never'} ms after the heal; lost a->b ${JSON.stringify(lost.ab)}, b->a ${JSON.stringify(lost.ba)}`)
    for (const [from, to, seqs] of [['a', 'b', lost.ab], ['b', 'a', lost.ba]] as const) {
      // The ping's id: the one of requests from `from` after the heal.
      for (const seq of seqs) {
        const trail: string[] = []
        for (const where of ['a', 'hub', 'b']) {
          for (const s of seen.get(where) ?? []) {
            if (s.seq !== seq || s.t < pingStart - 100) continue
            const fromTo = `${name(s.src)}>${name(s.dst)}`
            if ((s.kind === 'request' && fromTo === `${from}>${to}`) || (s.kind === 'reply' && fromTo === `${to}>${from}`)) trail.push(`${s.kind} on ${where} at ${new Date(s.t).toISOString().slice(17, 23)}`)
          }
        }
        console.log(`  lost ${from}->${to} seq ${seq}: ${trail.length === 0 ? 'seen nowhere' : trail.join('; ')}`)
      }
    }
  }
  // Path events of both clients (their whole logs: the process output is buffered by the lab).
  await mesh.cleanup()
  for (const c of ['a', 'b'] as const) {
    const res = await mesh.clients[c]!
    for (const e of pathEvents(String(res.all ?? ''))) console.log(`  ${c} ${new Date(e.t).toISOString().slice(11, 23)} ${e.msg}`)
  }
  console.log(`lost in all: ${total}`)
} finally {
  for (const c of captures) c.proc.kill('SIGKILL')
  await lab.destroy()
}
