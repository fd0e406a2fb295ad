import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { quote } from '../../src/shared/errors.js'
import { LabError } from './lab-error.js'
import { isLabId, NS_PREFIX } from './plan.js'
import type { LabHost, LabRouter, RouterKind } from './types.js'

/** One JSON file per lab listing what it created, so `down` and the stale sweep can remove it later. */

export const LAB_STATE_DIR = '/run/wgnat-lab'

export interface LabSummary {
  hub: LabHost
  clients: Record<string, LabHost>
  routers: Record<string, LabRouter & { kind: RouterKind, lanSubnet: string }>
  hubForwarding: boolean
  hubAllowedIps: 'host' | 'subnet'
}

export interface LabState {
  version: 1
  id: string
  /** The process whose exit ends the lab; null for a persistent lab (made by the CLI's `up`). */
  owner: { pid: number, startTime: string } | null
  createdAt: string
  namespaces: string[]
  wgInterfaces: string[]
  /** Processes started in the lab (informational: teardown kills whatever runs in the lab's namespaces). */
  pids: number[]
  /** Private directory for key files and daemon logs. */
  tmpDir: string
  /** Filled in once the lab is up. */
  summary?: LabSummary
}

export function statePath (id: string): string {
  return join(LAB_STATE_DIR, `${id}.json`)
}

export function labTmpDir (id: string): string {
  return join(LAB_STATE_DIR, id)
}

/** Write atomically (temp file, rename), synchronously so exit hooks and concurrent steps see a whole file. */
export function writeState (state: LabState): void {
  mkdirSync(LAB_STATE_DIR, { recursive: true, mode: 0o700 })
  const path = statePath(state.id)
  const tmp = `${path}.${process.pid}.tmp`
  writeFileSync(tmp, JSON.stringify(state, null, 2) + '\n', { mode: 0o600 })
  renameSync(tmp, path)
}

export function removeState (id: string): void {
  rmSync(statePath(id), { force: true })
}

/** Read and check one state file; throws LabError quoting the path when it is missing or malformed. */
export function readState (id: string): LabState {
  const path = statePath(id)
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch {
    throw new LabError(`lab ${quote(id)}: no state file ${quote(path)}`)
  }
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch {
    throw new LabError(`lab ${quote(id)}: state file ${quote(path)} is not JSON`)
  }
  return checkState(data, id, path)
}

/** Ids of every lab with a state file. */
export function listStateIds (): string[] {
  let names: string[]
  try {
    names = readdirSync(LAB_STATE_DIR)
  } catch {
    return []
  }
  return names.filter(n => n.endsWith('.json')).map(n => n.slice(0, -'.json'.length)).filter(isLabId).sort()
}

/**
 * Validate what came from disk. Names must carry this lab's id so that a damaged or forged file can
 * never make teardown delete someone else's namespace or socket.
 */
function checkState (data: unknown, id: string, path: string): LabState {
  const bad = (why: string): never => { throw new LabError(`lab ${quote(id)}: state file ${quote(path)}: ${why}`) }
  if (typeof data !== 'object' || data === null) return bad('not an object')
  const s = data as Record<string, unknown>
  if (s.version !== 1) bad(`unknown version ${quote(s.version)}`)
  if (s.id !== id) bad(`id ${quote(s.id)} does not match the file name`)
  const strings = (key: string, prefix: string): string[] => {
    const v = s[key]
    if (!Array.isArray(v) || !v.every(x => typeof x === 'string' && x.startsWith(prefix) && !x.includes('/'))) {
      return bad(`${key} must be a list of names starting with ${quote(prefix)}`)
    }
    return v as string[]
  }
  const namespaces = strings('namespaces', `${NS_PREFIX}${id}-`)
  const wgInterfaces = strings('wgInterfaces', `wg${id}-`)
  const pids = Array.isArray(s.pids) && s.pids.every(p => Number.isInteger(p)) ? s.pids as number[] : bad('pids must be integers')
  if (s.tmpDir !== labTmpDir(id)) bad(`tmpDir ${quote(s.tmpDir)} is not ${quote(labTmpDir(id))}`)
  const owner = s.owner
  if (owner !== null) {
    const o = owner as Record<string, unknown> | undefined
    if (typeof o !== 'object' || !Number.isInteger(o.pid) || typeof o.startTime !== 'string') bad('owner must be null or { pid, startTime }')
  }
  return {
    version: 1,
    id,
    owner: owner as LabState['owner'],
    createdAt: typeof s.createdAt === 'string' ? s.createdAt : '',
    namespaces,
    wgInterfaces,
    pids,
    tmpDir: labTmpDir(id),
    summary: typeof s.summary === 'object' && s.summary !== null ? s.summary as LabSummary : undefined
  }
}
