import { nodeCrypto } from '../../shared/lazy-crypto.js'
import { formatEndpoint, parseEndpoint, type Endpoint } from '../../shared/ip.js'
import type { PeerChange } from '../../shared/wg.js'
import type { WgDevice, WgPeer } from '../../shared/wg-dump.js'
import type { DesiredPeer } from './vet-table.js'
import { candidateKind, candidateReason } from './candidate-kind.js'
import { orderCandidates } from './candidate-order.js'
import { peerTargets } from './peer-targets.js'
import { quietOnHub, type QuietInput } from './quiet-on-hub.js'
import { needsFreshPeer } from './fresh-peer.js'
import { crossedHandshakes, reinitiatesFirst } from './crossed-handshakes.js'

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
  /** Direct: last seen transfer-tx, and its value when rx last grew (what we sent since is unanswered). */
  tx?: number
  txAtRx?: number
  /** Direct: since when more than {@link UNANSWERED_BYTES} went out with nothing back (0: not so). */
  unansweredSinceMs?: number
  /** Direct: a probe (a fresh handshake) is out since then (0: none). */
  probeAtMs?: number
  /** Direct: when the last probe was answered; no new probe for `probeHoldoffMs` after it. */
  probeOkAtMs?: number
  /** Direct: data (not only keepalives) went out since the previous check: worth checking more often. */
  busy?: boolean
  /** When this peer last lost a working direct path (retries stay frequent for a while after). */
  lostAtMs?: number
  /** Hub: the peer's "ready for us" was already answered with an attempt. */
  readySeen?: boolean
  /** Fresh attempts the peer's own changes may still start at once (a token bucket; see FRESH_BURST), and when it was last spent. */
  freshTokens?: number
  freshAtMs?: number
  /**
   * Trying, or a direct peer probed: when a read last found bytes from the peer with no handshake yet
   * (crossed-handshakes.ts), and re-initiations so far.
   */
  heardAtMs?: number
  reinitiations?: number
  /** Trying, handshake done: the routes move at this instant, which both sides compute alike (0: at once). */
  promoteAtMs?: number
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
  /** Data went out to a direct peer and nothing came back for this long: probe the path (a fresh handshake). */
  suspectAfterMs: number
  /** A probe not answered within this long: the direct path is dead; its routes go back to the hub. */
  probeTimeoutMs: number
  /** After an answered probe, no new one for this long (a one-way stream gets an answer only this often). */
  probeHoldoffMs: number
  /** Data unanswered for this long is a dead path, probe or not: WireGuard answers data within 10 s at the latest. */
  answerTimeoutMs: number
  /** After a lost direct path: retries at most this far apart (on the pair's slots) for `lostWindowMs`. */
  lostRetryMaxMs: number
  lostWindowMs: number
}

/**
 * What a peer announces (new candidates, a new NAT class, "I punched towards you") starts a fresh attempt at once,
 * backoff forgotten: that is how a rebooted router is followed within seconds. But a peer controls what it
 * announces, and each attempt sends handshakes to the addresses it names (its LAN candidates may be anyone's): so
 * such fresh starts come from a bucket of FRESH_BURST, refilled by one every FRESH_REFILL_MS. A peer flapping its
 * announcements makes us send at most a few packets every FRESH_REFILL_MS; a real change is still followed at once.
 */
export const FRESH_BURST = 3
export const FRESH_REFILL_MS = 10_000

/**
 * Marks the class of a peer that has announced nothing yet (vet-table.ts `silent`). A pair that failed while the peer
 * was silent tries again when it first announces: its wgnat has started and configured us since, so its handshakes
 * now come towards ours (without this, a client that starts well after its peers waits for their retry slots, or
 * for ever where they parked).
 */
export const SILENT_CLASS = ' (silent)'

/** Why a change of classes starts a new attempt, for the path log. Pure. */
function classesReason (before: string | undefined, now: string): string {
  return before?.endsWith(SILENT_CLASS) === true && !now.endsWith(SILENT_CLASS) ? 'the peer started announcing' : `NAT class changed (${now})`
}

