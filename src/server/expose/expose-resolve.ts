import { isIP } from 'node:net'
import { quote } from '../../shared/errors.js'
import { parseIp, parsePrefix, prefixHas } from '../../shared/ip.js'
import { isWgKey, shortKey } from '../../shared/wg-dump.js'
import { ExposeSpecError, formatPublic, formatRange, rangesOverlap, type ExposeProto, type ExposeSpec, type PortRange } from './expose-spec.js'

/** An expose whose peer is found: traffic to `publicPorts` goes to `address`:`targetPorts` through the tunnel. */
export interface ResolvedExpose {
  readonly spec: ExposeSpec
  readonly proto: ExposeProto
  readonly publicPorts: PortRange
  readonly targetPorts: PortRange
  /** The peer's tunnel address (canonical text). */
  readonly address: string
  readonly family: 'ipv4' | 'ipv6'
  readonly peerKey: string
  /** The peer's name, or its short key. */
  readonly peerLabel: string
}

/** A port the hub itself serves on, which no expose may take. */
export interface ReservedPort {
  readonly port: number
  readonly proto: ExposeProto
  /** What uses it, e.g. `WireGuard's listen port`. */
  readonly what: string
}

export interface ExposePeer {
  readonly publicKey: string
  readonly allowedIps: readonly string[]
}

export interface ResolveContext {
  readonly peers: Iterable<ExposePeer>
  /** Public key -> name (`readPeerNames`). */
  readonly names: ReadonlyMap<string, string>
  readonly reserved: readonly ReservedPort[]
}

/**
 * Find each spec's peer among the interface's peers and check the set: no reserved port, no two exposes sharing a
 * public port and protocol. Pure. Throws ExposeSpecError for the first problem, quoting the spec; all or nothing.
 */
export function resolveExposes (specs: readonly ExposeSpec[], ctx: ResolveContext): ResolvedExpose[] {
  const peers = [...ctx.peers]
  const byName = new Map<string, string>()
  for (const [key, name] of ctx.names) byName.set(name, key)
  const out: ResolvedExpose[] = []
  for (const spec of specs) {
    const bad = (why: string): ExposeSpecError => new ExposeSpecError(`expose ${quote(spec.text)}: ${why}`)
    for (const r of ctx.reserved) {
      if (r.proto === spec.proto && r.port >= spec.publicPorts.from && r.port <= spec.publicPorts.to) {
        throw bad(`port ${r.port}/${r.proto} is ${r.what}`)
      }
    }
    const clash = out.find((o) => o.proto === spec.proto && rangesOverlap(o.publicPorts, spec.publicPorts))
    if (clash !== undefined) throw bad(`${formatPublic(spec)} overlaps ${quote(clash.spec.text)}`)
    const { peer, address } = findPeer(spec.peer, peers, byName, bad)
    out.push({
      spec,
      proto: spec.proto,
      publicPorts: spec.publicPorts,
      targetPorts: spec.targetPorts,
      address,
      family: isIP(address) === 6 ? 'ipv6' : 'ipv4',
      peerKey: peer.publicKey,
      peerLabel: ctx.names.get(peer.publicKey) ?? shortKey(peer.publicKey)
    })
  }
  return out
}

function findPeer (text: string, peers: readonly ExposePeer[], byName: ReadonlyMap<string, string>, bad: (why: string) => ExposeSpecError): { peer: ExposePeer, address: string } {
  if (isIP(text) !== 0) {
    const ip = parseIp(text)
    let best: { peer: ExposePeer, bits: number } | undefined
    for (const peer of peers) {
      for (const p of peer.allowedIps) {
        const prefix = parsePrefix(p)
        if (prefixHas(prefix, ip) && (best === undefined || prefix.bits > best.bits)) best = { peer, bits: prefix.bits }
      }
    }
    if (best === undefined) throw bad(`no peer has ${quote(text)} in its allowed IPs`)
    return { peer: best.peer, address: ip.toString() }
  }
  let key: string
  if (isWgKey(text)) {
    key = text
  } else {
    const named = byName.get(text)
    if (named === undefined) throw bad(`no peer named ${quote(text)} (not a name, public key or tunnel address of a peer)`)
    key = named
  }
  const peer = peers.find((p) => p.publicKey === key)
  if (peer === undefined) throw bad(`peer ${quote(text === key ? shortKey(key) : text)} is not a peer of the interface`)
  const address = hostAddress(peer)
  if (address === undefined) throw bad(`peer ${quote(text === key ? shortKey(key) : text)} has no single tunnel address (no /32 or /128 in its allowed IPs): name the address instead`)
  return { peer, address }
}

/** The peer's tunnel address: its first IPv4 host prefix, else its first IPv6 host prefix. */
function hostAddress (peer: ExposePeer): string | undefined {
  const hosts = peer.allowedIps.map(parsePrefix).filter((p) => p.bits === (p.address.kind() === 'ipv4' ? 32 : 128))
  return (hosts.find((p) => p.address.kind() === 'ipv4') ?? hosts[0])?.address.toString()
}

/** `8080/tcp -> nas (100.64.0.2:80)`, for logs and listings. */
export function describeExpose (e: ResolvedExpose): string {
  const addr = e.family === 'ipv6' ? `[${e.address}]` : e.address
  return `${formatPublic(e)} -> ${e.peerLabel} (${addr}:${formatRange(e.targetPorts)})`
}
