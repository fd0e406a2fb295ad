/**
 * Convergence benchmark (issue 4), in the NAT lab: N clients behind `easy` home routers, hub not forwarding.
 *
 *   node dist/scripts/bench/convergence.js [--runs 3] [--sizes 2,4,8] [--interval 10s]
 *
 * For each size and mode, per run:
 * - mesh time: from starting the clients until every client has every other one as a direct peer (allowed IPs on,
 *   which wgnat does only after a handshake), checked afterwards by pinging every pair with the hub not forwarding;
 * - propagation: from an endpoint change on the hub (a test peer's endpoint set with `wg set` on the hub) until
 *   every client's interface shows the new endpoint.
 * Modes: `push` (wgnat: long-poll) and `wg-nat` (interval polling, first sync after one interval, emulated with
 * `--no-push` and starting each client one interval late). Prints medians and the ratio.
 */
import { createHash } from 'node:crypto'
import { parseGoDuration } from '../../src/shared/duration.js'
import { createLab, labSupport, type Lab } from '../lab/lab.js'
import { startMesh, waitFor } from '../lab/mesh.js'
import { median } from './median.js'
import { benchArgs } from './bench-args.js'

const { values } = benchArgs({ options: { runs: { type: 'string', default: '3' }, sizes: { type: 'string', default: '2,4,8' }, interval: { type: 'string', default: '10s' } } })
const RUNS = Number(values.runs)
const SIZES = (values.sizes ?? '2,4,8').split(',').map(Number)
const INTERVAL = values.interval ?? '10s'
const INTERVAL_MS = parseGoDuration(INTERVAL)
const TIMEOUT_MS = 60_000 + 3 * INTERVAL_MS
/** A peer that exists only on the hub, for the endpoint-change measurement; its address is in the lab's range. */
const PROBE_KEY = createHash('sha256').update('wgnat-bench-probe').digest('base64')

type Mode = 'push' | 'wg-nat'

async function directPeers (lab: Lab, name: string): Promise<Set<string>> {
  const host = lab.clients[name]!
  const out = await lab.exec(name, ['wg', 'show', host.wgIf, 'dump'], { reject: false })
  const keys = new Set<string>()
  for (const line of out.stdout.split('\n').slice(1)) {
    const f = line.split('\t')
    if ((f[3] ?? '(none)') !== '(none)' && f[0] !== lab.hub.publicKey) keys.add(f[0] ?? '')
  }
  return keys
}

async function endpointOf (lab: Lab, name: string, key: string): Promise<string | undefined> {
  const out = await lab.exec(name, ['wg', 'show', lab.clients[name]!.wgIf, 'endpoints'], { reject: false })
  return out.stdout.split('\n').map((l) => l.split('\t')).find((f) => f[0] === key)?.[1]
}

async function once (n: number, mode: Mode): Promise<{ meshMs: number | undefined, propagationMs: number | undefined, pingsOk: boolean }> {
  const names = Array.from({ length: n }, (_, i) => `c${i + 1}`)
  const lab = await createLab({ sites: names.map((name) => ({ name, kind: 'easy' as const, clients: [name] })) })
  const clientArgs = mode === 'push' ? ['-t', INTERVAL, '--log-level', 'info'] : ['-t', INTERVAL, '--no-push', '--log-level', 'info']
  const mesh = startMesh(lab, { clients: [], clientArgs })
  try {
    await Promise.all(names.map(async (name) => await lab.ping(name, lab.hub.tunnelIp, { count: 1, timeoutS: 2 })))
    await lab.exec('hub', ['wg', 'set', lab.hub.wgIf, 'peer', PROBE_KEY, 'allowed-ips', '100.64.0.250/32', 'endpoint', '198.18.1.250:51820'])
    await new Promise((resolve) => setTimeout(resolve, 1500)) // registry up and serving
    const t0 = Date.now()
    // wg-nat syncs first after one interval: a client started one interval late behaves the same.
    if (mode === 'wg-nat') await new Promise((resolve) => setTimeout(resolve, INTERVAL_MS))
    for (const name of names) mesh.startClient(name)
    const done = await waitFor(async () => {
      const all = await Promise.all(names.map(async (name) => (await directPeers(lab, name)).size))
      return all.every((k) => k === n - 1)
    }, TIMEOUT_MS)
    const meshMs = done === undefined ? undefined : Date.now() - t0
    let pingsOk = meshMs !== undefined
    if (pingsOk) {
      const results = await Promise.all(names.flatMap((a) => names.filter((b) => b !== a).map(async (b) => (await lab.ping(a, lab.clients[b]!.tunnelIp, { count: 1, timeoutS: 2 })).received)))
      pingsOk = results.every((r) => r > 0)
    }
    // Endpoint change on the hub -> every client.
    await waitFor(async () => (await Promise.all(names.map(async (c) => await endpointOf(lab, c, PROBE_KEY)))).every((e) => e === '198.18.1.250:51820'), TIMEOUT_MS)
    const t1 = Date.now()
    await lab.exec('hub', ['wg', 'set', lab.hub.wgIf, 'peer', PROBE_KEY, 'endpoint', '198.18.1.251:51820'])
    const moved = await waitFor(async () => (await Promise.all(names.map(async (c) => await endpointOf(lab, c, PROBE_KEY)))).every((e) => e === '198.18.1.251:51820'), TIMEOUT_MS)
    return { meshMs, propagationMs: moved === undefined ? undefined : Date.now() - t1, pingsOk }
  } finally {
    await mesh.cleanup()
    await lab.destroy()
  }
}

const support = await labSupport()
if (!support.ok) { console.error(`convergence: the lab cannot run here: ${support.reason}`); process.exit(1) }
const fmt = (ms: number | undefined): string => ms === undefined ? 'timeout' : `${(ms / 1000).toFixed(2)} s`
console.log(`| clients | wgnat mesh (median of ${RUNS}) | wg-nat-style mesh | ratio | wgnat endpoint change | wg-nat-style endpoint change | ratio | all pairs pinged |`)
console.log('| --- | --- | --- | --- | --- | --- | --- | --- |')
for (const n of SIZES) {
  const res: Record<Mode, Array<Awaited<ReturnType<typeof once>>>> = { push: [], 'wg-nat': [] }
  for (let r = 0; r < RUNS; r++) {
    // Interleave the modes so machine noise hits both alike.
    for (const mode of ['push', 'wg-nat'] as Mode[]) {
      const x = await once(n, mode)
      res[mode].push(x)
      console.error(`  n=${n} ${mode} run ${r + 1}: mesh ${fmt(x.meshMs)}, endpoint change ${fmt(x.propagationMs)}, pings ${x.pingsOk ? 'ok' : 'FAILED'}`)
    }
  }
  const m = (mode: Mode, k: 'meshMs' | 'propagationMs'): number | undefined => median(res[mode].map((x) => x[k]))
  const ratio = (a: number | undefined, b: number | undefined): string => a === undefined || b === undefined ? '-' : `${(b / a).toFixed(1)}x`
  const pings = [...res.push, ...res['wg-nat']].every((x) => x.pingsOk) ? 'yes' : 'no'
  console.log(`| ${n} | ${fmt(m('push', 'meshMs'))} | ${fmt(m('wg-nat', 'meshMs'))} | ${ratio(m('push', 'meshMs'), m('wg-nat', 'meshMs'))} | ${fmt(m('push', 'propagationMs'))} | ${fmt(m('wg-nat', 'propagationMs'))} | ${ratio(m('push', 'propagationMs'), m('wg-nat', 'propagationMs'))} | ${pings} |`)
}