/** May the peer's announced change start an attempt now? Returns the bucket after spending one, or undefined. */
function spendFresh (track: PeerTrack, nowMs: number): { freshTokens: number, freshAtMs: number } | undefined {
  const level = Math.min(FRESH_BURST, (track.freshTokens ?? FRESH_BURST) + Math.max(0, nowMs - (track.freshAtMs ?? nowMs)) / FRESH_REFILL_MS)
  return level >= 1 ? { freshTokens: level - 1, freshAtMs: nowMs } : undefined
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
    armTimeoutMs: 3000,
    // With the client's 1 s check while data flows: a path that dies is seen within 1-2 s, probed 0.5 s later and
    // given up 1 s after that: the longest outage stays under 5 s (issue 11's goal).
    suspectAfterMs: 500,
    probeTimeoutMs: 1000,
    // WireGuard's KEEPALIVE_TIMEOUT: a live peer that receives data sends something back within 10 s.
    probeHoldoffMs: 10_000,
    answerTimeoutMs: 12_000,
    // Healed within 30 s: an attempt lasts directTimeoutMs (10 s), the next one starts at most 15 s later.
    lostRetryMaxMs: 15_000,
    lostWindowMs: 10 * 60_000
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
  /**
   * This client's NAT class and public address as the hub sees it (unknown/null before the first discovery), and
   * whether its router granted it a port mapping (peers can then reach it even when both NATs are hard).
   */
  self?: { natClass: string, publicAddress: string | null, portMapped?: boolean, ipv6?: boolean }
  /** Punch before each attempt and coordinate with the peer (phase `arming`). @default false */
  punching?: boolean
  /**
   * Our own network changed since the last call (a netlink address/link/route event, a new STUN mapping): every
   * direct peer is kicked (WireGuard sends to it at once from the WireGuard port, re-opening our router towards it
   * through whatever mapping it now has), and every peer waiting on the hub gets a fresh attempt now. @default false
   */
  networkChanged?: boolean
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
  // Built without a pair array per peer: at rest this runs for every peer on every read (issue 18: garbage).
  const devicePeers = new Map<string, WgPeer>()
  device.peers.forEach((p) => { devicePeers.set(p.publicKey, p) })
  const tracks = new Map<string, PeerTrack>()
  const changes: PeerChange[] = []
  const events: PathEvent[] = []

  const move = (key: string, old: PeerTrack | undefined, next: PeerTrack): void => {
    tracks.set(key, next)
    if (old?.phase !== next.phase) events.push({ publicKey: key, from: old?.phase ?? 'new', to: next.phase, reason: next.reason })
  }

  // Managed peers the registry no longer lists (or that were vetted out) are removed.
  // Loops over every peer use forEach: at rest this runs cold, every 30 s, where a for-of over a Map or an array
  // allocates per element (an iterator result, a [key, value] pair) and costs several times the CPU (issue 16).
  input.tracks.forEach((track, key) => {
    if (desired !== null && !desired.has(key)) {
      if (devicePeers.has(key)) changes.push({ publicKey: key, remove: true })
      events.push({ publicKey: key, from: track.phase, to: 'removed', reason: 'no longer in the registry table' })
    } else if (desired === null) {
      tracks.set(key, directCheck(key, track, devicePeers.get(key), nowMs, timing, changes, events, input.selfKey))
    }
  })
  if (desired === null) return { changes, tracks, events }

  const selfClass = input.self?.natClass ?? 'unknown'
  const selfPublic = input.self?.publicAddress ?? null
  const targetsContext = `${selfPublic ?? ''}|${input.self?.ipv6 === true ? 'ipv6' : ''}`
  const routesEarly = input.hubRelays === false
  // One of each per reconcile, not per peer (issue 18: a read at rest allocated about 1 KB per parked peer).
  const computeTargets = (w: DesiredPeer): Endpoint[] => orderCandidates(w, input.self, candidatesOf(w, selfPublic))
  const classesByPeerClass = new Map<string, string>()
  const quiet: QuietInput = { nowMs, targets: null, classes: '', punching: input.punching === true, handshakeSlackMs: HANDSHAKE_CLOCK_SLACK_MS }

  // The full way through the path machine, for a peer that is not quiet on the hub: made once per reconcile rather
  // than written in the loop, where its closures cost a context object per peer on every read (issue 18: garbage).
  const decide = (key: string, want: DesiredPeer, old: PeerTrack | undefined, onDevice: WgPeer | undefined, candidates: Endpoint[], targets: string | null, classes: string): void => {
    // The endpoint for attempt number `failures`: LAN candidates first, then the public one, round and round.
    const pick = (failures: number): Endpoint | undefined => candidates[failures % Math.max(1, candidates.length)]

    // Start an attempt: straight away, or, with punching, after arming.
    const begin = (endpoint: Endpoint, failures: number, reason: string, bucket?: { freshTokens: number, freshAtMs: number }): void => {
      const freshPeer = needsFreshPeer(candidateKind(want, formatEndpoint(endpoint)), onDevice)
      if (input.punching !== true) changes.push(...attempt(key, endpoint, timing, onDevice, routesEarly ? want.allowedIps : [], freshPeer))
      move(key, old, {
        ...fresh(input.punching === true ? 'arming' : 'trying', nowMs, formatEndpoint(endpoint), input.punching !== true && readds(onDevice, freshPeer) ? undefined : onDevice, failures, reason, targets),
        lostAtMs: old?.lostAtMs,
        readySeen: want.readyFor,
        freshTokens: bucket?.freshTokens ?? old?.freshTokens,
        freshAtMs: bucket?.freshAtMs ?? old?.freshAtMs
      })
    }

    if (old?.phase === 'arming') {
      const waited = nowMs - old.sinceMs
      if (old.endpoint !== null && waited >= timing.armMinMs && (want.readyFor || waited >= timing.armTimeoutMs)) {
        const freshPeer = needsFreshPeer(candidateKind(want, old.endpoint), onDevice)
        changes.push(...attempt(key, parseEndpoint(old.endpoint), timing, onDevice, routesEarly ? want.allowedIps : [], freshPeer))
        // The baseline for hearing from the peer (crossed-handshakes.ts) is taken now, not when arming began: zero for
        // a peer (re-)added by this change, whose counters start afresh.
        const rx = onDevice === undefined || readds(onDevice, freshPeer) ? 0 : onDevice.transferRx
        move(key, old, { ...old, rx, rxAtMs: nowMs, phase: 'trying', sinceMs: nowMs, reason: want.readyFor ? `both sides punched; handshaking with ${old.endpoint}` : `peer did not punch; handshaking with ${old.endpoint} anyway` })
      } else {
        tracks.set(key, old)
      }
      return
    }

    if (old === undefined || onDevice === undefined) {
      // New to us, or gone from the interface behind our back: start an attempt if there is somewhere to go.
      const first = pick(0)
      if (first === undefined || hopeless(selfClass, want, candidates, input.self?.portMapped === true)) return
      begin(first, 0, candidateReason(candidateKind(want, formatEndpoint(first))))
      return
    }

    const track = { ...old }
    // Heard from a peer being tried (crossed-handshakes.ts); never re-added with a preshared key, so nothing to note.
    if (track.phase === 'trying' && onDevice.transferRx > track.rx && !onDevice.hasPresharedKey) track.heardAtMs = nowMs
    if (onDevice.transferRx !== track.rx) { track.rx = onDevice.transferRx; track.rxAtMs = nowMs }
    const handshakeSinceStart = onDevice.latestHandshake > 0 && onDevice.latestHandshake * 1000 >= track.sinceMs - HANDSHAKE_CLOCK_SLACK_MS
    const endpointMoved = targets !== null && targets !== track.targets

    switch (track.phase) {
      case 'trying': {
        const next = pick(0)
        const promoteAt = handshakeSinceStart ? promoteAtMs(track, onDevice, nowMs, timing, input.hubRelays === true) : 0
        if (handshakeSinceStart && nowMs < promoteAt) {
          tracks.set(key, { ...track, promoteAtMs: promoteAt })
        } else if (handshakeSinceStart) {
          // Already on: they went on with the attempt (hub not relaying), or the switch timer (route-switch.ts) put
          // a healed pair's on at the instant. No `wg set` for nothing.
          if (!sameList(onDevice.allowedIps, want.allowedIps)) changes.push({ publicKey: key, allowedIps: want.allowedIps })
          move(key, old, { ...track, ...DIRECT_START, phase: 'direct', sinceMs: nowMs, failures: 0, rxAtMs: nowMs, reason: `handshake on the direct path (${track.endpoint ?? '?'})` })
        } else if (endpointMoved && next !== undefined && spendFresh(track, nowMs) !== undefined) {
          begin(next, 0, 'new endpoint from the registry', spendFresh(track, nowMs))
        } else if (nowMs - track.sinceMs >= timing.directTimeoutMs) {
          const failures = track.failures + 1
          // A pair that had a working path lately is tried every lostRetryMaxMs at most, and never parked: the
          // path was cut, it may heal any moment (issue 11: direct again within 30 s).
          const lostRecently = track.lostAtMs !== undefined && nowMs - track.lostAtMs < timing.lostWindowMs
          const parked = !lostRecently && failures >= timing.maxFailures * Math.max(1, candidates.length)
          // Allowed IPs off too: they may have gone on early (hub not relaying), and the hub may relay by now.
          changes.push({ publicKey: key, persistentKeepalive: 0, ...(onDevice.allowedIps.length > 0 ? { allowedIps: [] } : {}) })
          move(key, old, {
            ...track,
            phase: 'hub',
            sinceMs: nowMs,
            failures,
            classes,
            retryAtMs: parked ? Number.POSITIVE_INFINITY : retryAt(nowMs, failures, input.selfKey, key, lostRecently ? { ...timing, retryMaxMs: timing.lostRetryMaxMs } : timing),
            reason: parked
              ? `no handshake in ${failures} attempts; waiting for a new endpoint or NAT class`
              : `no handshake within ${timing.directTimeoutMs / 1000}s from ${track.endpoint ?? '?'}`
          })
        } else if (crossedHandshakes({ nowMs, selfKey: input.selfKey, peerKey: key, heardAtMs: track.heardAtMs, reinitiations: track.reinitiations ?? 0, onDevice })) {
          // Our initiation and the peer's crossed: a fresh one from this side, which the peer answers. The track keeps
          // the candidate it tries (the re-add goes where WireGuard has the peer now): a roamed endpoint recorded here
          // would count as the peer having moved once the path is direct.
          changes.push(...probe(key, onDevice, timing, { allowedIps: routesEarly ? want.allowedIps : [], endpoint: track.endpoint }))
          tracks.set(key, { ...track, rx: 0, rxAtMs: nowMs, heardAtMs: undefined, reinitiations: (track.reinitiations ?? 0) + 1 })
        } else {
          // Routes put on early while the hub did not relay come off if it relays now: the hub path is the safe one.
          if (!routesEarly && onDevice.allowedIps.length > 0) changes.push({ publicKey: key, allowedIps: [] })
          tracks.set(key, track)
        }
        break
      }

      case 'direct': {
        const checked = directCheck(key, old, onDevice, nowMs, timing, changes, events, input.selfKey)
        if (checked.phase === 'hub' || checked.probeAtMs === nowMs) {
          // Gone back to the hub, or probed just now (the probe re-adds the peer as it is: nothing else this round).
          tracks.set(key, checked)
        } else if (endpointMoved && checked.endpoint !== null && candidates.some((c) => formatEndpoint(c) === track.endpoint)) {
          // New candidates, but the one in use is still among them: nothing to change.
          tracks.set(key, { ...checked, targets })
        } else if (endpointMoved && pick(0) !== undefined && (want.natClass !== 'hard' || nowMs - checked.rxAtMs > timing.keepaliveS * 1000 + QUIET_SLACK_MS) && spendFresh(checked, nowMs) !== undefined) {
          // The endpoint we use is no longer among the peer's: its NAT moved (a rebooted router, a new network).
          // Follow at once. Behind a symmetric NAT the hub sees another port than we do, so there we follow only
          // once our path has gone quiet; until then WireGuard's roaming knows better than the registry.
          // Within the peer's budget (spendFresh): each move sends to the address it names, which may be anyone's.
          const next = pick(0) as Endpoint
          const moved = { ...checked, ...spendFresh(checked, nowMs), endpoint: formatEndpoint(next), targets, reason: `peer moved to ${formatEndpoint(next)}` }
          if ((checked.probeAtMs ?? 0) > 0) {
            // A probe is under way, and its handshake went to the old endpoint: the peer was re-added, so there is no
            // session for a kick's keepalive, and WireGuard would send its initiation again only 5 s later. Probe
            // afresh at the new endpoint, its second counted from now (the side that stayed put, after a reboot).
            changes.push(...probe(key, { ...onDevice, endpoint: next }, timing))
            tracks.set(key, probing(moved, nowMs))
          } else {
            changes.push({ publicKey: key, endpoint: next, persistentKeepalive: timing.keepaliveS, kick: true })
            tracks.set(key, moved)
          }
        } else {
          if (!sameList(onDevice.allowedIps, want.allowedIps)) changes.push({ publicKey: key, allowedIps: want.allowedIps })
          tracks.set(key, checked)
        }
        break
      }

      case 'hub': {
        const classesChanged = track.classes !== undefined && track.classes !== classes
        // The peer announced it punched towards us (it is attempting now): once per announcement.
        // Only between punching clients (--punch-ttl), where "ready" means the peer's NAT is open for us right now;
        // and never for a parked pair, or two clients' attempts would set each other off for ever.
        const peerPunched = input.punching === true && want.readyFor && track.readySeen !== true && Number.isFinite(track.retryAtMs)
        // What the peer announced changed: try afresh at once, within the peer's budget (spendFresh).
        const bucket = endpointMoved || classesChanged || peerPunched ? spendFresh(track, nowMs) : undefined
        const fresher = bucket !== undefined
        const next = fresher ? pick(0) : pick(track.failures)
        if (onDevice.latestHandshake > 0 && onDevice.latestHandshake * 1000 >= track.sinceMs - HANDSHAKE_CLOCK_SLACK_MS) {
          // The other side's attempt got through while we waited (handshake times are whole seconds). A healed pair
          // (WireGuard's own retry of the probe's handshake) moves at the instant both sides compute, like a trying one.
          const promoteAt = promoteAtMs(track, onDevice, nowMs, timing, input.hubRelays === true)
          if (nowMs < promoteAt) { tracks.set(key, { ...track, promoteAtMs: promoteAt, readySeen: want.readyFor }); break }
          if (!sameList(onDevice.allowedIps, want.allowedIps) || onDevice.persistentKeepalive !== timing.keepaliveS) changes.push({ publicKey: key, allowedIps: want.allowedIps, persistentKeepalive: timing.keepaliveS })
          move(key, old, { ...track, ...DIRECT_START, phase: 'direct', sinceMs: nowMs, failures: 0, rxAtMs: nowMs, reason: 'handshake from the peer' })
        } else if (next !== undefined && !hopeless(selfClass, want, candidates, input.self?.portMapped === true) && (fresher || nowMs >= track.retryAtMs)) {
          // Something that could help (a new endpoint or candidate, a new NAT class, the peer punching towards us
          // right now) starts afresh, backoff forgotten; otherwise this is the next retry of the backoff.
          // The peer punching brings the attempt forward without forgetting the failures (so a pair still parks).
          begin(next, fresher && (endpointMoved || classesChanged) ? 0 : track.failures,
            !fresher ? `retry ${track.failures + 1}` : endpointMoved ? 'new endpoint from the registry' : classesChanged ? classesReason(track.classes, classes) : 'the peer punched towards us',
            bucket)
        } else {
          tracks.set(key, { ...track, readySeen: want.readyFor })
        }
        break
      }
    }
    if (input.networkChanged === true && tracks.get(key)?.phase === 'direct' && !changes.some((c) => c.publicKey === key && c.kick === true)) {
      changes.push({ publicKey: key, persistentKeepalive: timing.keepaliveS, kick: true })
    }
  }

  desired.forEach((want, key) => {
    const old = networkReset(input.tracks.get(key), input.networkChanged === true)
    const onDevice = devicePeers.get(key)
    const { candidates, targets } = peerTargets(want, targetsContext, computeTargets)
    // A peer that has announced nothing yet has a class of its own: its first announcement is a change (see below).
    const peerClass = want.silent === true ? `${want.natClass}${SILENT_CLASS}` : want.natClass
    let classes = classesByPeerClass.get(peerClass)
    if (classes === undefined) classesByPeerClass.set(peerClass, classes = `${selfClass}/${peerClass}`)
    quiet.targets = targets
    quiet.classes = classes
    // Waiting on the hub with nothing due (most peers at rest): the track stays as it is.
    if (old !== undefined && onDevice !== undefined && input.networkChanged !== true && quietOnHub(old, onDevice, want, quiet)) {
      tracks.set(key, old)
      return
    }
    decide(key, want, old, onDevice, candidates, targets, classes)
  })
  return { changes, tracks, events }
}

