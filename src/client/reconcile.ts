import { createHash } from 'node:crypto'
import { formatEndpoint, parseEndpoint, type Endpoint } from '../shared/ip.js'
import type { PeerChange } from '../shared/wg.js'
import type { WgDevice, WgPeer } from '../shared/wg-dump.js'
import type { DesiredPeer } from './vet-table.js'

/**
 * Where a managed peer's traffic goes.
 * - `arming` (only with punching): we punched towards the peer from the WireGuard port and wait until the peer
 *   says it punched too (or a short timeout), so that neither NAT sees the other's handshake before its own punch.
 * - `trying`: endpoint and keepalive set, no allowed IPs: traffic still goes through the hub while WireGuard handshakes.
 * - `direct`: a handshake proved the direct path; the peer's allowed IPs are on it.
 * - `hub`: the last attempt failed; waiting for the next one (keepalive off, no allowed IPs).
 */
export type PathPhase = 'arming' | 'trying' | 'direct' | 'hub'

export interface PeerTrack {
  phase: PathPhase
  /** When the current phase began (ms). */
  sinceMs: number
  /** Failed attempts in a row, for backoff. */
  failures: number
  /** In `hub`: when to try again (ms). */
  retryAtMs: number
  /** The endpoint being tried or used. */
  endpoint: string | null
  /** The candidate endpoints (LAN ones, then the public one) when this phase began: new ones are a reason to try again. */
  targets: string | null
  /** Last seen transfer-rx and when it last grew: a direct path that receives nothing is dead. */
  rx: number
  rxAtMs: number
  /** Why the peer is in this phase, for logs and status. */
  reason: string
  /** NAT classes of both sides when the last attempt failed: a change is worth a new attempt. */
  classes?: string
}

/** Timings of the path machine. Tests shorten them; each has its reason. */
export interface PathTiming {
  /** No handshake this long after an endpoint was set: the direct path does not work; back to the hub. */
  directTimeoutMs: number
  /** First wait before trying a failed pair again; doubles per failure. */
  retryBaseMs: number
  /** Longest wait between attempts. */
  retryMaxMs: number
  /** A direct peer that sent nothing for this long is dead (it sends a keepalive at least every keepalive seconds). */
  deadAfterMs: number
  /** Persistent keepalive for direct and trying peers, seconds: keeps NAT mappings open. */
  keepaliveS: number
  /** After this many failed attempts in a row, stop trying until an endpoint or a NAT class changes. */
  maxFailures: number
  /** Arming: the least time between our punch and our handshake, so the punch is out before WireGuard sends. */
  armMinMs: number
  /** Arming: go ahead without the peer's word after this long (it may not punch at all). */
  armTimeoutMs: number
}

export function defaultTiming (keepaliveS: number): PathTiming {
  return {
    directTimeoutMs: 10_000,
    retryBaseMs: 15_000,
    retryMaxMs: 300_000,
    // Two missed keepalives plus slack for a rekey.
    deadAfterMs: (keepaliveS * 2 + 10) * 1000,
    keepaliveS,
    maxFailures: 4,
    armMinMs: 300,
    armTimeoutMs: 3000
  }
}

export interface ReconcileInput {
  nowMs: number
  selfKey: string
  device: WgDevice
  /** Vetted registry table; null when none was fetched yet (then nothing is added or removed). */
  desired: ReadonlyMap<string, DesiredPeer> | null
  tracks: ReadonlyMap<string, PeerTrack>
  timing: PathTiming
  /** This client's NAT class and public address as the hub sees it (unknown/null before the first discovery). */
  self?: { natClass: string, publicAddress: string | null }
  /** Punch before each attempt and coordinate with the peer (phase `arming`). @default false */
  punching?: boolean
  /**
   * The hub forwards between spokes (the table's `relay`). Then an attempt carries no allowed IPs until a handshake
   * proves the path, so traffic keeps flowing through the hub. When it does not, the hub path carries nothing
   * between spokes: there is nothing to protect, and the peer's allowed IPs go on with the attempt, so traffic
   * flows the moment the handshake completes (and its first packet starts the handshake). @default true
   */
  hubRelays?: boolean
}

export interface PathEvent { publicKey: string, from: PathPhase | 'new', to: PathPhase | 'removed', reason: string }

export interface ReconcileOutput {
  /** Everything to apply, in one `wg set`. */
  changes: PeerChange[]
  /** The managed peers after the changes. */
  tracks: Map<string, PeerTrack>
  events: PathEvent[]
}

