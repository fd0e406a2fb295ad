import { spawn as spawnChild, spawnSync, type ChildProcess } from 'node:child_process'
import { closeSync, openSync } from 'node:fs'
import { execa, type ResultPromise } from 'execa'
import { quote } from '../../src/shared/errors.js'
import { LabError } from './lab-error.js'
import { DEFAULT_EXEC_TIMEOUT_MS } from './timings.js'
import type { ExecOptions, ExecResult } from './types.js'

/** The lab's one adapter for running programs (execa and child_process are imported here only). */

const SPAWN_OPTIONS = { reject: false, all: true, stdin: 'ignore' } as const

/** A process started by `lab.spawn`: an execa subprocess whose promise never rejects. */
export type SpawnedProcess = ResultPromise<typeof SPAWN_OPTIONS & { env?: Record<string, string> }>

const STDERR_TAIL_CHARS = 300

/** Run a program. Errors quote the command and the end of stderr, never stdout (it may hold a key). */
export async function run (argv: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const [file, ...args] = argv
  if (file === undefined) throw new LabError('run: empty command')
  const result = await execa(file, args, {
    reject: false,
    timeout: opts.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS,
    env: opts.env,
    ...(opts.input === undefined ? { stdin: 'ignore' as const } : { input: opts.input })
  })
  const stdout = typeof result.stdout === 'string' ? result.stdout : ''
  const stderr = typeof result.stderr === 'string' ? result.stderr : ''
  const exitCode = typeof result.exitCode === 'number' ? result.exitCode : -1
  if (result.failed && opts.reject !== false) {
    const why = result.timedOut
      ? `timed out after ${opts.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS} ms`
      : result.signal !== undefined
        ? `killed by ${result.signal}`
        : exitCode === -1 ? result.shortMessage : `exit code ${exitCode}`
    const tail = stderr.trim().slice(-STDERR_TAIL_CHARS)
    throw new LabError(`${describeArgv(argv)} failed: ${why}${tail === '' ? '' : `: ${quote(tail)}`}`)
  }
  return { exitCode, stdout, stderr }
}

/** `ip netns exec NS argv...` */
export function inNs (ns: string, argv: readonly string[]): string[] {
  return ['ip', 'netns', 'exec', ns, ...argv]
}

/** Start a long-running program; its promise never rejects and buffers stdout, stderr and both interleaved. */
export function spawnBuffered (argv: readonly string[], env?: Record<string, string>): SpawnedProcess {
  const [file, ...args] = argv
  if (file === undefined) throw new LabError('spawn: empty command')
  const options: typeof SPAWN_OPTIONS & { env?: Record<string, string> } = { ...SPAWN_OPTIONS, env }
  return execa(file, args, options)
}

/**
 * Start a daemon in its own process group with output to a log file. Unreferenced, so it never keeps
 * this process alive: the exit hooks or `down` stop it.
 */
export function spawnDaemon (argv: readonly string[], logPath: string, env: Record<string, string>): ChildProcess {
  const [file, ...args] = argv
  if (file === undefined) throw new LabError('spawn: empty command')
  const logFd = openSync(logPath, 'a', 0o600)
  try {
    const child = spawnChild(file, args, {
      detached: true,
      stdio: ['ignore', logFd, logFd],
      env: { ...process.env, ...env }
    })
    child.unref()
    return child
  } finally {
    closeSync(logFd)
  }
}

/** Synchronous run for exit hooks, where nothing asynchronous can happen. Never throws. */
export function runSync (argv: readonly string[]): { exitCode: number, stdout: string } {
  const [file, ...args] = argv
  if (file === undefined) return { exitCode: -1, stdout: '' }
  const result = spawnSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: DEFAULT_EXEC_TIMEOUT_MS })
  return { exitCode: result.status ?? -1, stdout: result.stdout ?? '' }
}

const ARGV_QUOTE_CHARS = 200

/** A command for an error message: quoted, on one line, bounded. */
export function describeArgv (argv: readonly string[]): string {
  const text = argv.join(' ').replace(/[\r\n\t]/g, ' ')
  return `'${text.length > ARGV_QUOTE_CHARS ? text.slice(0, ARGV_QUOTE_CHARS - 3) + '...' : text}'`
}
