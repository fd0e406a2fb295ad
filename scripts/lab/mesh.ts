import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { SpawnedProcess } from './command.js'
import type { Lab } from './types.js'

/** wgnat's own processes in a lab: the registry on the hub, a client per spoke, started as a user would. */

function repoRoot (): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir)
    if (up === dir) throw new Error('wgnat repository root not found')
    dir = up
  }
  return dir
}

export const SERVER_BIN = join(repoRoot(), 'dist/bin/wgnat-server.cjs')
export const CLIENT_BIN = join(repoRoot(), 'dist/bin/wgnat-client.cjs')

export interface MeshProcesses {
  server: SpawnedProcess | undefined
  clients: Record<string, SpawnedProcess>
  stateDir: string
  /** Everything the processes printed so far, for a failing test's message. */
  logs: () => string
  /** Stop a client with SIGTERM and wait for it to exit; returns its exit code and how long it took. */
  stopClient: (name: string) => Promise<{ exitCode: number | undefined, ms: number }>
  startClient: (name: string, args?: string[]) => SpawnedProcess
  /** Stop the daemons (SIGTERM; SIGKILL after CLEANUP_KILL_AFTER_MS), wait for them to exit, remove the state directory. */
  cleanup: () => Promise<void>
}

/** cleanup() kills a daemon that has not exited this long after its SIGTERM. */
export const CLEANUP_KILL_AFTER_MS = 10_000

export interface MeshOptions {
  serverArgs?: string[]
  /** Extra client arguments; the defaults are `-t 1m`. */
  clientArgs?: string[]
  /** Clients to start (default: all). */
  clients?: string[]
  /** Don't start the registry. */
  noServer?: boolean
  /** The hub's public key for `-r` (default: the lab's; give it for a bare lab whose hub was made by init). */
  registryKey?: string
}

export function startMesh (lab: Lab, opts: MeshOptions = {}): MeshProcesses {
  const stateDir = mkdtempSync(join(tmpdir(), `wgnat-e2e-${lab.id}-`))
  const server = opts.noServer === true
    ? undefined
    : lab.spawn('hub', [process.execPath, SERVER_BIN, '-i', lab.hub.wgIf, '--log-level', 'debug', ...(opts.serverArgs ?? [])])
  const clients: Record<string, SpawnedProcess> = {}
  const output = new Map<SpawnedProcess, string[]>()
  const collect = (p: SpawnedProcess | undefined): void => {
    if (p === undefined) return
    const lines: string[] = []
    output.set(p, lines)
    p.all?.on('data', (chunk: Buffer) => { lines.push(String(chunk)); if (lines.length > 2000) lines.splice(0, 1000) })
  }
  collect(server)
  const startClient = (name: string, args: string[] = opts.clientArgs ?? []): SpawnedProcess => {
    const host = lab.clients[name]
    if (host === undefined) throw new Error(`no client ${name}`)
    const proc = lab.spawn(name, [process.execPath, CLIENT_BIN, '-i', host.wgIf, '-r', opts.registryKey ?? lab.hub.publicKey, '-t', '1m',
      '--state-dir', join(stateDir, name), '--log-level', 'debug', ...args])
    clients[name] = proc
    collect(proc)
    return proc
  }
  for (const name of opts.clients ?? Object.keys(lab.clients)) startClient(name)
  const logs = (): string => {
    const tail = (p: SpawnedProcess | undefined): string => (p === undefined ? [] : output.get(p) ?? []).join('').split('\n').slice(-80).join('\n')
    const parts = [`--- wgnat-server\n${tail(server)}`]
    for (const [name, p] of Object.entries(clients)) parts.push(`--- wgnat-client ${name}\n${tail(p)}`)
    return parts.join('\n')
  }
  return {
    server,
    clients,
    stateDir,
    logs,
    startClient,
    async stopClient (name) {
      const p = clients[name]
      if (p === undefined) throw new Error(`no client ${name}`)
      const t0 = Date.now()
      p.kill('SIGTERM')
      const r = await p
      return { exitCode: r.exitCode, ms: Date.now() - t0 }
    },
    async cleanup () {
      const procs = [...(server === undefined ? [] : [server]), ...Object.values(clients)]
      for (const p of procs) p.kill('SIGTERM')
      // Their exit first: a client writes its state file on the way out, which would make the directory again.
      const killer = setTimeout(() => { for (const p of procs) p.kill('SIGKILL') }, CLEANUP_KILL_AFTER_MS)
      await Promise.allSettled(procs)
      clearTimeout(killer)
      rmSync(stateDir, { recursive: true, force: true, maxRetries: 5 })
    }
  }
}

