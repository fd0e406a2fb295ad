import { Option } from 'commander'
import { runCommand, type RunIo } from '../../shared/cli.js'
import { formatEndpoint } from '../../shared/ip.js'
import { wgCli, type WgControl } from '../../shared/wg.js'
import { peersOf } from '../../shared/wg-quick-config.js'
import { readPeerNames } from '../inventory/peer-names.js'
import { evaluatePolicy, type PolicyEvaluation } from '../policy/evaluate-policy.js'
import { loadPolicy } from '../policy/load-policy.js'
import { hostAddressOf } from './hub-config.js'
import { hubProgram, type HubCommandOptions } from './hub-options.js'
import { HubStore, loadConfig } from './hub-store.js'

/** One row of `wgnat-server peers --json`. */
export interface PeerRow {
  /** Null for a peer added by hand (not through add-peer). */
  name: string | null
  /** The peer's tunnel address (its first host prefix), or null. */
  address: string | null
  publicKey: string
  allowedIps: string[]
  /** What the live interface sees; null when the interface is down or the peer never connected. */
  endpoint: string | null
  /** Unix seconds; 0 = never or not live. */
  latestHandshake: number
  /** In the saved config (survives wg-quick down/up). */
  saved: boolean
  /** On the live interface. */
  live: boolean
  /** With `--policy`: the peers (names, else public keys) this one may open connections to. Absent: no policy given. */
  mayOpen?: string[]
}

export interface PeersReport {
  interface: string
  up: boolean
  peers: PeerRow[]
}

/** Pure: the rows from the saved config, the live device's peers (if up) and the names. */
export function peerRows (saved: ReturnType<typeof peersOf>, live: Array<{ publicKey: string, allowedIps: string[], endpoint: string | null, latestHandshake: number }> | undefined, names: ReadonlyMap<string, string>): PeerRow[] {
  const rows = new Map<string, PeerRow>()
  for (const p of saved) {
    rows.set(p.publicKey, { name: names.get(p.publicKey) ?? null, address: hostAddressOf(p.allowedIps) ?? null, publicKey: p.publicKey, allowedIps: p.allowedIps, endpoint: null, latestHandshake: 0, saved: true, live: false })
  }
  for (const p of live ?? []) {
    const row = rows.get(p.publicKey) ?? { name: names.get(p.publicKey) ?? null, address: hostAddressOf(p.allowedIps) ?? null, publicKey: p.publicKey, allowedIps: p.allowedIps, endpoint: null, latestHandshake: 0, saved: false, live: false }
    rows.set(p.publicKey, { ...row, endpoint: p.endpoint, latestHandshake: p.latestHandshake, live: true })
  }
  return [...rows.values()]
}

/** Pure: each row with the peers the access policy lets it open connections to. */
export function withPolicy (rows: PeerRow[], evaluation: Pick<PolicyEvaluation, 'mayInitiate'>): PeerRow[] {
  return rows.map((r) => ({ ...r, mayOpen: rows.filter((o) => o.publicKey !== r.publicKey && evaluation.mayInitiate(r.publicKey, o.publicKey)).map((o) => o.name ?? o.publicKey) }))
}

/** The human view, rendered from the report. */
export function renderPeers (report: PeersReport, nowS: number): string {
  const ago = (t: number): string => t === 0 ? 'never' : `${Math.max(0, nowS - t)}s ago`
  const policy = report.peers.some((p) => p.mayOpen !== undefined)
  const rows = [['NAME', 'ADDRESS', 'PUBLIC KEY', 'ENDPOINT', 'HANDSHAKE', ...(policy ? ['MAY OPEN TO (POLICY)'] : []), 'NOTE']]
  for (const p of report.peers) {
    const note = !report.up ? '' : !p.live ? 'not on the live interface' : !p.saved ? 'not in the saved config' : ''
    const mayOpen = p.mayOpen === undefined || p.mayOpen.length === 0 ? '-' : p.mayOpen.map((k) => k.length === 44 ? k.slice(0, 8) : k).join(',')
    rows.push([p.name ?? '-', p.address ?? '-', p.publicKey, p.endpoint ?? '-', report.up ? ago(p.latestHandshake) : '-', ...(policy ? [mayOpen] : []), note])
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)))
  const lines = [`${report.interface}: ${report.peers.length} peer${report.peers.length === 1 ? '' : 's'}${report.up ? '' : ' (interface down: saved config only)'}`]
  for (const r of rows) lines.push(r.map((c, i) => i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)).join('  ').trimEnd())
  return lines.join('\n') + '\n'
}

export function peersProgram () {
  return hubProgram('wgnat-server peers', 'List the hub\'s peers: name, address, public key, endpoint, last handshake.')
    .addOption(new Option('--json', 'print the report as JSON').default(false))
    .addOption(new Option('--policy <file>', 'also show whom each peer may open connections to under this access policy (docs/policy.md)').env('WGNAT_POLICY'))
}

/** `wgnat-server peers`: read-only (takes no lock, repairs nothing). */
export async function runPeers (argv: string[], io?: RunIo, components: { wg?: WgControl } = {}): Promise<number> {
  const wg = components.wg ?? wgCli()
  return await runCommand(peersProgram(), argv, async (raw, out) => {
    const opts = raw as unknown as HubCommandOptions & { json: boolean, policy?: string }
    const iface = opts.interface
    const config = await loadConfig(opts.configDir, iface)
    const store = new HubStore({ iface, configDir: opts.configDir, stateDir: opts.stateDir }, { wg, notice: () => {} })
    const device = await store.live()
    const names = await readPeerNames(opts.stateDir, iface)
    const live = device?.peers.map((p) => ({ publicKey: p.publicKey, allowedIps: p.allowedIps, endpoint: p.endpoint === null ? null : formatEndpoint(p.endpoint), latestHandshake: p.latestHandshake }))
    let rows = peerRows(peersOf(config), live, names)
    if (opts.policy !== undefined) {
      const loaded = await loadPolicy(opts.policy, opts.stateDir, iface)
      rows = withPolicy(rows, evaluatePolicy(loaded.policy, rows, loaded.names))
    }
    const report: PeersReport = { interface: iface, up: device !== undefined, peers: rows }
    out(opts.json ? JSON.stringify(report, null, 2) + '\n' : renderPeers(report, Math.floor(Date.now() / 1000)))
  }, io)
}
