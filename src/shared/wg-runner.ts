import { execa } from 'execa'
import { wgCoprocess } from './wg-coprocess.js'

/** Upper bound for one `wg` call when none is given. */
export const WG_TIMEOUT_MS = 5000

export interface WgRunnerInit {
  /** The `wg` binary (benchmarks pass `cat`). @default 'wg' */
  wgPath?: string
  /** Upper bound for one call: past it the process is killed and the call fails with `timedOut`. @default WG_TIMEOUT_MS */
  timeoutMs?: number
  /**
   * Keep one shell and run each `wg` through it (`wg-coprocess.ts`): for daemons, which call `wg` for as long as they
   * run. @default false (each call starts `wg` itself)
   */
  persistent?: boolean
}

/** Run `wg` with these arguments and resolve to its stdout; rejects with execa's error (`explain()` in wg.ts words it). */
export type WgRun = (args: string[], opts: { signal?: AbortSignal }) => Promise<string>

/**
 * The one way wgnat starts `wg` for a `show` or `set` (issue 16: a client with 1,000 peers starts one every read).
 * Per call, only what a `wg` call needs:
 * - no stdin (`'ignore'`: /dev/null): `wg show` and `wg set` never read it, and execa's default (a pipe) costs a
 *   socket, a stream and a wait per call;
 * - no exit handler (`cleanup`: a `wg` call ends on its own within its timeout; issue 18);
 * - abort listeners only when there is a signal;
 * - stdout kept whole (no final newline stripped: the dump parser wants its last line ended);
 * - stderr buffered, for the error (execa's default).
 */
export function wgRunner (init: WgRunnerInit = {}): WgRun {
  const wgPath = init.wgPath ?? 'wg'
  const timeout = init.timeoutMs ?? WG_TIMEOUT_MS
  if (init.persistent === true) return wgCoprocess({ wgPath, timeoutMs: timeout })
  return async (args, opts) => {
    const result = await execa(wgPath, args, {
      timeout,
      ...(opts.signal === undefined ? {} : { cancelSignal: opts.signal }),
      stdin: 'ignore',
      cleanup: false,
      stripFinalNewline: false
    })
    return result.stdout
  }
}