export type PathKind = 'direct' | 'via hub' | 'none'

/**
 * How `from` reaches `to` right now: `direct` when `to`'s allowed IPs sit on `to`'s own peer on `from`'s interface
 * (WireGuard sends it straight there), otherwise via the hub; `none` when a ping gets no answer at all.
 */
export async function pathBetween (lab: Lab, from: string, to: string, pingTimeoutS = 1): Promise<{ path: PathKind, rttMs: number | undefined }> {
  const a = lab.clients[from]; const b = lab.clients[to]
  if (a === undefined || b === undefined) throw new Error(`no such clients ${from}, ${to}`)
  const dump = await lab.exec(from, ['wg', 'show', a.wgIf, 'dump'], { reject: false })
  const direct = dump.stdout.split('\n').slice(1).some((line) => {
    const f = line.split('\t')
    return f[0] === b.publicKey && (f[3] ?? '').split(',').includes(`${b.tunnelIp}/32`)
  })
  const ping = await lab.ping(from, b.tunnelIp, { count: 1, timeoutS: pingTimeoutS })
  if (ping.received === 0) return { path: 'none', rttMs: undefined }
  return { path: direct ? 'direct' : 'via hub', rttMs: ping.rttMs[0] }
}

/** Ping until the first reply or the deadline; returns milliseconds from `sinceMs` to the first reply. */
export async function waitForPing (lab: Lab, from: string, toIp: string, deadlineMs: number, sinceMs = Date.now()): Promise<number | undefined> {
  while (Date.now() < deadlineMs) {
    const r = await lab.ping(from, toIp, { count: 1, timeoutS: 1 })
    if (r.received > 0) return Date.now() - sinceMs
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return undefined
}

/** Poll `check` every 100 ms until it returns true or `timeoutMs` passes; returns the elapsed ms or undefined. */
export async function waitFor (check: () => Promise<boolean>, timeoutMs: number): Promise<number | undefined> {
  const t0 = Date.now()
  while (Date.now() - t0 < timeoutMs) {
    if (await check()) return Date.now() - t0
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return undefined
}

/** `wgnat-client status --json` of a running client, as a user would run it. */
export async function clientStatus (lab: Lab, name: string): Promise<import('../../src/client/observe/status.js').ClientStatus> {
  const host = lab.clients[name]
  if (host === undefined) throw new Error(`no client ${name}`)
  const out = await lab.exec(name, [process.execPath, CLIENT_BIN, 'status', '-i', host.wgIf, '--json'])
  return JSON.parse(out.stdout)
}

/**
 * Wait until `name`'s client has parked the peer `publicKey` (its status gives the reason "no handshake in N attempts");
 * the elapsed ms, or undefined after `timeoutMs`. Until the client's status socket is up, `status` fails: not parked yet.
 */
export async function waitForParked (lab: Lab, name: string, publicKey: string, timeoutMs: number): Promise<number | undefined> {
  return await waitFor(async () => {
    const peer = (await clientStatus(lab, name).catch(() => undefined))?.peers.find((p) => p.publicKey === publicKey)
    return /no handshake in \d+ attempts/.test(peer?.reason ?? '')
  }, timeoutMs)
}

/** Let every client handshake with the hub once (as spokes of a running hub have), so the hub knows their endpoints. */
export async function registerWithHub (lab: Lab): Promise<void> {
  await Promise.all(Object.keys(lab.clients).map(async (c) => await lab.ping(c, lab.hub.tunnelIp, { count: 1, timeoutS: 2 })))
}
