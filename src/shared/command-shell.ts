import { spawn, type ChildProcessByStdio } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import type { Readable, Writable } from 'node:stream'
import { RUN_FILE_MAX_BUFFER, RunFileError } from './run-file.js'

/**
 * A long-lived `/bin/sh` that runs commands one at a time and hands back their stdout. Starting a process from node
 * costs about 10 ms of CPU (pipes, streams, fork of a large process); a small shell starts one for a fraction of
 * that. For a command a daemon runs every few seconds for as long as it runs (`wg show dump`), that is most of the
 * cost of a read. Only a command's stdout and success come back: on a non-zero exit `run` resolves `undefined` and
 * the caller runs it the ordinary way to learn why (for read-only commands only). Unreferenced: it never keeps the
 * process alive, and it exits when the process does (end of its stdin).
 */
export class CommandShell {
  private child: ChildProcessByStdio<Writable, Readable, null> | undefined
  private readonly mark = randomBytes(12).toString('hex')
  private queue: Promise<unknown> = Promise.resolve()
  private broken = false

  constructor (private readonly init: { timeoutMs: number, shell?: string }) {}

  /** stdout of `file args`, or undefined when it exited non-zero or the shell could not run it. */
  async run (file: string, args: readonly string[], signal?: AbortSignal): Promise<string | undefined> {
    const turn = this.queue.then(async () => await this.once(file, args, signal))
    this.queue = turn.catch(() => {})
    return await turn
  }

  /** Stop the shell (a later `run` starts a new one). */
  close (): void {
    this.child?.kill('SIGKILL')
    this.child = undefined
  }

  private start (): ChildProcessByStdio<Writable, Readable, null> | undefined {
    if (this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null) return this.child
    if (this.broken) return undefined
    const child = spawn(this.init.shell ?? '/bin/sh', [], { stdio: ['pipe', 'pipe', 'ignore'] })
    child.on('error', () => { this.broken = true; if (this.child === child) this.child = undefined })
    child.on('exit', () => { if (this.child === child) this.child = undefined })
    child.stdin.on('error', () => {})
    child.stdout.setEncoding('utf8')
    child.unref()
    unrefStream(child.stdin)
    unrefStream(child.stdout)
    this.child = child
    return child
  }

  private async once (file: string, args: readonly string[], signal?: AbortSignal): Promise<string | undefined> {
    if (signal?.aborted === true) throw new RunFileError(`${file} failed: cancelled`, undefined, undefined, '', false, true)
    const child = this.start()
    if (child === undefined) return undefined
    const end = `\n${this.mark} `
    return await new Promise<string | undefined>((resolve, reject) => {
      const chunks: string[] = []
      let size = 0
      let tail = ''
      const done = (): void => {
        clearTimeout(timer)
        child.stdout.off('data', onData)
        child.off('exit', onExit)
        child.off('error', onExit)
        signal?.removeEventListener('abort', onAbort)
      }
      const fail = (err: RunFileError | undefined): void => {
        done()
        this.close()
        if (err === undefined) resolve(undefined); else reject(err)
      }
      const onData = (chunk: string): void => {
        chunks.push(chunk)
        size += chunk.length
        if (size > RUN_FILE_MAX_BUFFER) { fail(undefined); return }
        // The end mark, then the exit status, closes the output: look for it at the very end only.
        tail = (tail + chunk).slice(-(end.length + 8))
        const at = tail.lastIndexOf(end)
        if (at < 0 || !tail.endsWith('\n') || tail.length - at > end.length + 4) return
        done()
        const status = Number(tail.slice(at + end.length, -1))
        resolve(status === 0 ? chunks.join('').slice(0, size - (tail.length - at)) : undefined)
      }
      const onExit = (): void => { fail(undefined) }
      const onAbort = (): void => { fail(new RunFileError(`${file} failed: cancelled`, undefined, undefined, '', false, true)) }
      const timer = setTimeout(() => { fail(new RunFileError(`${file} failed: timed out`, undefined, undefined, '', true, false)) }, this.init.timeoutMs)
      child.stdout.on('data', onData)
      child.once('exit', onExit)
      child.once('error', onExit)
      signal?.addEventListener('abort', onAbort, { once: true })
      child.stdin.write(`${[file, ...args].map(shellQuote).join(' ')} </dev/null; printf '\\n%s %d\\n' ${this.mark} $?\n`)
    })
  }
}

/** One word for sh, whatever it holds. */
export function shellQuote (word: string): string {
  return `'${word.replace(/'/g, "'\\''")}'`
}

function unrefStream (s: unknown): void {
  (s as { unref?: () => void }).unref?.()
}
