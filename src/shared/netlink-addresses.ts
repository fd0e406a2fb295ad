/**
 * Interface addresses from rtnetlink: a dump (RTM_GETADDR, RTM_GETLINK for the names), and a subscription to
 * the kernel's address/link change notifications, so the client re-probes when the network changes instead of
 * polling. The only file that imports `netlink`. Linux only; the dump needs no privileges.
 */
import type { rt, RtNetlinkSocket } from 'netlink'
import ipaddr from 'ipaddr.js'
import { WgnatError, messageOf } from './errors.js'

/** How long a dump may take before we give up on the kernel answering. */
export const NETLINK_REQUEST_TIMEOUT_MS = 5_000
/**
 * Changes arrive in bursts (a DHCP lease adds an address, a route, a link flag...): call back once this long
 * after the last notification of a burst.
 */
export const NETLINK_CHANGE_DEBOUNCE_MS = 250

/** Linux address families in ifaddrmsg. */
const AF_INET = 2
const AF_INET6 = 10

export type AddressScope = 'global' | 'site' | 'link' | 'host' | 'nowhere'

export interface NetlinkAddress {
  /** Interface name (not the IPv4 label, which may be an alias like `eth0:1`). */
  ifname: string
  ifindex: number
  family: 'IPv4' | 'IPv6'
  /** The local address: IFA_LOCAL when present (point-to-point links), else IFA_ADDRESS. */
  address: string
  /** Prefix length. */
  bits: number
  scope: AddressScope
  /** IPv6 duplicate address detection has not finished: the address cannot be used as a source yet. */
  tentative: boolean
  /** IPv6 preferred lifetime over: kept for existing connections, not chosen for new ones. */
  deprecated: boolean
}

/** What kinds of notification a debounced change callback covers. */
export interface NetworkChange {
  kinds: Array<'address' | 'link' | 'route' | 'overflow'>
}

/** Sockets of active watchers, held so that garbage collection cannot close a watcher nobody references. */
const watching = new Set<RtNetlinkSocket>()

/** Talking to the kernel over netlink failed. */
export class NetlinkError extends WgnatError {}

/** Every IPv4 and IPv6 address of every interface (of this network namespace). Throws NetlinkError. */
export async function listAddresses (opts: { signal?: AbortSignal } = {}): Promise<NetlinkAddress[]> {
  const { signal } = opts
  signal?.throwIfAborted()
  const socket = await openSocket('address dump')
  // Aborted while netlink loaded: close the socket just opened rather than leave it.
  if (signal?.aborted === true) { socket.socket.close(); signal.throwIfAborted() }
  const onAbort = (): void => socket.socket.close()
  signal?.addEventListener('abort', onAbort)
  try {
    const request = { timeout: NETLINK_REQUEST_TIMEOUT_MS }
    const links = await socket.getLinks(undefined, undefined, request)
    const names = new Map<number, string>()
    for (const link of links) {
      if (link.data.index !== undefined && link.attrs.ifname !== undefined) names.set(link.data.index, link.attrs.ifname)
    }
    const addresses = await socket.getAddresses(undefined, undefined, request)
    return addresses.flatMap((message) => {
      const parsed = parseAddressMessage(message, names)
      return parsed === undefined ? [] : [parsed]
    })
  } catch (err) {
    signal?.throwIfAborted()
    throw new NetlinkError(`netlink address dump failed: ${messageOf(err)}`)
  } finally {
    signal?.removeEventListener('abort', onAbort)
    try { socket.socket.close() } catch { /* closed on abort */ }
  }
}

/** One RTM_NEWADDR message as a NetlinkAddress; undefined for other families or incomplete messages. */
export function parseAddressMessage (message: rt.AddressMessage, names: ReadonlyMap<number, string>): NetlinkAddress | undefined {
  const { data, attrs } = message
  const family = data.family === AF_INET ? 'IPv4' : data.family === AF_INET6 ? 'IPv6' : undefined
  const bytes = attrs.local ?? attrs.address
  if (family === undefined || bytes === undefined || data.index === undefined || data.prefixlen === undefined) return undefined
  if (bytes.length !== (family === 'IPv4' ? 4 : 16)) return undefined
  const flags = attrs.flags ?? data.flags ?? {}
  return {
    ifname: names.get(data.index) ?? attrs.label ?? `if${data.index}`,
    ifindex: data.index,
    family,
    address: ipaddr.fromByteArray([...bytes]).toString(),
    bits: data.prefixlen,
    scope: scopeName(data.scope ?? 0),
    tentative: flags.tentative === true,
    deprecated: flags.deprecated === true
  }
}

