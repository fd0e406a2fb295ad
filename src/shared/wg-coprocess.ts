import { execa, type ResultPromise } from 'execa'
import type { Readable, Writable } from 'node:stream'
import type { WgRun } from './wg-runner.js'

/** How a daemon runs `wg` through its kept shell. */
export interface WgCoprocessInit {
  /** The `wg` binary (benchmarks and tests pass `cat` or a script). */
  wgPath: string
  /** Upper bound for one call, from when the shell is given it. */
  timeoutMs: number
  /** The shell. @default '/bin/sh' */
  shellPath?: string
}

/** How a call failed, in the fields `explain()` (wg.ts) reads from an execa error. */
export class WgCallError extends Error {
  readonly exitCode?: number
  readonly stderr: string
  readonly timedOut: boolean
  readonly isCanceled: boolean
  readonly code?: string

  constructor (message: string, fields: { exitCode?: number, stderr?: string, timedOut?: boolean, isCanceled?: boolean, code?: string }) {
    super(message)
    this.exitCode = fields.exitCode
    this.stderr = fields.stderr ?? ''
    this.timedOut = fields.timedOut === true
    this.isCanceled = fields.isCanceled === true
    this.code = fields.code
  }
}

/** POSIX single quoting: the shell reads everything between quotes literally. */
export function shellQuote (arg: string): string {
  return `'${arg.replaceAll("'", "'\\''")}'`
}

/** The end line's mark; `wg` prints keys, addresses and numbers, never this. */
const MARK = '@@wgnat-wg-end'
/** A timeout that fires this late means the event loop itself was held (see `next()`). */
const LOOP_HELD_MS = 250
/** Exit status of a shell that could not run the command (POSIX: 127 not found, 126 not executable). */
const NOT_FOUND = 127

interface Call {
  command: string
  resolve: (stdout: string) => void
  reject: (err: Error) => void
  signal?: AbortSignal
}

/**
 * What a call's stdout or stderr has brought so far: its chunks as read, joined and decoded once at the end (less
 * garbage than decoding each chunk and joining strings), and its last characters.
 */
interface Collected {
  chunks: Buffer[]
  bytes: number
  tail: string
  done: boolean
}

interface Shell {
  sub: ResultPromise
  stdin: Writable
  out: Collected
  err: Collected
  dead: boolean
}

const collected = (): Collected => ({ chunks: [], bytes: 0, tail: '', done: false })
/** The end lines: the last thing the shell writes for a call, so only the output's last characters are searched. */
const OUT_END = new RegExp(`\n${MARK} (\\d+)\n$`)
const ERR_END = `\n${MARK}\n`
const outEnded = (tail: string): boolean => OUT_END.test(tail)
const errEnded = (tail: string): boolean => tail.endsWith(ERR_END)
/** Enough of the end of the output to hold either end line whole (ASCII: as many bytes as characters). */
const TAIL_CHARS = MARK.length + 16

export interface WgCoprocess extends WgRun {
  /** End the shell (it exits once its stdin closes). Later calls start a new one. */
  close: () => void
}

/**
 * `wg` calls of a long-running daemon through one `/bin/sh` it keeps (started through execa): each call forks that
 * small shell, not the daemon. Forking a Node process costs in proportion to its memory (issue 16: 10–13 ms of CPU per
 * call from a client holding 1,000 peers, against 1.5 ms through the shell), and a daemon calls `wg` every few seconds
 * for as long as it runs.
 *
 * - One call at a time, in the order asked.
 * - Each argument goes to the shell single-quoted, so nothing in it is ever read as shell syntax.
 * - `wg` gets /dev/null as stdin (the shell's stdin carries the commands).
 * - After `wg` exits the shell prints an end line with its exit status on stdout and an end line on stderr; the call
 *   resolves to stdout whole (its final newline kept) and fails with stderr, as a call through execa does.
 * - The shell ignores SIGINT, SIGTERM and SIGHUP (a Ctrl-C or a service stop reaches the whole process group or
 *   cgroup): a daemon's last calls on its way out still run. It ends when its stdin closes (this process exits or
 *   `close()`).
 * - A call that times out or is aborted kills the shell's whole process group (the shell and that `wg`) and fails like
 *   execa's (`timedOut` / `isCanceled`); so does a shell that died. The next call starts a new shell. An answer
 *   already in the pipe when the timeout fires wins, and a deadline that passed while this process's event loop was
 *   held (a start on a starved machine) gets one more timeout.
 * - A call's timeout runs from when the shell is given it, not while it waits its turn.
 */