/**
 * The pure heart of the client: given the interface, the vetted table and what it manages, decide the next changes.
 * A peer's allowed IPs go on only after a handshake proves the direct path, so a pair is never worse than the hub.
 */
export function reconcile (input: ReconcileInput): ReconcileOutput {
  const { nowMs, device, desired, timing } = input
  const devicePeers = new Map(device.peers.map((p) => [p.publicKey, p]))
  const tracks = new Map<string, PeerTrack>()
  const changes: PeerChange[] = []
  const events: PathEvent[] = []

  const move = (key: string, old: PeerTrack | undefined, next: PeerTrack): void => {
    tracks.set(key, next)
    if (old?.phase !== next.phase) events.push({ publicKey: key, from: old?.phase ?? 'new', to: next.phase, reason: next.reason })
  }

  // Managed peers the registry no longer lists (or that were vetted out) are removed.
  for (const [key, track] of input.tracks) {
    if (desired !== null && !desired.has(key)) {
      if (devicePeers.has(key)) changes.push({ publicKey: key, remove: true })
      events.push({ publicKey: key, from: track.phase, to: 'removed', reason: 'no longer in the registry table' })
    } else if (desired === null) {
      tracks.set(key, silenceCheck(key, track, devicePeers.get(key), nowMs, timing, changes, events))
    }
  }
  if (desired === null) return { changes, tracks, events }

  const selfClass = input.self?.natClass ?? 'unknown'
  const selfPublic = input.self?.publicAddress ?? null
  const routesEarly = input.hubRelays === false

  for (const [key, want] of desired) {
    const old = input.tracks.get(key)
    const onDevice = devicePeers.get(key)
    const candidates = candidatesOf(want, selfPublic)
    const classes = `${selfClass}/${want.natClass}`
    // The endpoint for attempt number `failures`: LAN candidates first, then the public one, round and round.
    const pick = (failures: number): Endpoint | undefined => candidates[failures % Math.max(1, candidates.length)]
    const wantEndpoint = want.endpoint === null ? null : formatEndpoint(want.endpoint)
    const targets = candidates.length === 0 ? null : candidates.map(formatEndpoint).join(',')

    // Start an attempt: straight away, or, with punching, after arming.
    const begin = (endpoint: Endpoint, failures: number, reason: string): void => {
      if (input.punching !== true) changes.push(attempt(key, endpoint, timing, routesEarly ? want.allowedIps : []))
      move(key, old, fresh(input.punching === true ? 'arming' : 'trying', nowMs, formatEndpoint(endpoint), onDevice, failures, reason, targets))
    }

    if (old?.phase === 'arming') {
      const waited = nowMs - old.sinceMs
      if (old.endpoint !== null && waited >= timing.armMinMs && (want.readyFor || waited >= timing.armTimeoutMs)) {
        changes.push(attempt(key, parseEndpoint(old.endpoint), timing, routesEarly ? want.allowedIps : []))
        move(key, old, { ...old, phase: 'trying', sinceMs: nowMs, reason: want.readyFor ? `both sides punched; handshaking with ${old.endpoint}` : `peer did not punch; handshaking with ${old.endpoint} anyway` })
      } else {
        tracks.set(key, old)
      }
      continue
    }

    if (old === undefined || onDevice === undefined) {
      // New to us, or gone from the interface behind our back: start an attempt if there is somewhere to go.
      const first = pick(0)
      if (first === undefined || hopeless(selfClass, want, candidates)) continue
      begin(first, 0, first === want.endpoint ? 'endpoint from the registry' : 'LAN endpoint (same public address)')
      continue
    }

    const track = { ...old }
    if (onDevice.transferRx !== track.rx) { track.rx = onDevice.transferRx; track.rxAtMs = nowMs }
    const handshakeSinceStart = onDevice.latestHandshake > 0 && onDevice.latestHandshake * 1000 >= track.sinceMs - HANDSHAKE_CLOCK_SLACK_MS
    const endpointMoved = targets !== null && targets !== track.targets

    switch (track.phase) {
      case 'trying': {
        const next = pick(0)
        if (handshakeSinceStart) {
          changes.push({ publicKey: key, allowedIps: want.allowedIps })
          move(key, old, { ...track, phase: 'direct', sinceMs: nowMs, failures: 0, rxAtMs: nowMs, reason: `handshake on the direct path (${track.endpoint ?? '?'})` })
        } else if (endpointMoved && next !== undefined) {
          begin(next, 0, 'new endpoint from the registry')
        } else if (nowMs - track.sinceMs >= timing.directTimeoutMs) {
          const failures = track.failures + 1
          const parked = failures >= timing.maxFailures * Math.max(1, candidates.length)
          // Allowed IPs off too: they may have gone on early (hub not relaying), and the hub may relay by now.
          changes.push({ publicKey: key, persistentKeepalive: 0, ...(onDevice.allowedIps.length > 0 ? { allowedIps: [] } : {}) })
          move(key, old, {
            ...track,
            phase: 'hub',
            sinceMs: nowMs,
            failures,
            classes,
            retryAtMs: parked ? Number.POSITIVE_INFINITY : retryAt(nowMs, failures, input.selfKey, key, timing),
            reason: parked
              ? `no handshake in ${failures} attempts; waiting for a new endpoint or NAT class`
              : `no handshake within ${timing.directTimeoutMs / 1000}s from ${track.endpoint ?? '?'}`
          })
        } else {
          // Routes put on early while the hub did not relay come off if it relays now: the hub path is the safe one.
          if (!routesEarly && onDevice.allowedIps.length > 0) changes.push({ publicKey: key, allowedIps: [] })
          tracks.set(key, track)
        }
        break
      }

      case 'direct': {
        const checked = silenceCheck(key, track, onDevice, nowMs, timing, changes, events)
        if (checked.phase === 'hub') {
          tracks.set(key, checked)
        } else if (endpointMoved && track.endpoint !== null && candidates.some((c) => formatEndpoint(c) === track.endpoint)) {
          // New candidates, but the one in use is still among them: nothing to change.
          tracks.set(key, { ...track, targets })
        } else if (endpointMoved && pick(0) !== undefined && (want.natClass !== 'hard' || nowMs - track.rxAtMs > timing.keepaliveS * 1000 + QUIET_SLACK_MS)) {
          // The endpoint we use is no longer among the peer's: its NAT moved (a rebooted router, a new network).
          // Follow at once. Behind a symmetric NAT the hub sees another port than we do, so there we follow only
          // once our path has gone quiet; until then WireGuard's roaming knows better than the registry.
          const next = pick(0) as Endpoint
          changes.push({ ...attempt(key, next, timing, []), allowedIps: undefined })
          tracks.set(key, { ...track, endpoint: formatEndpoint(next), targets, reason: `peer moved to ${formatEndpoint(next)}` })
        } else {
          if (!sameList(onDevice.allowedIps, want.allowedIps)) changes.push({ publicKey: key, allowedIps: want.allowedIps })
          tracks.set(key, track)
        }
        break
      }

      case 'hub': {
        const classesChanged = track.classes !== undefined && track.classes !== classes
        const next = endpointMoved || classesChanged ? pick(0) : pick(track.failures)
        if (onDevice.latestHandshake > 0 && onDevice.latestHandshake * 1000 >= track.sinceMs - HANDSHAKE_CLOCK_SLACK_MS) {
          // The other side's attempt got through while we waited (handshake times are whole seconds).
          changes.push({ publicKey: key, allowedIps: want.allowedIps, persistentKeepalive: timing.keepaliveS })
          move(key, old, { ...track, phase: 'direct', sinceMs: nowMs, failures: 0, rxAtMs: nowMs, reason: 'handshake from the peer' })
        } else if (next !== undefined && !hopeless(selfClass, want, candidates) && (endpointMoved || classesChanged || nowMs >= track.retryAtMs)) {
          const fresher = endpointMoved || classesChanged
          begin(next, fresher ? 0 : track.failures,
            endpointMoved ? 'new endpoint from the registry' : classesChanged ? `NAT class changed (${classes})` : `retry ${track.failures + 1}`)
        } else {
          tracks.set(key, track)
        }
        break
      }
    }
  }
  return { changes, tracks, events }
}