/**
 * After a change of our own network, a peer waiting on the hub is tried again at once (its backoff forgotten): the
 * reason it failed may be gone. Direct peers keep their track; they are kicked after the switch above.
 */
function networkReset (track: PeerTrack | undefined, networkChanged: boolean): PeerTrack | undefined {
  if (!networkChanged || track?.phase !== 'hub') return track
  return { ...track, failures: 0, retryAtMs: 0, classes: undefined }
}

/**
 * Where to try a peer, best first: behind the same public address as us, its LAN endpoints first (most home
 * routers do not hairpin); elsewhere, the port mapping its router granted (it works even behind a symmetric NAT);
 * then the endpoint the hub sees.
 */
export function candidatesOf (want: DesiredPeer, selfPublicAddress: string | null): Endpoint[] {
  if (want.endpoint === null) return []
  if (selfPublicAddress !== null && want.endpoint.address === selfPublicAddress && want.candidates.length > 0) {
    return [...want.candidates, want.endpoint]
  }
  const mapped = want.mapped ?? null
  if (mapped !== null && selfPublicAddress !== mapped.address && formatEndpoint(mapped) !== formatEndpoint(want.endpoint)) return [mapped, want.endpoint]
  return [want.endpoint]
}

/**
 * Both sides behind symmetric NATs and only the public path to try: neither can guess the other's port, so no
 * attempt is made. Behind the same router the LAN path crosses no NAT and is always worth a try.
 */
