import type { NetworkInterfaceInfo } from 'node:os'
import type { Prefix } from '../../shared/ip.js'
import { ipv6RejectReason } from '../paths/ipv6-candidates.js'
import type { PeerTrack } from '../paths/reconcile.js'
import type { DesiredPeer } from '../paths/vet-table.js'

/**
 * What `wgnat-client status` says of raw sockets under `--no-raw`, from the start (NatMonitor says the same once NAT
 * discovery has started; it lives here because NatMonitor's module loads only then).
 */
export const NO_RAW_PROBLEM = 'raw sockets off (--no-raw): no STUN from the WireGuard port, no punching'

/**
 * When NAT discovery (the raw-socket check, netlink, STUN from the WireGuard port) and port mapping start (issue 16):
 * once the first table's attempts have their answers (each peer direct, or its first attempt failed), and at the
 * latest this long after those attempts went out. Both need the first table (how the hub sees us), the first
 * attempts need nothing from them, and while a mesh forms they would take the CPU the attempts and the other
 * clients' starts need: at 8 clients starting at once on two cores, running them with the first attempts made the
 * last pair answer about 0.3-0.6 s later (BENCHMARKS.md). What waits is what they find: a LAN or IPv6 candidate, a
 * port mapping, the NAT class that tells a hard NAT's peers how to try. So discovery starts at once when this host
 * has a global IPv6 address ({@link hasGlobalIpv6}: its IPv6 endpoints may be the only direct path) or the table
 * shows a peer that needs it ({@link needsNatNow}); a pair that needs it without either (both sides starting together
 * on IPv4 only, our own NAT hard) goes direct up to this much later at start-up, on the hub meanwhile where it relays.
 */
export const NAT_START_DEFER_MS = 2000

/** Is some peer still in its first attempt (arming or trying, never failed)? Pure; walks the tracks with forEach. */
export function firstAttemptsPending (tracks: ReadonlyMap<string, PeerTrack>): boolean {
  let pending = false
  tracks.forEach((t) => { if (!pending && t.failures === 0 && (t.phase === 'arming' || t.phase === 'trying')) pending = true })
  return pending
}

/**
 * Does some peer of the table need what NAT discovery finds, for a direct path? Its NAT is hard, it announced IPv6
 * endpoints or a port mapping (both sides' are needed), or it is behind our own public address (its LAN endpoints and
 * ours, since most routers do not hairpin). `selfPublic`: our address as the hub sees it. Pure.
 */
export function needsNatNow (desired: ReadonlyMap<string, DesiredPeer>, selfPublic: string | null): boolean {
  let needs = false
  desired.forEach((p) => {
    if (needs) return
    needs = p.natClass === 'hard' || (p.ipv6?.length ?? 0) > 0 || p.mapped != null || (selfPublic !== null && p.endpoint?.address === selfPublic)
  })
  return needs
}

/**
 * Has this host a global IPv6 address, one it could announce as an IPv6 candidate (see ipv6-candidates.ts), on some
 * interface other than the WireGuard one? From `os.networkInterfaces()`, a cheap look that needs no netlink: only a
 * hint for when NAT discovery starts, which then reads the addresses with their flags. Pure.
 */
export function hasGlobalIpv6 (interfaces: NodeJS.Dict<NetworkInterfaceInfo[]>, iface: string, meshPrefixes: readonly Prefix[]): boolean {
  for (const [name, list] of Object.entries(interfaces)) {
    if (name === iface || list === undefined) continue
    for (const a of list) if (a.family === 'IPv6' && !a.internal && mayBeGlobal(a.address) && ipv6RejectReason(a.address, meshPrefixes) === undefined) return true
  }
  return false
}

/**
 * Whether an address as `os.networkInterfaces()` prints it (compressed, lower case) can be in 2000::/3: a first group
 * of four digits starting with 2 or 3. The link-local address every interface has is then never parsed: the first
 * IPv6 parse compiles ipaddr.js's regular expressions, 3 ms of a client's start (issue 16).
 */
function mayBeGlobal (address: string): boolean {
  const colon = address.indexOf(':')
  return colon === 4 && (address[0] === '2' || address[0] === '3')
}