/**
 * Where to try a peer, best first: behind the same public address as us, its LAN endpoints first (most home
 * routers do not hairpin); then the endpoint the hub sees.
 */
export function candidatesOf (want: DesiredPeer, selfPublicAddress: string | null): Endpoint[] {
  if (want.endpoint === null) return []
  if (selfPublicAddress !== null && want.endpoint.address === selfPublicAddress && want.candidates.length > 0) {
    return [...want.candidates, want.endpoint]
  }
  return [want.endpoint]
}

/**
 * Both sides behind symmetric NATs and only the public path to try: neither can guess the other's port, so no
 * attempt is made. Behind the same router the LAN path crosses no NAT and is always worth a try.
 */
function hopeless (selfClass: string, want: DesiredPeer, candidates: Endpoint[]): boolean {
  return selfClass === 'hard' && want.natClass === 'hard' && candidates.length <= 1
}

/**
 * Set an endpoint and keepalive: WireGuard handshakes at once (kicked, even if keepalive was already on). Without
 * allowed IPs (the hub relays) the traffic stays on the hub meanwhile; with them (it does not) it goes direct at once.
 */
function attempt (publicKey: string, endpoint: Endpoint, timing: PathTiming, allowedIps: string[]): PeerChange {
  return { publicKey, endpoint, persistentKeepalive: timing.keepaliveS, allowedIps, kick: true }
}

