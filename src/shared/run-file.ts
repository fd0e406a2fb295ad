import { execFile } from 'node:child_process'

/** Largest stdout a command may print: a `wg show dump` of 60,000 peers is about 10 MB. */
export const RUN_FILE_MAX_BUFFER = 64 * 1024 * 1024

/** Why a command failed, in the fields `explain()` in wg.ts reads (the names execa uses for them). */
export class RunFileError extends Error {
  constructor (
    message: string,
    /** errno name when it could not start (ENOENT, E2BIG), else undefined. */
    readonly code: string | undefined,
    readonly exitCode: number | undefined,
    readonly stderr: string,
    readonly timedOut: boolean,
    readonly isCanceled: boolean
  ) { super(message) }
}

/**
 * Run a program and resolve with its stdout, through node's own `execFile`. For a command a daemon runs every few
 * seconds for as long as it runs (`wg show`): execa's per-call machinery (stream wrappers, signal handlers, abort
 * listeners) costs about as much CPU as starting the process itself, and this costs half as much. Rejects with a
 * {@link RunFileError}: not started (code), non-zero exit (exitCode, stderr), timed out, or cancelled by `signal`.
 */
export async function runFile (file: string, args: readonly string[], opts: { timeoutMs: number, signal?: AbortSignal }): Promise<string> {
  return await new Promise((resolve, reject) => {
    execFile(file, args, { timeout: opts.timeoutMs, signal: opts.signal, maxBuffer: RUN_FILE_MAX_BUFFER, encoding: 'utf8', killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      if (err === null) { resolve(stdout); return }
      const e = err as NodeJS.ErrnoException & { code?: string | number, killed?: boolean, signal?: string }
      const canceled = opts.signal?.aborted === true || e.name === 'AbortError'
      const timedOut = !canceled && e.killed === true && e.signal === 'SIGKILL'
      const exitCode = typeof e.code === 'number' ? e.code : undefined
      const code = typeof e.code === 'string' && e.code !== 'ABORT_ERR' ? e.code : undefined
      reject(new RunFileError(`${file} failed: ${e.message.split('\n')[0] ?? ''}`, code, exitCode, String(stderr ?? ''), timedOut, canceled))
    })
  })
}
