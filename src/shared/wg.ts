import { execFile } from 'node:child_process'
import { WgError, quote } from './errors.js'
import { formatEndpoint, type Endpoint } from './ip.js'
import { parseWgDump, type WgDevice } from './wg-dump.js'

/** One peer change, as `wg set` takes it. Fields left undefined are not touched. */
export interface PeerChange {
  publicKey: string
  remove?: boolean
  endpoint?: Endpoint
  /** Replaces the peer's allowed IPs; an empty list removes them all. */
  allowedIps?: string[]
  persistentKeepalive?: number
  /**
   * Make WireGuard send to the peer at once (a handshake or a keepalive): keepalive is switched off and on again
   * in the same call, and WireGuard sends immediately when persistent keepalive is turned on. Needs
   * `persistentKeepalive` > 0.
   */
  kick?: boolean
}

/** The narrow control surface wgnat needs from WireGuard, so tests and benchmarks can inject a fake device. */
export interface WgControl {
  show (iface: string, opts?: { signal?: AbortSignal }): Promise<WgDevice>
  set (iface: string, changes: PeerChange[], opts?: { signal?: AbortSignal }): Promise<void>
}

export interface WgCliInit {
  /** The `wg` binary. @default 'wg' */
  wgPath?: string
  /** Upper bound for one `wg` call. @default 5000 */
  timeoutMs?: number
}

/** Build the argument list of one `wg set` call that applies all `changes`. */
export function wgSetArgs (iface: string, changes: PeerChange[]): string[] {
  const args = ['set', iface]
  for (const c of changes) {
    if (c.kick === true && c.remove !== true) args.push('peer', c.publicKey, 'persistent-keepalive', 'off')
    args.push('peer', c.publicKey)
    if (c.remove === true) { args.push('remove'); continue }
    if (c.endpoint !== undefined) args.push('endpoint', formatEndpoint(c.endpoint))
    if (c.persistentKeepalive !== undefined) args.push('persistent-keepalive', c.persistentKeepalive === 0 ? 'off' : String(c.persistentKeepalive))
    if (c.allowedIps !== undefined) args.push('allowed-ips', c.allowedIps.join(','))
  }
  return args
}

/** WireGuard through wireguard-tools' `wg`: works with kernel WireGuard and userspace implementations alike. */
export function wgCli (init: WgCliInit = {}): WgControl {
  const wgPath = init.wgPath ?? 'wg'
  const timeoutMs = init.timeoutMs ?? 5000

  async function run (iface: string, args: string[], signal?: AbortSignal): Promise<string> {
    // node:child_process rather than execa: the client runs `wg` from its first milliseconds, and execa alone took
    // more start-up CPU than all the rest of the client's code (issue 16).
    return await new Promise((resolve, reject) => {
      execFile(wgPath, args, { timeout: timeoutMs, signal, maxBuffer: MAX_WG_OUTPUT_BYTES, encoding: 'utf8' }, (err, stdout, stderr) => {
        if (err === null) resolve(stdout)
        else reject(explain({ ...err, name: err.name, code: err.code, killed: err.killed, stderr }, iface, wgPath))
      })
    })
  }

  return {
    async show (iface, opts = {}) {
      return parseWgDump(await run(iface, ['show', iface, 'dump'], opts.signal))
    },
    async set (iface, changes, opts = {}) {
      if (changes.length === 0) return
      await run(iface, wgSetArgs(iface, changes), opts.signal)
    }
  }
}

/** What a failed `wg` run left to explain it (node:child_process's error, with the output). */
export interface WgRunFailure {
  name?: string
  /** Exit code, or an errno name such as ENOENT. */
  code?: number | string | null
  /** Killed by the timeout. */
  killed?: boolean
  stderr?: string
}

/** Turn a failed `wg` run into one line a user can act on. Never includes stdout (it may hold keys). */
export function explain (err: WgRunFailure, iface: string, wgPath = 'wg'): WgError {
  if (err.name === 'AbortError') return new WgError('wg: cancelled')
  if (err.code === 'ENOENT') return new WgError(`wg not found: is wireguard-tools installed? (tried ${quote(wgPath)})`, 69)
  if (err.killed === true) return new WgError(`wg on interface ${quote(iface)} timed out`)
  const stderr = String(err.stderr ?? '').trim()
  // "Protocol not supported": no userspace socket for that name, and a kernel without WireGuard to ask instead.
  if (/No such device|does not exist|Unable to access interface: (No such|Protocol not supported)/i.test(stderr)) return new WgError(`interface ${quote(iface)} not found or not a WireGuard interface`, 69)
  if (/Operation not permitted|Permission denied/i.test(stderr)) return new WgError(`not permitted to control WireGuard interface ${quote(iface)}: run as root or with CAP_NET_ADMIN`, 77)
  const line = stderr.split('\n')[0] ?? ''
  return new WgError(`wg failed on interface ${quote(iface)}: ${line === '' ? `exit code ${String(err.code)}` : quote(line)}`)
}

/** Largest `wg show dump` read: about 200 bytes a peer, so room for far more than 65,536 peers. */
const MAX_WG_OUTPUT_BYTES = 64 * 1024 * 1024
