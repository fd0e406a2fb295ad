/**
 * What an idle direct peer costs on the wire: two clients behind `easy` home routers with a direct path between
 * them and no traffic; the internet router counts the UDP packets from one router's public address to the other's
 * (iptables counting rules in `inet`, one per direction) over windows of `--seconds`.
 *
 *   node dist/scripts/bench/idle-packets.js [--seconds 60] [--runs 3] [--client-args="--keepalive 25"]
 *
 * Why: dead-path detection must not make idle peers pay (issue 11). With only keepalives, each side sends one
 * packet every `--keepalive` seconds (25: 2.4 a minute) plus a handshake every two minutes. Prints per window the
 * packets a -> b and b -> a, and the medians per minute, as Markdown.
 */
import { createLab, labSupport, type Lab } from '../lab/lab.js'
import { pathBetween, registerWithHub, startMesh, waitFor } from '../lab/mesh.js'
import { benchArgs } from './bench-args.js'

const { values } = benchArgs({
  args: process.argv.slice(2),
  options: { seconds: { type: 'string', default: '60' }, runs: { type: 'string', default: '3' }, 'client-args': { type: 'string', default: '' } }
})
const SECONDS = Number(values.seconds)
const RUNS = Number(values.runs)
if (!Number.isInteger(SECONDS) || SECONDS < 5 || !Number.isInteger(RUNS) || RUNS < 1) {
  console.error(`idle-packets: --seconds (at least 5) and --runs must be whole numbers: '${values.seconds}', '${values.runs}'`)
  process.exit(64)
}
const CLIENT_ARGS = (values['client-args'] ?? '').split(/\s+/).filter((a) => a !== '')

/** Packet counters of the two counting rules in inet's FORWARD chain. */
async function counters (lab: Lab, wa: string, wb: string): Promise<{ ab: number, ba: number }> {
  const out = (await lab.exec('inet', ['iptables', '-w', '-L', 'FORWARD', '-v', '-x', '-n'])).stdout.split('\n')
  const count = (src: string, dst: string): number => {
    const line = out.find((l) => new RegExp(`\\s${src.replace(/\./g, '\\.')}\\s+${dst.replace(/\./g, '\\.')}(\\s|$)`).test(l))
    if (line === undefined) throw new Error(`idle-packets: no counting rule ${src} -> ${dst} in inet`)
    return Number(line.trim().split(/\s+/)[0])
  }
  return { ab: count(wa, wb), ba: count(wb, wa) }
}

function median (xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y)
  const m = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

const support = await labSupport()
if (!support.ok) { console.error(`idle-packets: no lab here: ${support.reason}`); process.exit(69) }
const lab = await createLab({ sites: [{ name: 'a', kind: 'easy', clients: ['a'] }, { name: 'b', kind: 'easy', clients: ['b'] }] })
let mesh: ReturnType<typeof startMesh> | undefined
try {
  await registerWithHub(lab)
  mesh = startMesh(lab, { clientArgs: CLIENT_ARGS })
  if (await waitFor(async () => (await pathBetween(lab, 'a', 'b')).path === 'direct', 60_000) === undefined) throw new Error(`idle-packets: no direct path\n${mesh.logs()}`)
  const [wa, wb] = [lab.routers.a!.wanIp, lab.routers.b!.wanIp]
  await lab.exec('inet', ['iptables', '-w', '-I', 'FORWARD', '-s', wa, '-d', wb, '-p', 'udp'])
  await lab.exec('inet', ['iptables', '-w', '-I', 'FORWARD', '-s', wb, '-d', wa, '-p', 'udp'])
  // Let the ping above and its handshake age out of the first window.
  await new Promise((resolve) => setTimeout(resolve, 12_000))
  const rows: Array<{ ab: number, ba: number }> = []
  for (let r = 0; r < RUNS; r++) {
    const before = await counters(lab, wa, wb)
    await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000))
    const after = await counters(lab, wa, wb)
    rows.push({ ab: after.ab - before.ab, ba: after.ba - before.ba })
    console.error(`run ${r + 1}: a -> b ${rows.at(-1)!.ab}, b -> a ${rows.at(-1)!.ba} packets in ${SECONDS} s`)
  }
  const perMin = (n: number): string => (n * 60 / SECONDS).toFixed(1)
  console.log(`| window | a -> b packets/min | b -> a packets/min |\n| --- | --- | --- |`)
  rows.forEach((x, i) => console.log(`| ${i + 1} | ${perMin(x.ab)} | ${perMin(x.ba)} |`))
  console.log(`| median | ${perMin(median(rows.map((x) => x.ab)))} | ${perMin(median(rows.map((x) => x.ba)))} |`)
} finally {
  await mesh?.cleanup()
  await lab.destroy()
}