function hopeless (selfClass: string, want: DesiredPeer, candidates: Endpoint[], selfMapped: boolean): boolean {
  // With a port mapping of our own the peer can reach us: it must be on our interface for its handshake to count.
  return selfClass === 'hard' && want.natClass === 'hard' && candidates.length <= 1 && !selfMapped
}

/**
 * Set an endpoint and keepalive: WireGuard handshakes at once (kicked, even if keepalive was already on). Without
 * allowed IPs (the hub relays) the traffic stays on the hub meanwhile; with them (it does not: `allowedIps` is the
 * peer's own) it goes direct at once. A peer that may still hold a session (it handshook before) is removed and added
 * again in the same `wg set`: only a fresh handshake proves the path now, and with a live session WireGuard would send
 * a keepalive instead, which nothing answers.
 */
function attempt (publicKey: string, endpoint: Endpoint, timing: PathTiming, onDevice: WgPeer | undefined, allowedIps: string[], freshPeer = false): PeerChange[] {
  if (!readds(onDevice, freshPeer)) return [{ publicKey, endpoint, persistentKeepalive: timing.keepaliveS, allowedIps, kick: true }]
  return [{ publicKey, remove: true }, { publicKey, endpoint, persistentKeepalive: timing.keepaliveS, allowedIps }]
}

