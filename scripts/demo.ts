/**
 * `npm run demo`: a hub and three spokes behind different NATs, in network namespaces on this machine.
 * Shows every pair's path (via hub / direct / none) and round-trip time as wgnat turns the star into a mesh,
 * then a summary, then removes everything. Needs root (namespaces, /dev/net/tun); no configuration.
 */
import { createLab, labSupport, type Lab } from './lab/lab.js'
import { CLIENT_BIN, pathBetween, startMesh, waitFor, type MeshProcesses, type PathKind } from './lab/mesh.js'

const SITES = [
  { name: 'alice', kind: 'easy' as const, what: 'home router (NAT + stateful firewall)' },
  { name: 'bob', kind: 'easy' as const, what: 'home router (NAT + stateful firewall)' },
  { name: 'carol', kind: 'hard' as const, what: 'symmetric NAT (new port per destination)' }
]
const PAIRS: Array<[string, string]> = [['alice', 'bob'], ['alice', 'carol'], ['bob', 'carol']]
/** How long to watch after starting wgnat: longer than a failed direct attempt (10 s) so the fallback shows. */
const WATCH_MS = 16_000

interface Row { pair: string, path: PathKind, rttMs: number | undefined }

const t0 = Date.now()
const clock = (): string => `${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s`

function render (rows: Row[]): string {
  return rows.map((r) => `    ${r.pair.padEnd(14)} ${r.path.padEnd(8)} ${r.rttMs === undefined ? '-' : `${r.rttMs.toFixed(2)} ms`}`).join('\n')
}

async function snapshot (lab: Lab): Promise<Row[]> {
  return await Promise.all(PAIRS.map(async ([a, b]) => ({ pair: `${a} -> ${b}`, ...(await pathBetween(lab, a, b)) })))
}

/** Until the hub relays (wgnat-server --relay has set up forwarding): a spoke reaches another through it. */
async function waitForRelay (lab: Lab): Promise<void> {
  const to = lab.clients.bob?.tunnelIp ?? ''
  await waitFor(async () => (await lab.ping('alice', to, { count: 1, timeoutS: 1 })).received > 0, 10_000)
}

async function main (): Promise<number> {
  const support = await labSupport()
  if (!support.ok) {
    console.error(`demo: cannot build the lab here: ${support.reason}`)
    return 1
  }
  console.log('wgnat demo: a WireGuard hub and three spokes behind NATs, on a simulated internet in network namespaces.\n')
  const lab = await createLab({ sites: SITES.map((s) => ({ name: s.name, kind: s.kind, clients: [s.name] })) })
  let mesh: MeshProcesses | undefined
  try {
    console.log(`  hub    ${lab.hub.underlayIp} (public), tunnel ${lab.hub.tunnelIp}`)
    for (const s of SITES) console.log(`  ${s.name.padEnd(6)} behind ${lab.routers[s.name]?.wanIp ?? '?'}, ${s.what}, tunnel ${lab.clients[s.name]?.tunnelIp ?? '?'}`)
    for (const s of SITES) await lab.ping(s.name, lab.hub.tunnelIp, { count: 1, timeoutS: 2 })

    console.log(`\n[${clock()}] starting wgnat-server --relay on the hub: the hub forwards between spokes`)
    mesh = startMesh(lab, { serverArgs: ['--relay'], clients: [] })
    await waitForRelay(lab)
    console.log(`\n[${clock()}] hub-and-spoke, before wgnat-client: every packet between spokes goes through the hub`)
    let rows = await snapshot(lab)
    console.log(render(rows))

    console.log(`\n[${clock()}] starting wgnat-client -t 1m on each spoke`)
    const started = Date.now()
    for (const s of SITES) mesh.startClient(s.name)
    const firstDirect = new Map<string, number>()
    let last = JSON.stringify(rows.map((r) => r.path))
    while (Date.now() - started < WATCH_MS) {
      await new Promise((resolve) => setTimeout(resolve, 500))
      rows = await snapshot(lab)
      for (const r of rows) if (r.path === 'direct' && !firstDirect.has(r.pair)) firstDirect.set(r.pair, Date.now() - started)
      const now = JSON.stringify(rows.map((r) => r.path))
      if (now !== last) {
        console.log(`\n[${clock()}] paths changed`)
        console.log(render(rows))
        last = now
      }
    }
    console.log(`\n[${clock()}] final state`)
    console.log(render(rows))

    const carol = lab.clients.carol
    if (carol !== undefined) {
      const status = await lab.exec('carol', [process.execPath, CLIENT_BIN, 'status', '-i', carol.wgIf], { reject: false })
      console.log(`\n[${clock()}] what carol's client knows (wgnat-client status -i ${carol.wgIf}):`)
      console.log(status.stdout.trimEnd().split('\n').map((l) => `    ${l}`).join('\n'))
    }

    console.log('\nSummary')
    for (const r of rows) {
      const at = firstDirect.get(r.pair)
      const note = r.path === 'direct'
        ? `direct after ${((at ?? 0) / 1000).toFixed(1)} s`
        : r.path === 'via hub' ? 'no direct path possible (symmetric NAT): stays on the hub, never worse than before' : 'unreachable'
      console.log(`  ${r.pair.padEnd(14)} ${note}`)
    }
    const direct = rows.filter((r) => r.path === 'direct').length
    console.log(`  ${direct} of ${rows.length} pairs direct; ${rows.filter((r) => r.path === 'none').length} unreachable.`)
    return rows.some((r) => r.path === 'none') ? 1 : 0
  } finally {
    mesh?.cleanup()
    await lab.destroy()
    console.log(`\n[${clock()}] lab removed`)
  }
}

process.exitCode = await main().catch((err: unknown) => {
  console.error(`demo: ${err instanceof Error ? err.message : String(err)}`)
  return 1
})
