import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { messageOf, quote } from '../../src/shared/errors.js'
import { run, runSync } from './command.js'
import { processAlive } from './process-info.js'
import { removeState, type LabState } from './state-file.js'
import { STOP_GRACE_MS, STOP_POLL_MS } from './timings.js'

/**
 * Remove everything a lab state lists. Best-effort: every step runs even when an earlier one failed;
 * problems are returned, not thrown. The state file is removed only when every namespace is gone,
 * so a failed teardown can be retried with `down`.
 */

export const WG_SOCKET_DIR = '/var/run/wireguard'

export function wgSocketPath (ifname: string): string {
  return join(WG_SOCKET_DIR, `${ifname}.sock`)
}

/** Names from `ip netns list` (lines like 'name (id: 3)'). */
export function parseNetnsList (text: string): string[] {
  return text.split('\n').map(line => line.trim().split(/\s+/)[0] ?? '').filter(name => name !== '')
}

function parsePids (text: string): number[] {
  return text.split(/\s+/).filter(t => /^\d+$/.test(t)).map(Number).filter(pid => pid !== process.pid)
}

export async function teardown (state: LabState): Promise<string[]> {
  const problems: string[] = []
  const existing = new Set(parseNetnsList((await run(['ip', 'netns', 'list'], { reject: false })).stdout))
  const namespaces = state.namespaces.filter(ns => existing.has(ns))

  // 1. Stop every process inside the lab's namespaces (wireguard-go, spawned tools, their children).
  const pidLists = await Promise.all(namespaces.map(async ns => parsePids((await run(['ip', 'netns', 'pids', ns], { reject: false })).stdout)))
  const pids = [...new Set(pidLists.flat())]
  signalAll(pids, 'SIGTERM')
  const deadline = Date.now() + STOP_GRACE_MS
  while (pids.some(processAlive) && Date.now() < deadline) await sleep(STOP_POLL_MS)
  const stubborn = pids.filter(processAlive)
  signalAll(stubborn, 'SIGKILL')

  // 2. Sockets of wireguard-go processes that could not clean up after themselves.
  removeFiles(state.wgInterfaces.map(wgSocketPath), problems)

  // 3. Namespaces: deleting one deletes its interfaces, so veth peers and bridges go too.
  const results = await Promise.all(namespaces.map(async ns => ({ ns, result: await run(['ip', 'netns', 'del', ns], { reject: false }) })))
  for (const { ns, result } of results) {
    if (result.exitCode !== 0) problems.push(`ip netns del ${quote(ns)}: ${quote(result.stderr.trim())}`)
  }

  finish(state, problems)
  return problems
}

/** The same, synchronously, for process 'exit' and signal handlers. */
export function teardownSync (state: LabState): string[] {
  const problems: string[] = []
  const existing = new Set(parseNetnsList(runSync(['ip', 'netns', 'list']).stdout))
  const namespaces = state.namespaces.filter(ns => existing.has(ns))
  const pids = [...new Set(namespaces.flatMap(ns => parsePids(runSync(['ip', 'netns', 'pids', ns]).stdout)))]
  signalAll(pids, 'SIGTERM')
  const deadline = Date.now() + STOP_GRACE_MS
  while (pids.some(processAlive) && Date.now() < deadline) sleepSync(STOP_POLL_MS)
  signalAll(pids.filter(processAlive), 'SIGKILL')
  removeFiles(state.wgInterfaces.map(wgSocketPath), problems)
  for (const ns of namespaces) {
    if (runSync(['ip', 'netns', 'del', ns]).exitCode !== 0) problems.push(`ip netns del ${quote(ns)} failed`)
  }
  finish(state, problems)
  return problems
}

function finish (state: LabState, problems: string[]): void {
  removeFiles([state.tmpDir], problems)
  if (problems.length === 0) {
    try {
      removeState(state.id)
    } catch (err) {
      problems.push(`remove state of lab ${quote(state.id)}: ${messageOf(err)}`)
    }
  }
}

function signalAll (pids: number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal)
    } catch {
      // Already gone.
    }
  }
}

function removeFiles (paths: string[], problems: string[]): void {
  for (const path of paths) {
    try {
      rmSync(path, { force: true, recursive: true })
    } catch (err) {
      problems.push(`remove ${quote(path)}: ${messageOf(err)}`)
    }
  }
}

async function sleep (ms: number): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, ms))
}

function sleepSync (ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
}