/** Does an attempt remove and re-add the peer (its counters then start from zero)? */
function readds (onDevice: WgPeer | undefined, freshPeer: boolean): boolean {
  // freshPeer: re-added even without a handshake yet, so WireGuard's 5 s hold on initiations is gone (fresh-peer.ts).
  return onDevice !== undefined && (onDevice.latestHandshake > 0 || freshPeer) && !onDevice.hasPresharedKey
}

/**
 * A fresh handshake with a direct peer, its routes kept: remove it and add it back as it is, in one `wg set`. The
 * new peer has no session, so turning its keepalive on makes WireGuard send a handshake initiation at once, which
 * a live peer answers within a round trip (WireGuard answers nothing else on demand). Costs the session: what is in
 * flight for that round trip. Never for a peer with a preshared key (we do not hold it).
 * Also the fresh initiation to a peer being tried whose initiation crossed ours (crossed-handshakes.ts), with the
 * attempt's routes and, where WireGuard has no endpoint for the peer, the attempt's (`over`).
 */
function probe (publicKey: string, onDevice: WgPeer, timing: PathTiming, over?: { allowedIps: string[], endpoint: string | null }): PeerChange[] {
  const endpoint = onDevice.endpoint ?? (over?.endpoint == null ? null : parseEndpoint(over.endpoint))
  return [
    { publicKey, remove: true },
    { publicKey, ...(endpoint === null ? {} : { endpoint }), persistentKeepalive: timing.keepaliveS, allowedIps: over?.allowedIps ?? onDevice.allowedIps }
  ]
}

