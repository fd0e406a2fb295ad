import { shortKey } from '../../shared/wg-dump.js'
import { evaluatePolicy, type PolicyPeer } from './evaluate-policy.js'
import type { MemberRef, Policy } from './parse-policy.js'

/** Who may open connections to whom under a policy, for `wgnat-server policy check`. */
export interface ReachReport {
  file: string
  rules: Array<{ rule: number, text: string }>
  /** `interface`: the interface's peers; `file`: the members the file names (no interface to read). */
  peersFrom: 'interface' | 'file'
  peers: Array<{ id: string, label: string }>
  /** [from, to] pairs of peer ids. */
  allowed: Array<[string, string]>
  denied?: { packets: number, bytes: number }
}

/** Above this many peers the report lists pairs per peer instead of a matrix. */
export const MATRIX_MAX_PEERS = 30

/**
 * Evaluate `policy` against `peers` (the interface's), or, without them, against the members the file names:
 * each name, key and address becomes a stand-in peer, so a file can be checked before it is deployed. Pure.
 */
export function reachReport (policy: Policy, names: ReadonlyMap<string, string>, peers?: readonly PolicyPeer[]): ReachReport {
  let list: PolicyPeer[]
  let allNames = names
  const labels = new Map<string, string>()
  if (peers !== undefined) {
    list = [...peers]
    for (const p of list) labels.set(p.publicKey, names.get(p.publicKey) ?? `${shortKey(p.publicKey)} (${p.allowedIps.join(',')})`)
  } else {
    const stand = new Map<string, PolicyPeer>()
    const extra = new Map(names)
    const add = (m: MemberRef): void => {
      if (m.kind === 'all') return
      const id = m.kind === 'key' ? m.key : `${m.kind}:${m.kind === 'name' ? m.name : m.address}`
      if (stand.has(id)) return
      stand.set(id, { publicKey: id, allowedIps: m.kind === 'address' ? [`${m.address}/${m.address.includes(':') ? 128 : 32}`] : [] })
      if (m.kind === 'name') extra.set(id, m.name)
      labels.set(id, m.kind === 'key' ? names.get(m.key) ?? shortKey(m.key) : m.kind === 'name' ? m.name : m.address)
    }
    for (const members of policy.groups.values()) members.forEach(add)
    for (const r of policy.rules) { r.a.members.forEach(add); r.b.members.forEach(add) }
    list = [...stand.values()]
    allNames = extra
  }
  const ev = evaluatePolicy(policy, list, allNames)
  const allowed: Array<[string, string]> = []
  for (const a of list) for (const b of list) if (a !== b && ev.mayInitiate(a.publicKey, b.publicKey)) allowed.push([a.publicKey, b.publicKey])
  return {
    file: policy.source,
    rules: policy.rules.map((r) => ({ rule: r.index + 1, text: r.kind === 'between' ? (r.a === r.b ? `between ${r.a.label} (among themselves)` : `between ${r.a.label} and ${r.b.label}`) : `from ${r.a.label} to ${r.b.label} (one way)` })),
    peersFrom: peers === undefined ? 'file' : 'interface',
    peers: list.map((p) => ({ id: p.publicKey, label: labels.get(p.publicKey) ?? shortKey(p.publicKey) })).sort((x, y) => x.label < y.label ? -1 : 1),
    allowed
  }
}

/** The human view of a report. */
export function renderReach (r: ReachReport, iface?: string): string {
  const lines = [`policy ${r.file}: valid, ${r.rules.length} rule(s)`]
  for (const rule of r.rules) lines.push(`  rule ${rule.rule}: ${rule.text}`)
  lines.push('', r.peersFrom === 'interface' ? `who may open connections to whom, among the peers of ${iface ?? 'the interface'}:` : 'who may open connections to whom, among the members the file names (interface not readable):')
  const ok = new Set(r.allowed.map(([a, b]) => `${a}>${b}`))
  if (r.peers.length === 0) lines.push('  (no peers)')
  else if (r.peers.length <= MATRIX_MAX_PEERS) {
    const rows = [['from \\ to', ...r.peers.map((p) => p.label)]]
    for (const a of r.peers) rows.push([a.label, ...r.peers.map((b) => a === b ? '-' : ok.has(`${a.id}>${b.id}`) ? 'yes' : 'no')])
    const widths = (rows[0] as string[]).map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length)))
    for (const row of rows) lines.push('  ' + row.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd())
  } else {
    const label = new Map(r.peers.map((p) => [p.id, p.label]))
    for (const a of r.peers) {
      const to = r.allowed.filter(([f]) => f === a.id).map(([, t]) => label.get(t) ?? t)
      lines.push(`  ${a.label} -> ${to.length === 0 ? '(nobody)' : to.join(', ')}`)
    }
  }
  if (r.denied !== undefined) lines.push('', `relayed traffic denied by the policy in force: ${r.denied.packets} packets, ${r.denied.bytes} bytes`)
  return lines.join('\n') + '\n'
}
