/**
 * `npm run demo`: the whole user journey, from machines with no WireGuard at all to a mesh. In network namespaces on
 * this machine: `wgnat-server init` makes the hub, `add-peer` prints each spoke's config, plain `wg-quick up` brings
 * the spokes up, then the daemons turn the star into a mesh. Shows every pair's path (via hub / direct / none) and
 * round-trip time, then a summary, then removes everything. Needs root (namespaces, /dev/net/tun); no configuration.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createLab, labSupport, type Lab } from './lab/lab.js'
import { CLIENT_BIN, SERVER_BIN, pathBetween, startMesh, waitFor, type MeshProcesses, type PathKind } from './lab/mesh.js'

/** wg-quick falls back to wireguard-go without a kernel module; wireguard-go wants this to run anyway. */
const WG_ENV = { WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD: '1' }

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
  console.log('wgnat demo: from nothing to a mesh. A hub and three spokes behind NATs, on a simulated internet in network')
  console.log('namespaces, with no WireGuard configured anywhere yet.\n')
  const lab = await createLab({ sites: SITES.map((s) => ({ name: s.name, kind: s.kind, clients: [s.name] })), bare: true })
  const dir = await mkdtemp(join(tmpdir(), `wgnat-demo-${lab.id}-`))
  let mesh: MeshProcesses | undefined
  try {
    console.log(`  hub    ${lab.hub.underlayIp} (public)`)
    for (const s of SITES) console.log(`  ${s.name.padEnd(6)} behind ${lab.routers[s.name]?.wanIp ?? '?'}, ${s.what}`)

    const hubIf = lab.hub.wgIf
    const dirs = ['--config-dir', join(dir, 'hub', 'etc'), '--state-dir', join(dir, 'hub', 'state')]
    const server = async (args: string[]): Promise<{ stdout: string, stderr: string }> => {
      const r = await lab.exec('hub', [process.execPath, SERVER_BIN, ...args, ...dirs], { env: WG_ENV, timeoutMs: 60_000, reject: false })
      if (r.exitCode !== 0) throw new Error(`wgnat-server ${args.join(' ')}: ${r.stderr.trim()}`)
      return r
    }
    const indent = (text: string): string => text.trimEnd().split('\n').map((l) => `    ${l}`).join('\n')

    console.log(`\n[${clock()}] on the hub: wgnat-server init -i ${hubIf} --endpoint ${lab.hub.underlayIp} --address 100.64.0.1/24`)
    console.log(indent((await server(['init', '-i', hubIf, '--endpoint', lab.hub.underlayIp, '--address', '100.64.0.1/24'])).stdout))
    const hubKey = (await lab.exec('hub', ['wg', 'show', hubIf, 'public-key'])).stdout.trim()

    // add-peer runs one at a time on the hub (it locks); each spoke's wg-quick up runs meanwhile.
    const ups: Array<Promise<unknown>> = []
    for (const s of SITES) {
      console.log(`\n[${clock()}] on the hub: wgnat-server add-peer -i ${hubIf} ${s.name}${s.name === 'alice' ? '   (prints the spoke\'s config)' : ''}`)
      const config = (await server(['add-peer', '-i', hubIf, s.name])).stdout
      if (s.name === 'alice') console.log(indent(config.replace(/^PrivateKey = .*$/m, 'PrivateKey = (printed once, kept nowhere on the hub)')))
      // wg-quick names the interface after the file: the lab's name for this spoke's interface.
      const path = join(dir, `${lab.clients[s.name]?.wgIf ?? s.name}.conf`)
      await writeFile(path, config, { mode: 0o600 })
      console.log(`    on ${s.name}: save it as ${lab.clients[s.name]?.wgIf ?? ''}.conf, wg-quick up`)
      ups.push(lab.exec(s.name, ['wg-quick', 'up', path], { env: WG_ENV, timeoutMs: 30_000 }))
    }
    await Promise.all(ups)
    // The keys were made by init and add-peer: tell the lab's helpers which peer is which.
    lab.hub.publicKey = hubKey
    for (const s of SITES) {
      const host = lab.clients[s.name]
      if (host !== undefined) host.publicKey = (await lab.exec(s.name, ['wg', 'show', host.wgIf, 'public-key'])).stdout.trim()
    }
    for (const s of SITES) await lab.ping(s.name, lab.hub.tunnelIp, { count: 1, timeoutS: 2 })
    console.log(`\n[${clock()}] on the hub: wgnat-server peers -i ${hubIf}`)
    console.log(indent((await server(['peers', '-i', hubIf])).stdout))

    console.log(`\n[${clock()}] starting wgnat-server -i ${hubIf} on the hub (no other flag: a hub made by init relays)`)
    mesh = startMesh(lab, { registryKey: hubKey, serverArgs: dirs, clients: [] })
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
    // Set WGNAT_DEMO_LOGS=1 to see what the daemons logged.
    if (process.env.WGNAT_DEMO_LOGS === '1') console.log(`\nLogs (WGNAT_DEMO_LOGS=1):\n${mesh.logs()}`)
    return rows.some((r) => r.path === 'none') ? 1 : 0
  } finally {
    await mesh?.cleanup()
    await lab.destroy()
    await rm(dir, { recursive: true, force: true })
    console.log(`\n[${clock()}] lab removed`)
  }
}

process.exitCode = await main().catch((err: unknown) => {
  console.error(`demo: ${err instanceof Error ? err.message : String(err)}`)
  return 1
})
