import { messageOf, quote } from '../../src/shared/errors.js'
import { run } from './command.js'
import { LabError } from './lab-error.js'
import { labTmpDir, listStateIds, readState, type LabState } from './state-file.js'
import { parseNetnsList, teardown } from './teardown.js'
import { NS_PREFIX } from './plan.js'
import { ownerAlive } from './process-info.js'

/** Removing labs from their state files: by id, the stale ones (owner dead), or all. */

export type LabStatus = 'running' | 'stale' | 'persistent'

export function labStatus (state: LabState): LabStatus {
  if (state.owner === null) return 'persistent'
  return ownerAlive(state.owner) ? 'running' : 'stale'
}

export interface DownReport {
  removed: string[]
  problems: string[]
}

export async function downLab (id: string): Promise<DownReport> {
  const state = readState(id)
  const problems = await teardown(state)
  return { removed: problems.length === 0 ? [id] : [], problems }
}

/** Labs whose owner process is gone (a crashed or killed test run). Persistent labs are kept. */
export async function sweepStaleLabs (): Promise<DownReport> {
  const report: DownReport = { removed: [], problems: [] }
  for (const id of listStateIds()) {
    let state: LabState
    try {
      state = readState(id)
    } catch (err) {
      report.problems.push(messageOf(err))
      continue
    }
    if (labStatus(state) !== 'stale') continue
    const problems = await teardown(state)
    if (problems.length === 0) report.removed.push(id)
    report.problems.push(...problems)
  }
  return report
}

/**
 * Every lab with a state file, whoever owns it, then any namespace named like a lab's with no
 * state file left (for example from a run whose state directory was wiped).
 */
export async function downAll (): Promise<DownReport> {
  const report: DownReport = { removed: [], problems: [] }
  for (const id of listStateIds()) {
    try {
      const problems = await teardown(readState(id))
      if (problems.length === 0) report.removed.push(id)
      report.problems.push(...problems)
    } catch (err) {
      report.problems.push(messageOf(err))
    }
  }
  const orphans = new Map<string, string[]>()
  for (const ns of parseNetnsList((await run(['ip', 'netns', 'list'], { reject: false })).stdout)) {
    const m = new RegExp(`^${NS_PREFIX}([a-z0-9]+)-`).exec(ns)
    if (m?.[1] === undefined) continue
    orphans.set(m[1], [...(orphans.get(m[1]) ?? []), ns])
  }
  for (const [id, namespaces] of orphans) {
    const problems = await teardown({ version: 1, id, owner: null, createdAt: '', namespaces, wgInterfaces: [], pids: [], tmpDir: labTmpDir(id) })
    if (problems.length === 0) report.removed.push(`${id} (namespaces without a state file)`)
    report.problems.push(...problems)
  }
  return report
}

/** Throw when an id is already taken by a lab with a state file. */
export function assertIdFree (id: string): void {
  if (listStateIds().includes(id)) throw new LabError(`lab id ${quote(id)} is in use (state file exists); pick another or run 'down --id ${id}'`)
}