function fresh (phase: PathPhase, nowMs: number, endpoint: string, onDevice: WgPeer | undefined, failures: number, reason: string, targets: string | null): PeerTrack {
  return { phase, sinceMs: nowMs, failures, retryAtMs: 0, endpoint, targets, rx: onDevice?.transferRx ?? 0, rxAtMs: nowMs, reason }
}

/** WireGuard reports handshake times in whole seconds: a handshake within this much before a phase began counts. */
const HANDSHAKE_CLOCK_SLACK_MS = 1000
/** A direct path counts as quiet when nothing arrived for a keepalive interval plus this. */
const QUIET_SLACK_MS = 5000

/** Never retry sooner than this after a failure. */
const MIN_RETRY_WAIT_MS = 1000

/**
 * When to try a failed pair again: exponential backoff, aligned to a slot both sides compute the same way from the
 * pair's keys, so their attempts coincide (a port-restricted NAT needs both to send at about the same time).
 */
export function retryAt (nowMs: number, failures: number, keyA: string, keyB: string, timing: PathTiming): number {
  const period = Math.min(timing.retryMaxMs, timing.retryBaseMs * 2 ** Math.max(0, failures - 1))
  const pair = [keyA, keyB].sort().join('')
  const offset = createHash('sha256').update(pair).digest().readUInt32BE(0) % period
  const next = Math.floor((nowMs - offset) / period) * period + period + offset
  return next - nowMs < MIN_RETRY_WAIT_MS ? next + period : next
}

/**
 * A direct path that received nothing for `deadAfterMs` goes back to the hub (which may relay). Also run without a
 * table (the registry unreachable since start), so adopted direct paths are watched too.
 */
function silenceCheck (key: string, track: PeerTrack, onDevice: WgPeer | undefined, nowMs: number, timing: PathTiming, changes: PeerChange[], events: PathEvent[]): PeerTrack {
  if (track.phase !== 'direct' || onDevice === undefined) return track
  const next = { ...track }
  if (onDevice.transferRx !== next.rx) { next.rx = onDevice.transferRx; next.rxAtMs = nowMs }
  if (nowMs - next.rxAtMs < timing.deadAfterMs) return next
  changes.push({ publicKey: key, allowedIps: [], persistentKeepalive: 0 })
  const reason = `direct path silent for ${Math.round((nowMs - next.rxAtMs) / 1000)}s`
  events.push({ publicKey: key, from: 'direct', to: 'hub', reason })
  return { ...next, phase: 'hub', sinceMs: nowMs, failures: 0, retryAtMs: nowMs + Math.min(timing.retryBaseMs, 2000), reason }
}

/**
 * Tracks for the peers a previous run left on the interface (from the state file): a peer with allowed IPs keeps
 * its direct path (until the silence check says otherwise); any other starts a fresh attempt on the next reconcile.
 */
export function adoptTracks (device: WgDevice, managed: Iterable<string>, nowMs: number, _timing: PathTiming): Map<string, PeerTrack> {
  const tracks = new Map<string, PeerTrack>()
  for (const key of managed) {
    const peer = device.peers.find((p) => p.publicKey === key)
    if (peer === undefined) continue
    const endpoint = peer.endpoint === null ? null : formatEndpoint(peer.endpoint)
    // A peer with allowed IPs carries traffic now: keep it direct and let the silence check demote it if the path is
    // dead (WireGuard re-handshakes only every two minutes, so handshake age says little).
    const live = peer.allowedIps.length > 0
    tracks.set(key, {
      ...fresh(live ? 'direct' : 'hub', nowMs, endpoint ?? '', peer, 0, live ? 'adopted from the previous run' : 'adopted; will try again', endpoint),
      endpoint,
      retryAtMs: nowMs
    })
  }
  return tracks
}

function sameList (a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x))
}