export function wgCoprocess (init: WgCoprocessInit): WgCoprocess {
  const shellPath = init.shellPath ?? '/bin/sh'
  const queue: Call[] = []
  let shell: Shell | undefined
  let current: { call: Call, timer: NodeJS.Timeout, onAbort?: () => void } | undefined

  function start (): Shell {
    const sub = execa(shellPath, [], {
      stdin: 'pipe',
      stdout: 'pipe',
      stderr: 'pipe',
      buffer: false,
      cleanup: false,
      // Its own process group: killed as a whole on a timeout, and out of the terminal's Ctrl-C.
      detached: true
    })
    const s: Shell = { sub, stdin: sub.stdin as Writable, out: collected(), err: collected(), dead: false }
    sub.catch(() => {}) // its end is seen through 'exit' below; a killed shell rejects here
    sub.unref()
    for (const stream of [sub.stdin, sub.stdout, sub.stderr]) (stream as { unref?: () => void } | null)?.unref?.()
    s.stdin.on('error', () => {}) // a dead shell's stdin: the call fails through 'exit'
    ;(sub.stdout as Readable).on('data', (chunk: Buffer) => { collect(s.out, chunk, outEnded); settle(s) })
    ;(sub.stderr as Readable).on('data', (chunk: Buffer) => { collect(s.err, chunk, errEnded); settle(s) })
    sub.on('error', (err: NodeJS.ErrnoException) => { died(s, err.code) })
    sub.on('exit', () => { died(s) })
    s.stdin.write("trap '' INT TERM HUP\n")
    return s
  }

  /** `s` takes no more calls: the next one starts a new shell. */
  function forget (s: Shell): void {
    s.dead = true
    if (shell === s) shell = undefined
  }

  /** The shell ended (or never started): the call in flight fails. */
  function died (s: Shell, code?: string): void {
    if (s.dead) return
    forget(s)
    if (current !== undefined) {
      const why = code === 'ENOENT' ? `${shellPath} not found` : 'the shell running wg ended'
      finish(new WgCallError(`wg: ${why}`, { code }))
    }
  }

  function kill (s: Shell): void {
    forget(s)
    const pid = s.sub.pid
    try {
      if (pid !== undefined) process.kill(-pid, 'SIGKILL')
    } catch {
      s.sub.kill('SIGKILL')
    }
  }

  function collect (c: Collected, chunk: Buffer, ended: (tail: string) => boolean): void {
    c.chunks.push(chunk)
    c.bytes += chunk.length
    const last = chunk.subarray(-TAIL_CHARS).toString('latin1')
    c.tail = chunk.length >= TAIL_CHARS ? last : (c.tail + last).slice(-TAIL_CHARS)
    c.done = ended(c.tail)
  }

  /** All of `c` but its last `endBytes` (the end line), decoded. */
  const text = (c: Collected, endBytes: number): string =>
    (c.chunks.length === 1 ? c.chunks[0] as Buffer : Buffer.concat(c.chunks, c.bytes)).toString('utf8', 0, c.bytes - endBytes)

  /** Resolve the call in flight once both end lines are in. */
  function settle (s: Shell): void {
    if (current === undefined || shell !== s || !s.out.done || !s.err.done) return
    const end = OUT_END.exec(s.out.tail) as RegExpExecArray
    const exitCode = Number(end[1])
    const stdout = text(s.out, end[0].length)
    const stderr = text(s.err, ERR_END.length)
    s.out = collected()
    s.err = collected()
    if (exitCode === 0) { finish(undefined, stdout); return }
    const code = exitCode === NOT_FOUND && /not found/i.test(stderr) ? 'ENOENT' : /Argument list too long/i.test(stderr) ? 'E2BIG' : undefined
    finish(new WgCallError(`wg exited with ${exitCode}`, { exitCode, stderr, code }))
  }

  function finish (err: Error | undefined, stdout = ''): void {
    const c = current
    if (c === undefined) return
    current = undefined
    clearTimeout(c.timer)
    if (c.onAbort !== undefined) c.call.signal?.removeEventListener('abort', c.onAbort)
    if (err === undefined) c.call.resolve(stdout)
    else c.call.reject(err)
    next()
  }

  function next (): void {
    if (current !== undefined) return
    const call = queue.shift()
    if (call === undefined) return
    if (call.signal?.aborted === true) { call.reject(new WgCallError('wg: cancelled', { isCanceled: true })); next(); return }
    if (shell === undefined) shell = start()
    const s = shell
    const dueAt = Date.now() + init.timeoutMs
    let graced = false
    const expired = (): void => {
      // Timers run before the loop reads its pipes: an answer may be waiting there. Read first (one I/O poll).
      setImmediate(() => {
        if (current?.call !== call) return
        // The loop itself was held past the deadline (a start on a starved machine compiling its code, say): the
        // shell had no fair chance to answer. Give it one more timeout, once.
        if (!graced && Date.now() - dueAt > LOOP_HELD_MS) {
          graced = true
          current.timer = setTimeout(expired, init.timeoutMs)
          return
        }
        kill(s)
        finish(new WgCallError(`wg timed out after ${init.timeoutMs} ms`, { timedOut: true }))
      })
    }
    const timer = setTimeout(expired, init.timeoutMs)
    current = { call, timer }
    if (call.signal !== undefined) {
      const onAbort = (): void => {
        kill(s)
        finish(new WgCallError('wg: cancelled', { isCanceled: true }))
      }
      current.onAbort = onAbort
      call.signal.addEventListener('abort', onAbort, { once: true })
    }
    if (!s.dead) s.stdin.write(call.command)
  }

  const run = (async (args: string[], opts: { signal?: AbortSignal }) => {
    if (args.some((a) => a.includes('\0'))) throw new WgCallError('wg: an argument holds a NUL byte', {})
    const command = `${[init.wgPath, ...args].map(shellQuote).join(' ')} </dev/null; printf '\\n${MARK} %d\\n' $?; printf '\\n${MARK}\\n' >&2\n`
    return await new Promise<string>((resolve, reject) => {
      queue.push({ command, resolve, reject, signal: opts.signal })
      next()
    })
  }) as WgCoprocess
  run.close = () => {
    const s = shell
    shell = undefined
    if (s !== undefined && !s.dead) s.stdin.end()
  }
  return run
}