/** A direct track whose probe starts now: the re-added peer comes back with zeroed counters and no handshake. */
function probing (track: PeerTrack, nowMs: number): PeerTrack {
  return { ...track, probeAtMs: nowMs, rx: 0, tx: 0, txAtRx: 0, heardAtMs: undefined, reinitiations: 0 }
}

function fresh (phase: PathPhase, nowMs: number, endpoint: string, onDevice: WgPeer | undefined, failures: number, reason: string, targets: string | null): PeerTrack {
  return { phase, sinceMs: nowMs, failures, retryAtMs: 0, endpoint, targets, rx: onDevice?.transferRx ?? 0, rxAtMs: nowMs, reason }
}

/**
 * When a proven path gets its routes. At once, normally. But a pair whose path was lost and healed has traffic
 * flowing through the hub, and WireGuard accepts a packet only from the peer that holds its source address: while
 * one side has moved its routes and the other not, both directions are dropped. So both move at the same instant:
 * `PROMOTE_DELAY_S` after the handshake's second, which both interfaces record (whole seconds, their own clocks).
 */
function promoteAtMs (track: PeerTrack, onDevice: WgPeer, nowMs: number, timing: PathTiming, hubRelays: boolean): number {
  const healing = track.lostAtMs !== undefined && nowMs - track.lostAtMs < timing.lostWindowMs
  // Where the hub relays, traffic flows through it meanwhile: a first switch waits for the instant too, or the side
  // that switched first sends direct what the other side's WireGuard still drops (its allowed IPs are the hub's).
  // Where it does not relay, routes went on with the attempt: nothing to wait for.
  return healing || hubRelays ? (onDevice.latestHandshake + PROMOTE_DELAY_S) * 1000 : 0
}
/**
 * Seconds after the handshake's second at which a pair moves its routes from the hub to the direct path (a healed
 * pair, or a first switch where the hub relays): both sides have seen it by then
 * (they read the interface at least every second meanwhile: route-switch.ts's HEALING_TICK_MS, RETRY_TICK_MS), with
 * a second to spare for starting the switch's `wg` ahead of the instant (route-switch.ts's STAGE_AHEAD_MS).
 */
