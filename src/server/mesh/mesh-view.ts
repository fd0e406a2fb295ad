import type { ReportPath, TablePeer } from '../../shared/protocol.js'
import { shortKey } from '../../shared/wg-dump.js'
import { REPORT_STALE_S, type PathReports } from './path-reports.js'

/** A pair's path as the hub shows it; `unknown`: neither side has reported about the other (recently). */
export type PairPath = ReportPath | 'unknown'

export interface MeshNode {
  publicKey: string
  /** Short key prefix, or the peer's name when the hub knows one. */
  label: string
  endpoint: string | null
  natClass: string
  online: boolean
  /** Hub's clock, unix seconds, of its last path report; 0: none. */
  reportedAtS: number
}

export interface MeshPair {
  a: string
  b: string
  /** The pair's path: the worse of the two sides' views (a side that has not reported does not count). */
  path: PairPath
  /** What each side reports about the other. */
  aSays: PairPath
  bSays: PairPath
  /** The endpoint each side uses for the other (direct or trying). */
  aEndpoint: string | null
  bEndpoint: string | null
}

/** What `wgnat-server status --json` prints and the mesh page draws. */
export interface MeshView {
  interface: string
  publicKey: string
  now: number
  relay: boolean
  nodes: MeshNode[]
  /** Every unordered pair of nodes, a < b by key. */
  pairs: MeshPair[]
}

/** Worst first: a pair is as good as its worse side says. */
const ORDER: PairPath[] = ['unreachable', 'hub', 'trying', 'direct', 'unknown']

export function pairPath (aSays: PairPath, bSays: PairPath): PairPath {
  if (aSays === 'unknown') return bSays
  if (bSays === 'unknown') return aSays
  return ORDER.indexOf(aSays) <= ORDER.indexOf(bSays) ? aSays : bSays
}

/** Build the mesh view from the table and the reports. Pure. */
export function buildMeshView (init: { iface: string, publicKey: string, relay: boolean, nowS: number, names?: ReadonlyMap<string, string> }, peers: Iterable<TablePeer>, reports: PathReports): MeshView {
  const list = [...peers].sort((x, y) => x.publicKey < y.publicKey ? -1 : 1)
  const fresh = (key: string) => {
    const r = reports.get(key)
    return r !== undefined && init.nowS - r.atS <= REPORT_STALE_S ? r : undefined
  }
  const nodes: MeshNode[] = list.map((p) => ({
    publicKey: p.publicKey,
    label: init.names?.get(p.publicKey) ?? shortKey(p.publicKey),
    endpoint: p.endpoint,
    natClass: p.announce?.natClass ?? 'unknown',
    online: p.online,
    reportedAtS: reports.get(p.publicKey)?.atS ?? 0
  }))
  const pairs: MeshPair[] = []
  for (let i = 0; i < list.length; i++) {
    for (let j = i + 1; j < list.length; j++) {
      const a = list[i]!.publicKey
      const b = list[j]!.publicKey
      const ra = fresh(a)?.peers.get(b)
      const rb = fresh(b)?.peers.get(a)
      const aSays: PairPath = ra?.path ?? 'unknown'
      const bSays: PairPath = rb?.path ?? 'unknown'
      pairs.push({ a, b, path: pairPath(aSays, bSays), aSays, bSays, aEndpoint: ra?.endpoint ?? null, bEndpoint: rb?.endpoint ?? null })
    }
  }
  return { interface: init.iface, publicKey: init.publicKey, now: init.nowS, relay: init.relay, nodes, pairs }
}

const CELL: Record<PairPath, string> = { direct: 'direct', hub: 'via hub', trying: 'trying', unreachable: 'unreachable', unknown: '?' }

/** The human view of `wgnat-server status`: nodes, then a matrix of what each row's peer says about each column's. */
export function renderMeshView (v: MeshView): string {
  const lines = [`interface ${v.interface}  hub ${shortKey(v.publicKey)}  ${v.nodes.length} peers  hub ${v.relay ? 'relays' : 'does not relay'}`, '']
  const nodeRows = [['PEER', 'ENDPOINT', 'NAT', 'ONLINE', 'REPORTED']]
  for (const n of v.nodes) nodeRows.push([n.label, n.endpoint ?? '-', n.natClass, n.online ? 'yes' : 'no', n.reportedAtS === 0 ? 'never' : `${Math.max(0, v.now - n.reportedAtS)}s ago`])
  lines.push(...table(nodeRows), '')
  if (v.nodes.length < 2) { lines.push('(fewer than two peers: no pairs)'); return lines.join('\n') + '\n' }
  const byPair = new Map(v.pairs.flatMap((p) => [[`${p.a} ${p.b}`, p.aSays], [`${p.b} ${p.a}`, p.bSays]] as Array<[string, PairPath]>))
  const matrix = [['path (row -> column)', ...v.nodes.map((n) => n.label)]]
  for (const r of v.nodes) matrix.push([r.label, ...v.nodes.map((c) => c.publicKey === r.publicKey ? '-' : CELL[byPair.get(`${r.publicKey} ${c.publicKey}`) ?? 'unknown'])])
  lines.push(...table(matrix), '')
  const pairRows = [['PAIR', 'PATH', 'NAT', 'ENDPOINTS']]
  const label = new Map(v.nodes.map((n) => [n.publicKey, n]))
  for (const p of v.pairs) {
    const a = label.get(p.a)
    const b = label.get(p.b)
    pairRows.push([`${a?.label ?? ''} - ${b?.label ?? ''}`, CELL[p.path], `${a?.natClass ?? '?'}/${b?.natClass ?? '?'}`, `${p.aEndpoint ?? '-'} / ${p.bEndpoint ?? '-'}`])
  }
  lines.push(...table(pairRows))
  return lines.join('\n') + '\n'
}

function table (rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)))
  return rows.map((r) => r.map((c, i) => i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)).join('  ').trimEnd())
}
