import { parseRuleComment, type Family } from './expose-ruleset.js'

export interface Counter { packets: number, bytes: number }

/** One expose as the kernel counts it. */
export interface ExposeCounters {
  /** `8080/tcp=100.64.0.2:80` */
  expose: string
  /** Connections (UDP: flows) DNATed since the rules went in. */
  connections: number
  /** Forwarded into the tunnel, to the peer. */
  toPeer: Counter
  /** Forwarded from the peer back to the clients. */
  fromPeer: Counter
}

export interface ExposeStatus {
  interface: string
  table: string
  /** False: no table, so nothing is exposed (wgnat-server is not running with --expose). */
  installed: boolean
  /** Client addresses are masqueraded to the hub's tunnel address (false with --expose-preserve-source). */
  masquerade: boolean
  exposes: ExposeCounters[]
  /** Packets the guard dropped between the tunnel and other interfaces (present when wgnat turned forwarding on). */
  guardDrops?: number
}

interface NftRule { comment?: unknown, expr?: unknown }

/** Read the counters out of `nft -j list table` output. Pure; ignores rules it did not write. */
export function exposeCounters (json: unknown, iface: string, table: string): ExposeStatus {
  const status: ExposeStatus = { interface: iface, table, installed: json !== undefined, masquerade: false, exposes: [] }
  if (json === undefined) return status
  const items = (json as { nftables?: unknown }).nftables
  const byKey = new Map<string, ExposeCounters>()
  const entry = (key: string): ExposeCounters => {
    let e = byKey.get(key)
    if (e === undefined) {
      e = { expose: key, connections: 0, toPeer: { packets: 0, bytes: 0 }, fromPeer: { packets: 0, bytes: 0 } }
      byKey.set(key, e)
    }
    return e
  }
  for (const item of Array.isArray(items) ? items : []) {
    const rule = (item as { rule?: NftRule }).rule
    if (rule === undefined || typeof rule.comment !== 'string') continue
    const parsed = parseRuleComment(rule.comment)
    if (parsed === undefined) continue
    const counter = counterOf(rule.expr)
    if (parsed.role === 'guard') {
      if (counter !== undefined) status.guardDrops = (status.guardDrops ?? 0) + counter.packets
      continue
    }
    const e = entry(parsed.key)
    if (parsed.role === 'snat') status.masquerade = true
    if (counter === undefined) continue
    if (parsed.role === 'conn') e.connections += counter.packets
    if (parsed.role === 'in') e.toPeer = counter
    if (parsed.role === 'out') e.fromPeer = counter
  }
  status.exposes = [...byKey.values()]
  return status
}

/** Families a table left by an earlier run guards: that run had turned their forwarding on. Pure. */
export function guardedFamilies (json: unknown): Family[] {
  const items = (json as { nftables?: unknown } | undefined)?.nftables
  const out = new Set<Family>()
  for (const item of Array.isArray(items) ? items : []) {
    const comment = (item as { rule?: NftRule }).rule?.comment
    const parsed = typeof comment === 'string' ? parseRuleComment(comment) : undefined
    if (parsed?.role === 'guard' && (parsed.key === 'ipv4' || parsed.key === 'ipv6')) out.add(parsed.key)
  }
  return [...out]
}

function counterOf (expr: unknown): Counter | undefined {
  if (!Array.isArray(expr)) return undefined
  for (const x of expr) {
    const c = (x as { counter?: { packets?: unknown, bytes?: unknown } }).counter
    if (c !== undefined && typeof c.packets === 'number' && typeof c.bytes === 'number') return { packets: c.packets, bytes: c.bytes }
  }
  return undefined
}

/** The human view of an ExposeStatus. */
export function renderExposeStatus (s: ExposeStatus): string {
  if (!s.installed) return `no exposes on ${s.interface} (no table inet ${s.table}: wgnat-server is not running with --expose)\n`
  if (s.exposes.length === 0) return `no exposes on ${s.interface} (table inet ${s.table} is empty)\n`
  const rows = [['EXPOSE', 'CONNECTIONS', 'TO PEER', 'FROM PEER']]
  for (const e of s.exposes) rows.push([e.expose, String(e.connections), traffic(e.toPeer), traffic(e.fromPeer)])
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  const lines = rows.map((r) => r.map((cell, i) => i === r.length - 1 ? cell : cell.padEnd(widths[i]!)).join('  '))
  lines.push(`clients appear to the peers as ${s.masquerade ? 'the hub\'s tunnel address (masquerade)' : 'themselves (--expose-preserve-source)'}` +
    (s.guardDrops === undefined ? '' : `; guard dropped ${s.guardDrops} packets between the tunnel and other interfaces`))
  return lines.join('\n') + '\n'
}

function traffic (c: Counter): string {
  return `${bytes(c.bytes)} (${c.packets} pkts)`
}

function bytes (n: number): string {
  if (n < 1024) return `${n} B`
  const units = ['KiB', 'MiB', 'GiB', 'TiB']
  let v = n / 1024
  let i = 0
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++ }
  return `${v.toFixed(1)} ${units[i]!}`
}