export const PROMOTE_DELAY_S = 4

/** A track becoming direct starts its path checks afresh (counters may have been zeroed by a re-add). */
const DIRECT_START: Partial<PeerTrack> = { tx: undefined, txAtRx: undefined, unansweredSinceMs: 0, probeAtMs: 0, busy: false, promoteAtMs: 0, heardAtMs: undefined, reinitiations: undefined }

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
  const offset = nodeCrypto().createHash('sha256').update(pair).digest().readUInt32BE(0) % period
  const next = Math.floor((nowMs - offset) / period) * period + period + offset
  return next - nowMs < MIN_RETRY_WAIT_MS ? next + period : next
}

/**
 * Is a direct path still alive? Run for direct peers on every check (also without a table, so adopted direct paths
 * are watched too). Three rules, cheapest first; idle peers (keepalives only) never trigger the first two:
 * - data went out and nothing came back for `suspectAfterMs`: probe with a fresh handshake; no answer within
 *   `probeTimeoutMs`: dead. After an answered probe, no new one for `probeHoldoffMs` (a one-way stream is answered
 *   only by WireGuard's passive keepalive, every 10 s);
 * - data unanswered for `answerTimeoutMs`: dead (WireGuard answers data within 10 s), probe or not;
 * - nothing received for `deadAfterMs` (two keepalives and slack): dead.
 * A dead path's routes go back to the hub (which may relay); retries stay frequent for a while (`lostWindowMs`).
 */
