import { execa, type ExecaError } from 'execa'
import { WgError, messageOf, quote } from './errors.js'
import type { Logger } from './log.js'
import { parseWgDumpAsync, shortKey, type WgDevice } from './wg-dump.js'
import { WgDumpReader } from './wg-dump-reader.js'
import { planWgSetBatches, type PeerChange } from './wg-set-batches.js'
import { addconfText } from './wg-addconf.js'
import { wgRunner } from './wg-runner.js'

export { wgSetArgs, type PeerChange } from './wg-set-batches.js'

export interface WgSetOptions {
  signal?: AbortSignal
  /**
   * The interface as last read: tells which changes take routes away from a peer, so those go first. Without it,
   * removals and emptied allowed-IP lists go first.
   */
  current?: WgDevice
}

/** The narrow control surface wgnat needs from WireGuard, so tests and benchmarks can inject a fake device. */
export interface WgControl {
  show (iface: string, opts?: { signal?: AbortSignal }): Promise<WgDevice>
  /**
   * Apply `changes`. May apply them in several calls; when some fail the others still apply (nothing is undone)
   * and a WgSetError names the changes that did not.
   */
  set (iface: string, changes: PeerChange[], opts?: WgSetOptions): Promise<void>
  /**
   * Optional: make a small change ready ahead of the instant it must happen (a `wg addconf` already running, waiting
   * on its stdin), so that `commit()` applies it without starting a process. Only field changes (no removal, kick or
   * emptied allowed IPs).
   */
  stage? (iface: string, changes: PeerChange[]): StagedSet
}

/** A change made ready by `WgControl.stage`: apply it now, or drop it. */
export interface StagedSet {
  commit (): Promise<void>
  cancel (): void
}

/** A staged change not committed within this long is dropped (the `wg` waiting for it is stopped). */
export const WG_STAGE_MAX_MS = 15_000

/** Some `wg set` calls of one `set()` failed; the changes in the other calls were applied. */
export class WgSetError extends WgError {
  constructor (
    message: string,
    /** Each failed call: the keys of the peers it would have changed and why it failed. */
    readonly failures: Array<{ publicKeys: string[], message: string }>,
    exitCode?: number
  ) { super(message, exitCode) }

  /** Keys of every peer whose change may not have been applied. */
  get failedKeys (): Set<string> {
    return new Set(this.failures.flatMap((f) => f.publicKeys))
  }
}

export interface WgCliInit {
  /** The `wg` binary. @default 'wg' */
  wgPath?: string
  /** Upper bound for one `wg` call. @default WG_TIMEOUT_MS (5000) */
  timeoutMs?: number
  /** Largest argument list of one `wg set`, bytes. @default WG_SET_MAX_ARG_BYTES */
  maxArgBytes?: number
  /**
   * Parse only the peer lines that changed since the previous `show` of the same interface (WgDumpReader): unchanged
   * peers come back as the same frozen objects. For a reader that reads often and never changes what it gets (the registry,
   * and the client with many peers). @default false
   */
  reuseUnchangedPeers?: boolean
  /** Run `wg` through one kept shell (`wgRunner`'s `persistent`): for daemons. @default false */
  persistent?: boolean
}

export interface WgCliComponents {
  /** One line per failing `wg set` call (the same failure at most once a minute). */
  logger?: Logger
  /** Run `wg` with these arguments and return its stdout. @default execa of `wgPath` */
  run?: (args: string[], opts: { signal?: AbortSignal }) => Promise<string>
  nowMs?: () => number
}

/** The same failure of a `wg set` call is logged at most this often (a tick retries it every few seconds). */
export const WG_SET_FAILURE_LOG_MS = 60_000

