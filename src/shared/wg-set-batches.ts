import { formatEndpoint, type Endpoint } from './ip.js'
import type { WgDevice } from './wg-dump.js'

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

/**
 * Largest argument list of one `wg set`, in bytes as execve counts them (each string, its NUL, its pointer).
 * Linux refuses an argument list plus environment over ARG_MAX (a quarter of the stack limit: 2 MiB with the usual
 * 8 MiB stack) with E2BIG; one `wg set` for 15,000 peers is 1.96 MB and already fails. 256 KiB leaves room for any
 * environment and smaller stacks, and is still about 2,000 peers a call.
 */
export const WG_SET_MAX_ARG_BYTES = 256 * 1024

/** One `wg set` call: its arguments and the changes it carries. */
export interface WgSetBatch {
  args: string[]
  changes: PeerChange[]
}

/** The arguments of one change (after `set <iface>`); a change's arguments never split across calls. */
export function changeArgs (c: PeerChange): string[] {
  const args: string[] = []
  if (c.kick === true && c.remove !== true) args.push('peer', c.publicKey, 'persistent-keepalive', 'off')
  args.push('peer', c.publicKey)
  if (c.remove === true) { args.push('remove'); return args }
  if (c.endpoint !== undefined) args.push('endpoint', formatEndpoint(c.endpoint))
  if (c.persistentKeepalive !== undefined) args.push('persistent-keepalive', c.persistentKeepalive === 0 ? 'off' : String(c.persistentKeepalive))
  if (c.allowedIps !== undefined) args.push('allowed-ips', c.allowedIps.join(','))
  return args
}

/** Build the argument list of one `wg set` call that applies all `changes` (unbounded: see `planWgSetBatches`). */
export function wgSetArgs (iface: string, changes: PeerChange[]): string[] {
  return ['set', iface, ...changes.flatMap(changeArgs)]
}

/** Bytes execve counts for `args`: each string, its terminating NUL and its pointer. */
export function argBytes (args: string[]): number {
  let n = 0
  for (const a of args) n += Buffer.byteLength(a) + 1 + 8
  return n
}

/**
 * Does `c` take routes away from its peer? A removal does; so does a new allowed-IP list missing any prefix the
 * peer has now (`current`), or, when the current state is not known, an empty list.
 */
export function losesRoutes (c: PeerChange, current?: ReadonlyMap<string, readonly string[]>): boolean {
  if (c.remove === true) return true
  if (c.allowedIps === undefined) return false
  const now = current?.get(c.publicKey)
  if (now === undefined) return c.allowedIps.length === 0
  return now.some((p) => !(c.allowedIps as string[]).includes(p))
}

/**
 * Split `changes` into `wg set` calls of at most `maxArgBytes` each. Changes that take routes away from a peer go
 * first, in calls of their own, so a prefix moving from one peer to another is released before it is claimed, and
 * a failing later call never leaves a route on a peer that should have lost it. Order is otherwise kept.
 */
export function planWgSetBatches (iface: string, changes: PeerChange[], opts: { maxArgBytes?: number, current?: WgDevice } = {}): WgSetBatch[] {
  const max = opts.maxArgBytes ?? WG_SET_MAX_ARG_BYTES
  const current = opts.current === undefined ? undefined : new Map(opts.current.peers.map((p) => [p.publicKey, p.allowedIps]))
  const all = units(changes)
  // A re-created peer (removed and added again) loses routes only if its new allowed IPs drop some.
  const loses = (u: PeerChange[]): boolean => losesRoutes(u[u.length - 1] as PeerChange, current)
  return [...pack(iface, all.filter(loses), max), ...pack(iface, all.filter((u) => !loses(u)), max)]
}

/**
 * Changes that must go in one call: a peer removed and then added again in the same list (a fresh handshake that
 * keeps its routes) is one unit, so no call boundary ever leaves it removed.
 */
function units (changes: PeerChange[]): PeerChange[][] {
  const all: PeerChange[][] = []
  const removed = new Map<string, PeerChange[]>()
  for (const c of changes) {
    const unit = removed.get(c.publicKey)
    if (unit !== undefined && c.remove !== true) {
      unit.push(c)
      removed.delete(c.publicKey)
      continue
    }
    const fresh = [c]
    all.push(fresh)
    if (c.remove === true) removed.set(c.publicKey, fresh)
  }
  return all
}

function pack (iface: string, units: PeerChange[][], max: number): WgSetBatch[] {
  const batches: WgSetBatch[] = []
  const head = ['set', iface]
  const headBytes = argBytes(head)
  let batch: WgSetBatch | undefined
  let bytes = 0
  for (const unit of units) {
    const args = unit.flatMap(changeArgs)
    const n = argBytes(args)
    // A unit never splits; one bigger than the budget on its own (64 allowed IPs are about 3 KB) goes alone.
    if (batch === undefined || bytes + n > max) {
      batch = { args: [...head], changes: [] }
      batches.push(batch)
      bytes = headBytes
    }
    batch.args.push(...args)
    batch.changes.push(...unit)
    bytes += n
  }
  return batches
}
