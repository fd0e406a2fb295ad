import { parseIp, parsePrefix, prefixHas, type Prefix } from '../../shared/ip.js'
import type { MemberRef, Policy } from './parse-policy.js'

/** A peer of the hub as the policy sees it: its key, and its allowed IPs (its tunnel addresses). */
export interface PolicyPeer {
  publicKey: string
  allowedIps: readonly string[]
}

/** A distinct set of peers some rule names (several rule sides naming the same peers share one). */
export interface PolicySet {
  /** The rule sides that resolve to it, as written (`admins`, `admins+laptop`). */
  labels: string[]
  /** Public keys, sorted. */
  keys: string[]
}

/** Members of set `from` may open connections to members of set `to` (and get the replies). */
export interface PolicyEdge {
  from: number
  to: number
  /** Indexes of the rules that allow it. */
  rules: number[]
}

/** What one peer may see: everyone it may reach in either direction, and who of those may open connections to it. */
export interface PeerView {
  visible: Set<string>
  inbound: Set<string>
}

export interface PolicyEvaluation {
  sets: PolicySet[]
  edges: PolicyEdge[]
  /** May `from` open connections to `to`? */
  mayInitiate: (from: string, to: string) => boolean
  view: (caller: string) => PeerView
  /** Changes exactly when `sets` or `edges` change. */
  signature: string
}

/**
 * Resolve a policy against the hub's peers: which peers each rule side names, and who may open connections to
 * whom. Pure. Members: `*` is every peer; a key is that peer; a name goes through `peerNames` (key -> name); an
 * address is the peer whose allowed IPs hold it (longest prefix, as WireGuard routes). A member that matches no
 * peer right now names nobody (the peer may come later).
 */
export function evaluatePolicy (policy: Policy, peers: readonly PolicyPeer[], peerNames: ReadonlyMap<string, string>): PolicyEvaluation {
  const all = peers.map((p) => p.publicKey)
  const present = new Set(all)
  const byName = new Map<string, string>()
  for (const [key, name] of peerNames) if (present.has(key)) byName.set(name, key)
  const hosts = new Map<string, string>()
  const nets: Array<{ prefix: Prefix, key: string }> = []
  for (const p of peers) {
    for (const text of p.allowedIps) {
      const prefix = parsePrefix(text)
      if (prefix.bits === (prefix.address.kind() === 'ipv4' ? 32 : 128)) hosts.set(prefix.address.toString(), p.publicKey)
      else nets.push({ prefix, key: p.publicKey })
    }
  }
  const byAddress = (address: string): string | undefined => {
    const exact = hosts.get(address)
    if (exact !== undefined) return exact
    const ip = parseIp(address)
    let best: { bits: number, key: string } | undefined
    for (const n of nets) if (prefixHas(n.prefix, ip) && (best === undefined || n.prefix.bits > best.bits)) best = { bits: n.prefix.bits, key: n.key }
    return best?.key
  }
  const resolve = (m: MemberRef): string[] => {
    switch (m.kind) {
      case 'all': return all
      case 'key': return present.has(m.key) ? [m.key] : []
      case 'name': { const k = byName.get(m.name); return k === undefined ? [] : [k] }
      case 'address': { const k = byAddress(m.address); return k === undefined ? [] : [k] }
    }
  }

  const sets: PolicySet[] = []
  const setIndex = new Map<string, number>()
  const setOf = (label: string, members: MemberRef[]): number => {
    const keys = [...new Set(members.flatMap(resolve))].sort()
    const id = keys.join(',')
    let i = setIndex.get(id)
    if (i === undefined) { i = sets.length; sets.push({ labels: [], keys }); setIndex.set(id, i) }
    const set = sets[i] as PolicySet
    if (!set.labels.includes(label)) set.labels.push(label)
    return i
  }
  const edgeIndex = new Map<string, PolicyEdge>()
  const edges: PolicyEdge[] = []
  const addEdge = (from: number, to: number, rule: number): void => {
    const id = `${from}>${to}`
    let e = edgeIndex.get(id)
    if (e === undefined) { e = { from, to, rules: [] }; edges.push(e); edgeIndex.set(id, e) }
    if (!e.rules.includes(rule)) e.rules.push(rule)
  }
  for (const rule of policy.rules) {
    const a = setOf(rule.a.label, rule.a.members)
    const b = setOf(rule.b.label, rule.b.members)
    addEdge(a, b, rule.index)
    if (rule.kind === 'between' && a !== b) addEdge(b, a, rule.index)
  }

  const members = sets.map((s) => new Set(s.keys))
  const setsOf = new Map<string, number[]>()
  members.forEach((m, i) => { for (const k of m) setsOf.set(k, [...(setsOf.get(k) ?? []), i]) })
  const mayInitiate = (from: string, to: string): boolean => {
    const mine = setsOf.get(from)
    if (mine === undefined) return false
    return edges.some((e) => mine.includes(e.from) && (members[e.to] as Set<string>).has(to))
  }
  const view = (caller: string): PeerView => {
    const mine = setsOf.get(caller) ?? []
    const visible = new Set<string>()
    const inbound = new Set<string>()
    for (const e of edges) {
      if (mine.includes(e.from)) for (const k of members[e.to] as Set<string>) visible.add(k)
      if (mine.includes(e.to)) for (const k of members[e.from] as Set<string>) { visible.add(k); inbound.add(k) }
    }
    visible.delete(caller)
    inbound.delete(caller)
    return { visible, inbound }
  }
  const signature = JSON.stringify([sets.map((s) => s.keys), edges.map((e) => [e.from, e.to])])
  return { sets, edges, mayInitiate, view, signature }
}