function directCheck (key: string, track: PeerTrack, onDevice: WgPeer | undefined, nowMs: number, timing: PathTiming, changes: PeerChange[], events: PathEvent[], selfKey: string): PeerTrack {
  if (track.phase !== 'direct' || onDevice === undefined) return track
  const next = { ...track }
  const rxGrew = onDevice.transferRx !== next.rx
  const lastTx = next.tx ?? onDevice.transferTx
  next.busy = onDevice.transferTx - lastTx > BUSY_BYTES
  next.tx = onDevice.transferTx
  // The first check of a direct phase sets the baseline: what was sent before it counts as answered.
  next.txAtRx ??= onDevice.transferTx
  if (rxGrew) {
    next.rx = onDevice.transferRx
    next.rxAtMs = nowMs
    next.txAtRx = onDevice.transferTx
    next.unansweredSinceMs = 0
  }
  const dead = (reason: string): PeerTrack => {
    changes.push({ publicKey: key, allowedIps: [], persistentKeepalive: 0 })
    events.push({ publicKey: key, from: 'direct', to: 'hub', reason })
    // Retry on the pair's slot (both sides compute the same): both then read their interface often while trying,
    // so they move their routes within a fraction of a second of each other, and nothing is lost on the way back.
    const retry = retryAt(nowMs, 1, selfKey, key, { ...timing, retryBaseMs: timing.lostRetryMaxMs, retryMaxMs: timing.lostRetryMaxMs })
    return { ...next, phase: 'hub', sinceMs: nowMs, failures: 0, retryAtMs: retry, lostAtMs: nowMs, probeAtMs: 0, unansweredSinceMs: 0, busy: false, reason }
  }

  const probeAt = next.probeAtMs ?? 0
  if (probeAt > 0) {
    const handshook = onDevice.latestHandshake > 0 && onDevice.latestHandshake * 1000 >= probeAt - HANDSHAKE_CLOCK_SLACK_MS
    const answered = { ...next, probeAtMs: 0, probeOkAtMs: nowMs, unansweredSinceMs: 0, heardAtMs: undefined, reinitiations: undefined }
    if (handshook) return answered
    // Bytes from the peer but no handshake: its own probe's initiation, which may have crossed ours
    // (crossed-handshakes.ts). The side whose key sorts first waits for the handshake and, without one, sends a fresh
    // initiation once; the peer is there either way, so the probe counts as answered (the other side at once).
    const first = reinitiatesFirst(selfKey, key) && !onDevice.hasPresharedKey
    if (rxGrew && !first) return answered
    if (rxGrew) next.heardAtMs = nowMs
    if (first && (next.reinitiations ?? 0) === 0 && crossedHandshakes({ nowMs, selfKey, peerKey: key, heardAtMs: next.heardAtMs, reinitiations: 0, onDevice })) {
      changes.push(...probe(key, onDevice, timing))
      return { ...next, rx: 0, tx: 0, txAtRx: 0, heardAtMs: undefined, reinitiations: 1 }
    }
    if (nowMs - probeAt >= timing.probeTimeoutMs) {
      return next.heardAtMs !== undefined || (next.reinitiations ?? 0) > 0 ? answered : dead(`no answer to a handshake within ${timing.probeTimeoutMs / 1000}s after data went unanswered`)
    }
    return next
  }

  const unanswered = onDevice.transferTx - next.txAtRx
  if (!rxGrew && unanswered > UNANSWERED_BYTES) {
    const since = (next.unansweredSinceMs ?? 0) > 0 ? next.unansweredSinceMs as number : nowMs
    next.unansweredSinceMs = since
    if (nowMs - since >= timing.answerTimeoutMs) return dead(`data unanswered for ${Math.round((nowMs - since) / 1000)}s`)
    const canProbe = !onDevice.hasPresharedKey && nowMs - (next.probeOkAtMs ?? 0) >= timing.probeHoldoffMs
    if (canProbe && nowMs - since >= timing.suspectAfterMs) {
      changes.push(...probe(key, onDevice, timing))
      return probing(next, nowMs)
    }
  } else if (!rxGrew) {
    next.unansweredSinceMs = 0
  }
  if (nowMs - next.rxAtMs >= timing.deadAfterMs) return dead(`direct path silent for ${Math.round((nowMs - next.rxAtMs) / 1000)}s`)
  return next
}

/**
 * Bytes sent since the last receipt above which a direct peer counts as unanswered: more than an idle peer ever
 * sends between two of the peer's keepalives (two keepalives of 32 bytes and a handshake initiation of 148).
 */
export const UNANSWERED_BYTES = 256
/** Bytes sent between two checks above which a peer counts as busy (more than two keepalives). */
export const BUSY_BYTES = 64

/**
 * Is a direct path waiting for an answer that decides it (suspect or probed)? The client then checks the interface
 * often. A peer in its probe holdoff is not: only the slower rules apply to it.
 */
export function directPending (track: PeerTrack, nowMs: number, timing: PathTiming): boolean {
  if (track.phase !== 'direct') return false
  if ((track.probeAtMs ?? 0) > 0) return true
  return (track.unansweredSinceMs ?? 0) > 0 && nowMs - (track.probeOkAtMs ?? 0) >= timing.probeHoldoffMs
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
