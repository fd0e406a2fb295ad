import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createLab, labSupport, type Lab } from '../../scripts/lab/lab.js'
import { type MeshProcesses, pathBetween, registerWithHub, startMesh, waitFor } from '../../scripts/lab/mesh.js'
import type { SpawnedProcess } from '../../scripts/lab/command.js'
import { parsePrefix, prefixContains } from '../../src/shared/ip.js'
import { testKey } from '../helpers/keys.js'

/*
 * The real wgnat-client against a hostile registry where wgnat-server listened (the hub's tunnel address and port):
 * malformed, truncated, oversized (40 MiB) and 1-byte-a-second bodies, routes outside the mesh, the client's own key
 * and the hub's key as peers, 20,000 peers with overlapping prefixes, a table that changes on every request (100 a
 * second). A spoke announcing other hosts' addresses as LAN candidates: test/e2e/lan-candidates.test.ts.
 */
const support = await labSupport()
if (!support.ok) console.warn(`SKIPPING hostile registry e2e tests: ${support.reason}`)

const FIXTURE = fileURLToPath(new URL('./fixtures/hostile-registry.mjs', import.meta.url))
const HAND_ADDED = testKey('hand-added')
const MESH = parsePrefix('100.64.0.0/24')

/** Each hostile mode, how long the client faces it, and whether its requests fail (then its log must stay short). */
const PHASES: Array<{ mode: string, seconds: number, failing: boolean }> = [
  { mode: 'malformed', seconds: 6, failing: true },
  { mode: 'outside', seconds: 5, failing: false },
  { mode: 'truncated', seconds: 6, failing: true },
  { mode: 'flood', seconds: 10, failing: false },
  { mode: 'slow', seconds: 12, failing: true },
  { mode: 'churn', seconds: 6, failing: false },
  { mode: 'oversized', seconds: 10, failing: true },
  { mode: 'real', seconds: 4, failing: false }
]

describe.skipIf(!support.ok)('a hostile registry inside the tunnel', () => {
  let lab: Lab
  let mesh: MeshProcesses
  let hostile: SpawnedProcess | undefined
  let dir: string
  const lines: Record<string, string[]> = { a: [], b: [] }
  const exited: Record<string, boolean> = { a: false, b: false }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'wgnat-hostile-'))
    lab = await createLab({ sites: [{ name: 'a', kind: 'easy', clients: ['a'] }, { name: 'b', kind: 'easy', clients: ['b'] }], hubForwarding: true })
    await registerWithHub(lab)
    // -t 2s: retries after failures wait at most 2 s, so every hostile mode gets several requests in its phase.
    mesh = startMesh(lab, { clientArgs: ['-t', '2s'] })
    for (const name of ['a', 'b']) {
      const p = mesh.clients[name]!
      p.all?.on('data', (chunk: Buffer) => { for (const l of String(chunk).split('\n')) if (l.trim() !== '') lines[name]!.push(l) })
      void p.then(() => { exited[name] = true }, () => { exited[name] = true })
    }
  })

  afterAll(async () => {
    // HOSTILE_LOG=<file>: keep client a's whole log for a look at what each phase made it say.
    if (process.env.HOSTILE_LOG !== undefined) writeFileSync(process.env.HOSTILE_LOG, lines.a!.join('\n') + '\n')
    hostile?.kill('SIGTERM')
    await mesh?.cleanup()
    await lab?.destroy()
    rmSync(dir, { recursive: true, force: true })
  })

  async function dump (host: 'a' | 'b'): Promise<string[]> {
    const out = await lab.exec(host, ['wg', 'show', lab.clients[host]!.wgIf, 'dump'])
    return out.stdout.trim().split('\n').slice(1)
  }

  it('keeps a direct path, the hand-added peer and its routes through every kind of hostile answer, and never crashes', async () => {
    const a = lab.clients.a!; const b = lab.clients.b!
    const direct = await waitFor(async () => (await pathBetween(lab, 'a', 'b')).path === 'direct' && (await pathBetween(lab, 'b', 'a')).path === 'direct', 90_000)
    expect(direct, mesh.logs()).toBeDefined()
    // A peer someone configured by hand on a, inside the mesh: wgnat must leave it exactly as it is.
    await lab.exec('a', ['wg', 'set', a.wgIf, 'peer', HAND_ADDED, 'allowed-ips', '100.64.0.250/32', 'endpoint', '198.18.99.9:1234'])
    const handLine = (await dump('a')).find((l) => l.startsWith(HAND_ADDED))
    const routesBefore = (await lab.exec('a', ['ip', 'route', 'show', 'table', 'all'])).stdout

    // Replace the real registry by the hostile one, where it listened.
    mesh.server?.kill('SIGTERM')
    await mesh.server
    const modeFile = join(dir, 'mode')
    writeFileSync(modeFile, 'real')
    hostile = lab.spawn('hub', [process.execPath, FIXTURE, JSON.stringify({ address: lab.hub.tunnelIp, port: lab.hub.listenPort, iface: lab.hub.wgIf, modeFile })])
    await new Promise((resolve) => setTimeout(resolve, 3000))

    const report: string[] = []
    for (const phase of PHASES) {
      const from = { a: lines.a!.length + 1, b: lines.b!.length }
      writeFileSync(modeFile, phase.mode)
      lines.a!.push(`=== phase ${phase.mode}`)
      await new Promise((resolve) => setTimeout(resolve, phase.seconds * 1000))
      const logged = lines.a!.slice(from.a)
      const warned = logged.filter((l) => /WARN|ERROR/.test(l))
      report.push(`${phase.mode}: ${logged.length} lines (${warned.length} warnings)`)
      console.log(`[e2e] hostile registry phase ${report[report.length - 1] ?? ''}`)
      const context = `${phase.mode}:\n${warned.slice(0, 20).join('\n')}\n${mesh.logs()}`

      // Never crashes.
      expect(exited.a, context).toBe(false)
      expect(exited.b, context).toBe(false)
      // Keeps the paths it has: a and b stay direct (both sides checked).
      expect((await pathBetween(lab, 'a', 'b', 2)).path, context).toBe('direct')
      expect((await pathBetween(lab, 'b', 'a', 2)).path, context).toBe('direct')
      // Touches no unmanaged peer.
      expect((await dump('a')).find((l) => l.startsWith(HAND_ADDED)), context).toBe(handLine)
      // Routes nothing outside the mesh, nor the whole mesh, to a peer the registry named; no kernel route added.
      for (const line of await dump('a')) {
        const [key, , , allowed] = line.split('\t')
        if (key === lab.hub.publicKey || key === HAND_ADDED || allowed === '(none)') continue
        for (const p of (allowed ?? '').split(',')) {
          const prefix = parsePrefix(p)
          expect(prefixContains(MESH, prefix) && prefix.bits > MESH.bits, `${phase.mode}: ${p}`).toBe(true)
        }
      }
      expect((await lab.exec('a', ['ip', 'route', 'show', 'table', 'all'])).stdout).toBe(routesBefore)
      // One line per kind of problem, not one per request: the failing modes got several requests each.
      if (phase.failing) expect(warned.length, context).toBeLessThanOrEqual(3)
      else expect(warned.length, context).toBeLessThanOrEqual(12)
    }
    console.log(`[e2e] hostile registry, client a's log per phase: ${report.join('; ')}`)
  }, 400_000)
})
