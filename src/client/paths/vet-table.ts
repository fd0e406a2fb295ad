import { parseEndpoint, parseIp, parsePrefix, prefixContains, prefixesOverlap, prefixHas, type Endpoint, type Prefix } from '../../shared/ip.js'
import { PEER_NAME_RE } from '../../shared/peer-name.js'
import type { TablePeer } from '../../shared/protocol.js'
import { shortKey, type WgDevice } from '../../shared/wg-dump.js'
import { vetIpv6Candidates } from './ipv6-candidates.js'
import { TakenPrefixes } from './taken-prefixes.js'

/** A peer the registry listed that this client may configure, after every safety check. */
export interface DesiredPeer {
  publicKey: string
  endpoint: Endpoint | null
  allowedIps: string[]
  online: boolean
  /** Other endpoints to try (LAN addresses it announced), best first. */
  candidates: Endpoint[]
  natClass: string
  /** The peer has punched towards us and waits for our handshake (coordinated punching). */
  readyFor: boolean
  /** Its name on the hub, when the registry sent a valid one (for logs and status only; never routes anything). */
  name?: string
  /** The hub's access policy lets the peer open connections to us (false: only we to it; see policy-filter.ts). */
  mayInitiate: boolean
  /** The endpoint the peer's router maps to its WireGuard port (PCP / NAT-PMP / UPnP), if it announced one. */
  mapped?: Endpoint | null
  /** Its global IPv6 endpoints (announced, vetted by vetIpv6Candidates), best first. */
  ipv6?: Endpoint[]
  /**
   * It has announced nothing yet: its wgnat is not running (or not yet; a wg-nat client never announces). Its first
   * announcement means it now configures us too, so a failed pair tries again at once (reconcile.ts).
   */
  silent?: true
}

export interface VetContext {
  selfKey: string
  registryKey: string
  /** The registry peer's allowed IPs: the mesh. Nothing outside them is ever routed. */
  meshPrefixes: Prefix[]
  /** Addresses that must keep going to the registry (its service address). */
  registryAddresses: string[]
  /** The registry peer's own allowed IPs: taking any of them would move it off the hub peer. */
  hubPrefixes: Prefix[]
  /** Peers this client added and may change. */
  managed: ReadonlySet<string>
  device: WgDevice
}

/**
 * Check a registry table against what this client may do. The registry is untrusted: an allowed IP outside the
 * mesh, equal to the whole mesh, covering the registry's address, or overlapping a peer someone else configured is
 * dropped; peers this client did not add are never touched. Returns the usable peers and one warning per problem.
 */
export function vetTable (peers: Iterable<TablePeer>, ctx: VetContext): { desired: Map<string, DesiredPeer>, warnings: string[] } {
  const desired = new Map<string, DesiredPeer>()
  const warnings: string[] = []
  const registryIps = ctx.registryAddresses.map((a) => parseIp(a))
  const foreign: Prefix[] = []
  for (const p of ctx.device.peers) {
    if (p.publicKey === ctx.registryKey || ctx.managed.has(p.publicKey)) continue
    for (const a of p.allowedIps) foreign.push(parsePrefix(a))
  }
  const taken = new TakenPrefixes()
  const onDevice = new Set(ctx.device.peers.map((p) => p.publicKey))

  for (const peer of peers) {
    if (peer.publicKey === ctx.selfKey || peer.publicKey === ctx.registryKey) continue
    let peerName: string | undefined
    if (peer.name !== undefined) {
      if (PEER_NAME_RE.test(peer.name)) peerName = peer.name
      else warnings.push(`peer ${shortKey(peer.publicKey)}: ignoring its name from the registry (not a valid peer name)`)
    }
    const name = peerName ?? shortKey(peer.publicKey)
    if (onDevice.has(peer.publicKey) && !ctx.managed.has(peer.publicKey)) {
      warnings.push(`peer ${name}: already configured on the interface by someone else; not touching it`)
      continue
    }
    const allowedIps: string[] = []
    for (const text of peer.allowedIps) {
      const prefix = parsePrefix(text)
      const why = ctx.hubPrefixes.some((h) => h.text === prefix.text)
        ? 'it is one of the hub peer\'s own allowed IPs'
        : rejectReason(prefix, ctx.meshPrefixes, registryIps, foreign, taken)
      if (why !== undefined) { warnings.push(`peer ${name}: ignoring allowed IP '${prefix.text}': ${why}`); continue }
      allowedIps.push(prefix.text)
      taken.add(prefix)
    }
    if (allowedIps.length === 0) {
      if (peer.allowedIps.length === 0) warnings.push(`peer ${name}: no allowed IPs in the registry; skipped`)
      continue
    }
    const ipv6 = vetIpv6Candidates(peer.announce?.ipv6Endpoints, ctx.meshPrefixes)
    for (const w of ipv6.warnings) warnings.push(`peer ${name}: ${w}`)
    desired.set(peer.publicKey, {
      publicKey: peer.publicKey,
      endpoint: peer.endpoint === null ? null : parseEndpoint(peer.endpoint),
      allowedIps,
      online: peer.online,
      candidates: (peer.announce?.lanEndpoints ?? []).map(parseEndpoint),
      natClass: peer.announce?.natClass ?? 'unknown',
      readyFor: peer.announce?.ready.includes(ctx.selfKey) ?? false,
      mayInitiate: peer.mayInitiate ?? true,
      mapped: peer.announce?.portMapping == null ? null : parseEndpoint(peer.announce.portMapping),
      ...(ipv6.endpoints.length === 0 ? {} : { ipv6: ipv6.endpoints }),
      ...(peerName === undefined ? {} : { name: peerName }),
      ...(peer.announce == null ? { silent: true as const } : {})
    })
  }
  return { desired, warnings }
}

function rejectReason (prefix: Prefix, mesh: Prefix[], registryIps: ReturnType<typeof parseIp>[], foreign: Prefix[], taken: TakenPrefixes): string | undefined {
  const inside = mesh.find((m) => prefixContains(m, prefix))
  if (inside === undefined) return 'outside the mesh (the registry peer\'s allowed IPs)'
  if (inside.bits === prefix.bits) return 'it is the whole mesh'
  if (registryIps.some((ip) => prefixHas(prefix, ip))) return 'it covers the registry\'s address'
  if (foreign.some((f) => prefixesOverlap(f, prefix))) return 'it overlaps a peer configured by someone else'
  if (taken.overlaps(prefix)) return 'another peer in the table claims it'
  return undefined
}