/** WireGuard through wireguard-tools' `wg`: works with kernel WireGuard and userspace implementations alike. */
export function wgCli (init: WgCliInit = {}, components: WgCliComponents = {}): WgControl {
  const wgPath = init.wgPath ?? 'wg'
  const nowMs = components.nowMs ?? Date.now
  // The client runs `wg show` every few seconds for as long as it runs (issues 16 and 18): see wgRunner.
  const exec = components.run ?? wgRunner({ wgPath, timeoutMs: init.timeoutMs, persistent: init.persistent })
  const logged = new Map<string, number>()
  const readers = new Map<string, WgDumpReader>()

  async function run (iface: string, args: string[], signal?: AbortSignal): Promise<string> {
    try {
      return await exec(args, { signal })
    } catch (err) {
      throw explain(err as ExecaError, iface, wgPath)
    }
  }

  function logFailure (line: string): void {
    const now = nowMs()
    const last = logged.get(line)
    if (last !== undefined && now - last < WG_SET_FAILURE_LOG_MS) return
    if (logged.size >= 256) logged.clear()
    logged.set(line, now)
    components.logger?.warn(line)
  }

  return {
    // Only with the real `wg` (an injected runner has no process to keep waiting).
    ...(components.run !== undefined
      ? {}
      : {
          stage (iface: string, changes: PeerChange[]): StagedSet {
            const text = addconfText(changes)
            const sub = execa(wgPath, ['addconf', iface, '/dev/stdin'], { timeout: WG_STAGE_MAX_MS, stdin: 'pipe' })
            const done = sub.then(() => {}, (err: unknown) => { throw explain(err as ExecaError, iface, wgPath) })
            done.catch(() => {})
            sub.stdin?.on('error', () => {})
            return {
              async commit () {
                sub.stdin?.end(text)
                await done
              },
              cancel () { sub.kill() }
            }
          }
        }),
    async show (iface, opts = {}) {
      // Parsed in slices: a big interface's dump never holds up the event loop (the registry serves requests meanwhile).
      const text = await run(iface, ['show', iface, 'dump'], opts.signal)
      if (init.reuseUnchangedPeers !== true) return await parseWgDumpAsync(text)
      let reader = readers.get(iface)
      if (reader === undefined) readers.set(iface, reader = new WgDumpReader())
      return await reader.parse(text)
    },
    async set (iface, changes, opts = {}) {
      if (changes.length === 0) return
      const batches = planWgSetBatches(iface, changes, { maxArgBytes: init.maxArgBytes, current: opts.current })
      const failures: Array<{ publicKeys: string[], message: string, exitCode: number }> = []
      for (const [i, batch] of batches.entries()) {
        try {
          await run(iface, batch.args, opts.signal)
        } catch (err) {
          if (opts.signal?.aborted === true) throw err
          const keys = batch.changes.map((c) => c.publicKey)
          const error = err instanceof WgError ? err : new WgError(messageOf(err))
          failures.push({ publicKeys: keys, message: error.message, exitCode: error.exitCode })
          // One call of many: say which, without its keys (public, but a line per peer would not be one line).
          const what = batches.length === 1 ? `${keys.length} change(s)` : `call ${i + 1} of ${batches.length} (${keys.length} change(s), peers ${shortKey(keys[0] ?? '')}..${shortKey(keys[keys.length - 1] ?? '')})`
          logFailure(`wg set on ${quote(iface)}: ${what} not applied: ${error.message}`)
        }
      }
      if (failures.length === 0) return
      const first = failures[0] as { message: string, exitCode: number }
      const count = failures.reduce((n, f) => n + f.publicKeys.length, 0)
      if (batches.length === 1) throw new WgSetError(first.message, failures, first.exitCode)
      throw new WgSetError(`${failures.length} of ${batches.length} wg set calls on ${quote(iface)} failed (${count} change(s) not applied): ${first.message}`, failures, first.exitCode)
    }
  }
}

/** Turn a failed `wg` run into one line a user can act on. Never includes stdout (it may hold keys). */
export function explain (err: ExecaError, iface: string, wgPath = 'wg'): WgError {
  if (err instanceof WgError) return err
  if (err.isCanceled === true) return new WgError('wg: cancelled')
  const code = (err as { code?: string }).code
  if (code === 'ENOENT') return new WgError(`wg not found: is wireguard-tools installed? (tried ${quote(wgPath)})`, 69)
  if (code === 'E2BIG') return new WgError(`wg on interface ${quote(iface)}: argument list too long (E2BIG)`)
  if (err.timedOut === true) return new WgError(`wg on interface ${quote(iface)} timed out`)
  const stderr = String(err.stderr ?? '').trim()
  // "Protocol not supported": no userspace socket for that name, and a kernel without WireGuard to ask instead.
  if (/No such device|does not exist|Unable to access interface: (No such|Protocol not supported)/i.test(stderr)) return new WgError(`interface ${quote(iface)} not found or not a WireGuard interface`, 69)
  if (/Operation not permitted|Permission denied/i.test(stderr)) return new WgError(`not permitted to control WireGuard interface ${quote(iface)}: run as root or with CAP_NET_ADMIN`, 77)
  const line = stderr.split('\n')[0] ?? ''
  return new WgError(`wg failed on interface ${quote(iface)}: ${line === '' ? `exit code ${String(err.exitCode ?? '?')}` : quote(line)}`)
}