export interface WatchAddressChangesOptions {
  /**
   * Also report route changes. Off by default: our own `wg`/route changes would trigger re-probes.
   * @default false
   */
  routes?: boolean
  /** @default NETLINK_CHANGE_DEBOUNCE_MS */
  debounceMs?: number
}

/**
 * Call `onChange` (debounced) whenever an address or link of this network namespace changes, until `signal`
 * aborts. Subscribes to RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR and RTNLGRP_LINK (and the route groups if
 * asked). Rejects with NetlinkError only if the subscription cannot be made; afterwards it never throws: socket
 * errors (ENOBUFS when notifications overflow) are reported as an `overflow` change, since changes may have
 * been missed, and a throwing or rejecting `onChange` is ignored. The subscription does not keep the event loop
 * alive on its own.
 */
export async function watchAddressChanges (onChange: (change: NetworkChange) => void | Promise<void>, signal: AbortSignal, opts: WatchAddressChangesOptions = {}): Promise<void> {
  if (signal.aborted) return
  const debounceMs = opts.debounceMs ?? NETLINK_CHANGE_DEBOUNCE_MS
  const socket = await openSocket('change subscription')
  if (signal.aborted) { socket.socket.close(); return }
  const groups: Array<keyof typeof rt.MulticastGroups> = ['IPV4_IFADDR', 'IPV6_IFADDR', 'LINK']
  if (opts.routes === true) groups.push('IPV4_ROUTE', 'IPV6_ROUTE')
  try {
    for (const group of groups) socket.addMembership(group)
  } catch (err) {
    socket.socket.close()
    throw new NetlinkError(`netlink: cannot subscribe to address changes: ${messageOf(err)}`)
  }

  let kinds = new Set<NetworkChange['kinds'][number]>()
  let timer: NodeJS.Timeout | undefined
  const fire = (): void => {
    timer = undefined
    const change: NetworkChange = { kinds: [...kinds] }
    kinds = new Set()
    try {
      void Promise.resolve(onChange(change)).catch(() => {})
    } catch { /* a change callback must not stop the watcher */ }
  }
  const note = (kind: NetworkChange['kinds'][number]): void => {
    if (signal.aborted) return
    kinds.add(kind)
    if (timer !== undefined) clearTimeout(timer)
    timer = setTimeout(fire, debounceMs)
  }

  socket.on('message', (messages) => {
    for (const message of messages) {
      if (message.kind === 'address' || message.kind === 'link' || message.kind === 'route') note(message.kind)
    }
  })
  // A notification this library cannot parse is still a change.
  socket.on('invalid', () => note('address'))
  socket.socket.on('error', () => note('overflow'))

  watching.add(socket)
  signal.addEventListener('abort', () => {
    if (timer !== undefined) clearTimeout(timer)
    watching.delete(socket)
    try { socket.socket.close() } catch { /* already closed */ }
  }, { once: true })
}

/** The rtnetlink part of `netlink` only: the package's index also loads nl80211 and more, twice the start-up cost. */
type NetlinkModule = typeof import('netlink/dist/rt/rt.js')
let netlinkModule: NetlinkModule | undefined

/**
 * Load `netlink` (and its native addon) on first use: the client needs it only once NAT discovery starts, not in
 * its first milliseconds, and loading it up front was a tenth of the client's start-up. A dynamic import, so that
 * scripts/bundle.mjs puts its JavaScript in the bundle, under the code cache: compiling it at each start cost a
 * client about 40 ms of CPU while a mesh forms (only its native addon loads from node_modules).
 */
async function loadNetlink (): Promise<NetlinkModule> {
  if (netlinkModule === undefined) {
    const m = await import('netlink/dist/rt/rt.js') as NetlinkModule & { default?: NetlinkModule }
    netlinkModule = typeof m.createRtNetlink === 'function' ? m : m.default as NetlinkModule
  }
  return netlinkModule
}

async function openSocket (what: string): Promise<RtNetlinkSocket> {
  try {
    return (await loadNetlink()).createRtNetlink()
  } catch (err) {
    throw new NetlinkError(`netlink ${what}: cannot open an rtnetlink socket: ${messageOf(err)}`)
  }
}

/** rtnetlink's route scopes (linux/rtnetlink.h, `rt.RouteScope` in `netlink`), as constants so nothing loads early. */
const RT_SCOPE = { UNIVERSE: 0, SITE: 200, LINK: 253, HOST: 254 } as const

function scopeName (scope: number): AddressScope {
  switch (scope) {
    case RT_SCOPE.UNIVERSE: return 'global'
    case RT_SCOPE.SITE: return 'site'
    case RT_SCOPE.LINK: return 'link'
    case RT_SCOPE.HOST: return 'host'
    default: return 'nowhere'
  }
}
