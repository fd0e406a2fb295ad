import type { PeerTrack } from '../paths/reconcile.js'
import type { DesiredPeer } from '../paths/vet-table.js'
import { shortKey } from '../../shared/wg-dump.js'
import { candidateKind, type CandidateKind } from '../paths/candidate-kind.js'
import type { PortMappingStatus } from '../portmap/port-mapper.js'

/** How a peer's traffic flows, as `wgnat-client status` shows it. */
export type PathStatus = 'direct' | 'trying' | 'via hub' | 'unreachable'

export interface PeerStatus {
  publicKey: string
  /** Its name on the hub, when the registry serves one. */
  name?: string
  path: PathStatus
  endpoint: string | null
  natClass: string
  /** Unix seconds of the last handshake on this interface; 0 = never. */
  latestHandshake: number
  /** Unix seconds when the peer entered this path. */
  sinceS: number
  reason: string
  /** The hub's access policy lets the peer open connections to us; false: only we to it (filtered here). */
  mayInitiate: boolean
  /** Which of the peer's candidates the endpoint is (direct or trying): `mapped`, `ipv6`, `lan` or `ipv4`; null otherwise. */
  candidate?: CandidateKind | null
}

/** What the running client knows, served as JSON on its status socket; the table view is rendered from it. */
export interface ClientStatus {
  interface: string
  publicKey: string
  registry: { url: string, reachable: boolean, version: number, relay: boolean, lastSyncS: number }
  self: {
    endpoint: string | null
    natClass: string
    mappedEndpoint: string | null
    /** Our router's port mapping of the WireGuard port, if it granted one. */
    portMapping?: PortMappingStatus | null
    /** Why this NAT class (the classifier's reason), or why it is not known yet. */
    natReason?: string
    /** Why raw-socket features (STUN from the WireGuard port, punching) are off, with the command that fixes it. */
    rawProblem?: string | null
  }
  peers: PeerStatus[]
}

/** The path a peer is on, from its track (if managed) and what the hub does for pairs without a direct path. */
export function peerStatus (key: string, track: PeerTrack | undefined, want: DesiredPeer | undefined, handshake: number, relay: boolean, selfClass = 'unknown'): PeerStatus {
  const fallback: PathStatus = relay ? 'via hub' : 'unreachable'
  const path: PathStatus = track === undefined ? fallback : track.phase === 'direct' ? 'direct' : track.phase === 'trying' || track.phase === 'arming' ? 'trying' : fallback
  return {
    publicKey: key,
    ...(want?.name === undefined ? {} : { name: want.name }),
    path,
    endpoint: track?.endpoint ?? (want?.endpoint === null || want === undefined ? null : `${want.endpoint.address}:${want.endpoint.port}`),
    natClass: want?.natClass ?? 'unknown',
    latestHandshake: handshake,
    sinceS: Math.floor((track?.sinceMs ?? 0) / 1000),
    mayInitiate: want?.mayInitiate ?? true,
    candidate: path === 'direct' || path === 'trying' ? candidateKind(want, track?.endpoint ?? null) : null,
    reason: track?.reason ?? (want?.endpoint == null
      ? 'no endpoint known to the hub'
      : selfClass === 'hard' && want.natClass === 'hard' ? 'both behind symmetric NATs: no direct path possible' : 'not tried yet')
  }
}

/** The human view: one line per peer. */
export function renderStatus (s: ClientStatus, nowS: number): string {
  const ago = (t: number): string => t === 0 ? 'never' : `${Math.max(0, nowS - t)}s ago`
  const lines = [
    `interface ${s.interface}  key ${shortKey(s.publicKey)}  public ${s.self.endpoint ?? '?'}  NAT ${s.self.natClass}${s.self.mappedEndpoint === null ? '' : ` (STUN ${s.self.mappedEndpoint})`}` +
      (s.self.portMapping == null ? '' : `  port mapping ${s.self.portMapping.endpoint} (${s.self.portMapping.protocol})`),
    ...(s.self.rawProblem != null
      ? [`NAT ${s.self.natClass} because ${s.self.rawProblem}`]
      : s.self.natClass === 'unknown' && s.self.natReason !== undefined ? [`NAT unknown: ${s.self.natReason}`] : []),
    `registry ${s.registry.url}  ${s.registry.reachable ? 'reachable' : 'UNREACHABLE'}  version ${s.registry.version}  last sync ${ago(s.registry.lastSyncS)}  hub ${s.registry.relay ? 'relays' : 'does not relay'}`,
    ''
  ]
  const rows = [['PEER', 'PATH', 'ENDPOINT', 'NAT', 'HANDSHAKE', 'SINCE', 'OPENS TO US', 'VIA', 'WHY']]
  for (const p of s.peers) rows.push([p.name ?? shortKey(p.publicKey), p.path, p.endpoint ?? '-', p.natClass, ago(p.latestHandshake), p.sinceS === 0 ? '-' : ago(p.sinceS), p.mayInitiate === false ? 'no (policy)' : 'yes', p.candidate ?? '-', p.reason])
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)))
  for (const r of rows) lines.push(r.map((c, i) => i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)).join('  '))
  if (s.peers.length === 0) lines.push('(no other peers)')
  return lines.join('\n') + '\n'
}
