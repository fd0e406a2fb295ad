import type { WgPeer } from '../../shared/wg-dump.js'
import type { PeerTrack, ReconcileInput, ReconcileOutput } from './reconcile.js'
import type { DesiredPeer } from './vet-table.js'

/** What the last reconcile that found every peer quiet on the hub read, and what it gave. */
interface QuietRead {
  desired: ReadonlyMap<string, DesiredPeer>
  tracks: Map<string, PeerTrack>
  timing: ReconcileInput['timing']
  context: string
  /** The first retry due among the tracks (a parked peer has none: infinity). */
  untilMs: number
  /** The interface's managed peers as read then, by key: the same objects mean the same lines (WgDumpReader). */
  peers: Map<string, WgPeer>
}

/**
 * Skips a reconcile that could only repeat the previous one (issue 16: a client with 1,000 peers parked on the hub
 * reads its interface every 30 s, and each read walked the path machine over every peer, building two 1,000-entry
 * maps, only to keep every track as it was).
 *
 * After a reconcile that changed nothing (no `wg` change, no event) and kept every track, the same object, in the
 * phase `hub` (quiet on the hub: quiet-on-hub.ts), the next reconcile gives the same output when it reads the same
 * things: the same desired table (vetted tables are never changed in place), the same tracks (the client makes the
 * output its tracks), the same self (NAT class, public address, IPv6, port mapping), punching and relay settings,
 * no network change, no retry due yet, and the same interface peer objects for the managed peers: WgDumpReader gives
 * an unchanged dump line back as the same frozen object, so identity means nothing of the peer changed (a peer whose
 * counters or handshake moved, or any read parsed afresh, is a new object and the reconcile runs). Peers we do not
 * manage (the hub, others') are not read by reconcile and may change freely. Pure apart from its memory of the last
 * quiet read; the caller runs `reconcile` whenever `reuse` gives nothing, and gives every result to `record`.
 */
export class QuietReads {
  private last: QuietRead | undefined

  /** The previous output (fresh arrays, the same tracks map) if `input` would give it again; else undefined. */
  reuse (input: ReconcileInput): ReconcileOutput | undefined {
    const m = this.last
    if (m === undefined || input.networkChanged === true || input.desired !== m.desired || input.tracks !== m.tracks) return undefined
    if (input.timing !== m.timing || input.nowMs >= m.untilMs || contextOf(input) !== m.context) return undefined
    // Indexed loops over every peer, not for-of: this runs cold, every 30 s at rest, where for-of allocates an
    // iterator result per element and costs several times the CPU (issue 16).
    const peers = input.device.peers
    let seen = 0
    for (let i = 0; i < peers.length; i++) {
      const p = peers[i] as WgPeer
      const before = m.peers.get(p.publicKey)
      if (before === undefined) continue
      if (before !== p) return undefined
      seen++
    }
    if (seen !== m.peers.size) return undefined
    return { changes: [], tracks: m.tracks, events: [] }
  }

  /** Remember `out` if it was a quiet read (see above), else forget. Returns `out`. */
  record (input: ReconcileInput, out: ReconcileOutput): ReconcileOutput {
    if (this.last !== undefined && out.tracks === this.last.tracks) return out
    this.last = quietRead(input, out)
    return out
  }
}

function quietRead (input: ReconcileInput, out: ReconcileOutput): QuietRead | undefined {
  const desired = input.desired
  if (desired === null || input.networkChanged === true || out.changes.length > 0 || out.events.length > 0) return undefined
  if (out.tracks.size !== input.tracks.size || out.tracks.size !== desired.size) return undefined
  let untilMs = Number.POSITIVE_INFINITY
  let quiet = true
  out.tracks.forEach((t, key) => {
    if (t.phase !== 'hub' || input.tracks.get(key) !== t || !desired.has(key)) quiet = false
    else untilMs = Math.min(untilMs, t.retryAtMs)
  })
  if (!quiet) return undefined
  const peers = new Map<string, WgPeer>()
  input.device.peers.forEach((p) => { if (desired.has(p.publicKey)) peers.set(p.publicKey, p) })
  if (peers.size !== desired.size) return undefined
  return { desired, tracks: out.tracks, timing: input.timing, context: contextOf(input), untilMs, peers }
}

/** Everything else a quiet peer's decision reads. */
function contextOf (input: ReconcileInput): string {
  const s = input.self
  return [input.selfKey, s?.natClass ?? 'unknown', s?.publicAddress ?? '', s?.portMapped === true, s?.ipv6 === true, input.punching === true, input.hubRelays ?? 'unset'].join('|')
}
