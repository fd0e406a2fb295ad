/**
 * Port-mapping reachability benchmark (issue 17), in the NAT lab: a client behind a symmetric NAT whose router runs
 * miniupnpd (`hm`, hard+upnp), and a partner behind each other kind that can reach it (`e` easy, `p` public, `h`
 * hard without mapping). The hub does not forward, so a ping that gets through took the direct path.
 *
 *   node dist/scripts/bench/portmap.js [--runs 5]
 *
 * Per run, from starting every client at once: when `hm` logs its mapping, when each partner logs `hm` as direct
 * (a handshake proved the path), then a ping to confirm (the hub does not forward) and which candidate won
 * (`wgnat-client status` of the partner).
 * Prints medians and ranges.
 */
import { createLab, labSupport } from '../lab/lab.js'
import { clientStatus, registerWithHub, startMesh, waitFor } from '../lab/mesh.js'
import { benchArgs } from './bench-args.js'

const { values } = benchArgs({ options: { runs: { type: 'string', default: '5' } } })
const RUNS = Number(values.runs)
const PARTNERS = ['e', 'p', 'h'] as const
const TIMEOUT_MS = 60_000

interface Run { mappingMs?: number, protocol?: string, notes?: string[], pairs: Record<string, { ms?: number, candidate?: string | null, pinged?: boolean }> }

async function once (): Promise<Run> {
  const lab = await createLab({
    sites: [
      { name: 'hm', kind: 'hard', clients: ['hm'], portMapping: true },
      { name: 'e', kind: 'easy', clients: ['e'] },
      { name: 'p', kind: 'public', clients: ['p'] },
      { name: 'h', kind: 'hard', clients: ['h'] }
    ]
  })
  const mesh = startMesh(lab, { clients: [], clientArgs: ['--log-level', 'info'] })
  try {
    await registerWithHub(lab)
    await new Promise((resolve) => setTimeout(resolve, 1500)) // registry up
    const run: Run = { pairs: {} }
    const hmShort = lab.clients.hm!.publicKey.slice(0, 8)
    // Times are taken as the clients log the events (status and ping polls would add seconds on a loaded machine).
    const t0 = Date.now()
    const watch = (name: string, onLine: (line: string) => void): void => {
      mesh.startClient(name).all?.on('data', (chunk: Buffer) => { for (const line of String(chunk).split('\n')) onLine(line) })
    }
    watch('hm', (line) => {
      if (/port mapping/.test(line)) (run.notes ??= []).push(`${Date.now() - t0} ms: ${line.replace(/^\S+ /, '').slice(0, 300)}`)
      const m = /port mapping \S+ -> :\d+ by (\S+)/.exec(line)
      if (m !== null && run.mappingMs === undefined) { run.mappingMs = Date.now() - t0; run.protocol = m[1] }
    })
    for (const name of PARTNERS) {
      run.pairs[name] = {}
      watch(name, (line) => { if (line.includes(`peer ${hmShort}:`) && line.includes('-> direct') && run.pairs[name]!.ms === undefined) run.pairs[name]!.ms = Date.now() - t0 })
    }
    await waitFor(async () => PARTNERS.every((n) => run.pairs[n]!.ms !== undefined), TIMEOUT_MS)
    // Confirm: the hub does not forward, so an answered ping took the direct path; and which candidate won.
    for (const name of PARTNERS) {
      const ping = await lab.ping(name, lab.clients.hm!.tunnelIp, { count: 2, timeoutS: 2 })
      const s = await clientStatus(lab, name).catch(() => undefined)
      run.pairs[name] = { ...run.pairs[name], pinged: ping.received > 0, candidate: s?.peers.find((x) => x.publicKey === lab.clients.hm!.publicKey)?.candidate }
    }
    return run
  } finally {
    await mesh.cleanup()
    await lab.destroy()
  }
}

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s.length === 0 ? NaN : s[Math.floor((s.length - 1) / 2)]! }
const sec = (ms: number): string => (ms / 1000).toFixed(1)

const support = await labSupport()
if (!support.ok) { console.error(`portmap bench: ${support.reason}`); process.exit(69) }
const runs: Run[] = []
for (let i = 0; i < RUNS; i++) {
  const r = await once()
  runs.push(r)
  console.error(`run ${i + 1}: ${JSON.stringify(r)}`)
}
const mapping = runs.flatMap((r) => r.mappingMs === undefined ? [] : [r.mappingMs])
console.log(`mapping held: median ${sec(median(mapping))} s (${sec(Math.min(...mapping))}–${sec(Math.max(...mapping))}), ${mapping.length}/${runs.length} runs, by ${[...new Set(runs.map((r) => r.protocol))].join('/')}`)
for (const name of PARTNERS) {
  const ms = runs.flatMap((r) => r.pairs[name]?.ms === undefined ? [] : [r.pairs[name]!.ms!])
  const via = [...new Set(runs.map((r) => r.pairs[name]?.candidate ?? '-'))].join('/')
  const pinged = runs.filter((r) => r.pairs[name]?.pinged === true).length
  console.log(`${name}–hm: direct in ${ms.length}/${runs.length} runs (ping answered in ${pinged}), median ${sec(median(ms))} s (${ms.length === 0 ? '-' : `${sec(Math.min(...ms))}–${sec(Math.max(...ms))}`}), via ${via}`)
}
