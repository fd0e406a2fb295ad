import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { adoptTracks, candidatesOf, defaultTiming, FRESH_BURST, FRESH_REFILL_MS, PROMOTE_DELAY_S, reconcile, retryAt, type PeerTrack, type ReconcileInput, type ReconcileOutput } from '../../src/client/paths/reconcile.js'
import { vetTable, type DesiredPeer } from '../../src/client/paths/vet-table.js'
import { parsePrefix, type Endpoint } from '../../src/shared/ip.js'
import type { TablePeer } from '../../src/shared/protocol.js'
import type { PeerChange } from '../../src/shared/wg.js'
import type { WgPeer } from '../../src/shared/wg-dump.js'
import { ep, FakeWg, newPeer } from '../helpers/fake-wg.js'
import { testKey } from '../helpers/keys.js'

const SELF = testKey('self'); const HUB = testKey('hub'); const B = testKey('b')
const T0 = 1_700_000_000_000
const timing = defaultTiming(25)

function want (over: Partial<DesiredPeer> = {}): DesiredPeer {
  return { publicKey: B, endpoint: ep('198.18.12.2:51820'), allowedIps: ['100.64.0.3/32'], online: true, candidates: [], natClass: 'unknown', readyFor: false, ...over }
}

function input (nowMs: number, peers: WgPeer[], tracks: Map<string, PeerTrack>, desired: DesiredPeer[] | null = [want()]): ReconcileInput {
  return {
    nowMs,
    selfKey: SELF,
    device: { publicKey: SELF, listenPort: 51820, peers: [newPeer(HUB, { allowedIps: ['100.64.0.0/24'] }), ...peers] },
    desired: desired === null ? null : new Map(desired.map((d) => [d.publicKey, d])),
    tracks,
    timing
  }
}

/** Run the machine from nothing to a trying peer; returns its track and the device peer as WireGuard would show it. */
function startTrying (): { tracks: Map<string, PeerTrack>, onDevice: WgPeer } {
  const out = reconcile(input(T0, [], new Map()))
  return { tracks: out.tracks, onDevice: newPeer(B, { endpoint: ep('198.18.12.2:51820'), persistentKeepalive: 25 }) }
}

describe('reconcile: relay first, direct when proven', () => {
  it('adds a new peer with endpoint and keepalive but no allowed IPs: traffic stays on the hub', () => {
    const out = reconcile(input(T0, [], new Map()))
    expect(out.changes).toEqual([{ publicKey: B, endpoint: ep('198.18.12.2:51820'), persistentKeepalive: 25, allowedIps: [], kick: true }])
    expect(out.tracks.get(B)?.phase).toBe('trying')
    expect(out.events).toEqual([expect.objectContaining({ from: 'new', to: 'trying' })])
  })

  it('does nothing for a peer without an endpoint, and never touches the hub', () => {
    const out = reconcile(input(T0, [], new Map(), [want({ endpoint: null })]))
    expect(out.changes).toEqual([])
    expect(out.tracks.size).toBe(0)
  })

  it('adds allowed IPs once a handshake proves the direct path', () => {
    const { tracks, onDevice } = startTrying()
    const waiting = reconcile(input(T0 + 500, [onDevice], tracks))
    expect(waiting.changes).toEqual([])
    onDevice.latestHandshake = Math.floor((T0 + 700) / 1000)
    const out = reconcile(input(T0 + 800, [onDevice], waiting.tracks))
    expect(out.changes).toEqual([{ publicKey: B, allowedIps: ['100.64.0.3/32'] }])
    expect(out.tracks.get(B)?.phase).toBe('direct')
  })

  it('where the hub relays, a first switch waits for the instant both sides compute (PROMOTE_DELAY_S after the handshake\'s second)', () => {
    const relay = (i: ReconcileInput): ReconcileInput => ({ ...i, hubRelays: true })
    const tracks = reconcile(relay(input(T0, [], new Map()))).tracks
    const onDevice = newPeer(B, { endpoint: ep('198.18.12.2:51820'), persistentKeepalive: 25 })
    onDevice.latestHandshake = Math.floor((T0 + 700) / 1000)
    const instant = (onDevice.latestHandshake + PROMOTE_DELAY_S) * 1000
    const waiting = reconcile(relay(input(T0 + 800, [onDevice], tracks)))
    expect(waiting.changes).toEqual([])
    expect(waiting.tracks.get(B)).toMatchObject({ phase: 'trying', promoteAtMs: instant })
    expect(reconcile(relay(input(instant - 1, [onDevice], waiting.tracks))).tracks.get(B)?.phase).toBe('trying')
    const out = reconcile(relay(input(instant, [onDevice], waiting.tracks)))
    expect(out.changes).toEqual([{ publicKey: B, allowedIps: ['100.64.0.3/32'] }])
    expect(out.tracks.get(B)?.phase).toBe('direct')
  })

  it('a stale handshake from before the attempt proves nothing', () => {
    const { tracks, onDevice } = startTrying()
    onDevice.latestHandshake = Math.floor(T0 / 1000) - 60
    expect(reconcile(input(T0 + 500, [onDevice], tracks)).tracks.get(B)?.phase).toBe('trying')
  })

  it('gives up after the direct timeout and retries later on a backoff schedule', () => {
    const { tracks, onDevice } = startTrying()
    const failed = reconcile(input(T0 + timing.directTimeoutMs, [onDevice], tracks))
    expect(failed.changes).toEqual([{ publicKey: B, persistentKeepalive: 0 }])
    const t = failed.tracks.get(B)
    expect(t).toMatchObject({ phase: 'hub', failures: 1 })
    const retry = t?.retryAtMs ?? 0
    expect(retry).toBeGreaterThan(T0 + timing.directTimeoutMs)
    expect(reconcile(input(retry - 1, [onDevice], failed.tracks)).changes).toEqual([])
    const again = reconcile(input(retry, [onDevice], failed.tracks))
    expect(again.tracks.get(B)?.phase).toBe('trying')
    expect(again.changes[0]).toMatchObject({ endpoint: ep('198.18.12.2:51820'), persistentKeepalive: 25 })
  })

  it('goes direct at once when the other side\'s attempt gets through while waiting', () => {
    const { tracks, onDevice } = startTrying()
    const failed = reconcile(input(T0 + timing.directTimeoutMs, [onDevice], tracks))
    onDevice.latestHandshake = Math.floor((T0 + timing.directTimeoutMs + 3000) / 1000)
    const out = reconcile(input(T0 + timing.directTimeoutMs + 3100, [onDevice], failed.tracks))
    expect(out.tracks.get(B)?.phase).toBe('direct')
    expect(out.changes).toEqual([{ publicKey: B, allowedIps: ['100.64.0.3/32'], persistentKeepalive: 25 }])
  })

  it('falls back to the hub when a direct path goes silent, and keeps it while traffic arrives', () => {
    const { tracks, onDevice } = startTrying()
    onDevice.latestHandshake = Math.floor(T0 / 1000) + 1
    let state = reconcile(input(T0 + 1500, [onDevice], tracks)).tracks
    onDevice.allowedIps = ['100.64.0.3/32']
    for (let t = 1; t <= 4; t++) {
      onDevice.transferRx += 92
      state = reconcile(input(T0 + 1500 + t * 20_000, [onDevice], state)).tracks
      expect(state.get(B)?.phase).toBe('direct')
    }
    const dead = reconcile(input(T0 + 1500 + 80_000 + timing.deadAfterMs, [onDevice], state))
    expect(dead.tracks.get(B)?.phase).toBe('hub')
    expect(dead.changes).toEqual([{ publicKey: B, allowedIps: [], persistentKeepalive: 0 }])
  })

  it('follows a peer whose NAT moved at once; behind a symmetric NAT only once the path goes quiet', () => {
    const { tracks, onDevice } = startTrying()
    onDevice.latestHandshake = Math.floor(T0 / 1000) + 1
    const direct = reconcile(input(T0 + 1500, [onDevice], tracks)).tracks
    onDevice.allowedIps = ['100.64.0.3/32']
    const follow = [{ publicKey: B, endpoint: ep('198.18.12.2:60000'), persistentKeepalive: 25, allowedIps: undefined, kick: true }]
    // An easy peer whose router rebooted: its old mapping is gone, follow now (allowed IPs stay: no detour).
    expect(reconcile(input(T0 + 3000, [{ ...onDevice, transferRx: 5 }], direct, [want({ endpoint: ep('198.18.12.2:60000'), natClass: 'easy' })])).changes).toEqual(follow)
    // A hard peer: the hub sees another port than we do; while traffic arrives, WireGuard's roaming knows better.
    const hard = [want({ endpoint: ep('198.18.12.2:60000'), natClass: 'hard' })]
    expect(reconcile(input(T0 + 3000, [{ ...onDevice, transferRx: 5 }], direct, hard)).changes).toEqual([])
    // Quiet for longer than a keepalive interval (but not yet dead): the registry's word wins.
    expect(reconcile(input(T0 + 1500 + timing.keepaliveS * 1000 + 6000, [onDevice], direct, hard)).changes).toEqual(follow)
  })



  it('a peer that moves while our probe is under way is probed afresh at its new endpoint, its second counted from then', () => {
    const { tracks, onDevice } = startTrying()
    onDevice.latestHandshake = Math.floor(T0 / 1000) + 1
    const direct = reconcile(input(T0 + 1500, [onDevice], tracks)).tracks
    // Our data went unanswered (the peer's router rebooted) and we probed at T0 + 2.5 s: the peer re-added, towards
    // its old endpoint, no session, no handshake yet.
    const probing = new Map(direct)
    probing.set(B, { ...direct.get(B)!, probeAtMs: T0 + 2500, rx: 0, tx: 0, txAtRx: 0, heardAtMs: undefined, reinitiations: 0 })
    const readded = { ...onDevice, allowedIps: ['100.64.0.3/32'], latestHandshake: 0, transferRx: 0, transferTx: 148 }
    const moved = [want({ endpoint: ep('198.18.12.2:60000'), natClass: 'easy' })]
    const out = reconcile(input(T0 + 3000, [readded], probing, moved))
    expect(out.changes).toEqual([{ publicKey: B, remove: true }, { publicKey: B, endpoint: ep('198.18.12.2:60000'), persistentKeepalive: 25, allowedIps: ['100.64.0.3/32'] }])
    expect(out.tracks.get(B)).toMatchObject({ phase: 'direct', endpoint: '198.18.12.2:60000', probeAtMs: T0 + 3000 })
    // The old probe's second (T0 + 3.5 s) no longer counts: still direct then, and answered by the new handshake.
    const at = (ms: number, over: Partial<typeof readded> = {}): ReturnType<typeof reconcile> => reconcile(input(T0 + ms, [{ ...readded, endpoint: ep('198.18.12.2:60000'), transferTx: 0, ...over }], out.tracks, moved))
    expect(at(3500).tracks.get(B)?.phase).toBe('direct')
    expect(at(3600, { latestHandshake: Math.floor((T0 + 3100) / 1000) + 1, transferRx: 92 }).tracks.get(B)).toMatchObject({ phase: 'direct', probeAtMs: 0 })
    // Unanswered at the new endpoint too: dead a second after the new probe, as any probe.
    expect(at(3000 + timing.probeTimeoutMs).tracks.get(B)?.phase).toBe('hub')
  })

  it('after our own network changed, kicks every direct peer and retries every waiting one at once', () => {
    const { tracks, onDevice } = startTrying()
    onDevice.latestHandshake = Math.floor(T0 / 1000) + 1
    const direct = reconcile(input(T0 + 1500, [onDevice], tracks)).tracks
    onDevice.allowedIps = ['100.64.0.3/32']
    const C = testKey('c')
    const cPeer = newPeer(C, { endpoint: ep('198.18.13.2:51820') })
    const cWant = want({ publicKey: C, endpoint: ep('198.18.13.2:51820'), allowedIps: ['100.64.0.4/32'] })
    const waiting = new Map([...direct, [C, { phase: 'hub' as const, sinceMs: T0, failures: 3, retryAtMs: T0 + 600_000, endpoint: '198.18.13.2:51820', targets: '198.18.13.2:51820', rx: 0, rxAtMs: T0, reason: 'no handshake' }]])
    const cases: Array<{ name: string, changed: boolean, expected: PeerChange[] }> = [
      { name: 'no change: nothing to do', changed: false, expected: [] },
      {
        name: 'changed: kick the direct peer, attempt the waiting one',
        changed: true,
        expected: [{ publicKey: B, persistentKeepalive: 25, kick: true }, { publicKey: C, endpoint: ep('198.18.13.2:51820'), persistentKeepalive: 25, allowedIps: [], kick: true }]
      }
    ]
    for (const c of cases) {
      const out = reconcile({ ...input(T0 + 3000, [{ ...onDevice, transferRx: 5 }, cPeer], waiting, [want(), cWant]), networkChanged: c.changed })
      expect(out.changes, c.name).toEqual(c.expected)
      expect(out.tracks.get(B)?.phase, c.name).toBe('direct')
      expect(out.tracks.get(C)?.phase, c.name).toBe(c.changed ? 'trying' : 'hub')
    }
  })

  it('without any table yet, still demotes an adopted direct path that has gone silent', () => {
    const nowS = Math.floor(T0 / 1000)
    const peer = newPeer(B, { allowedIps: ['100.64.0.3/32'], latestHandshake: nowS - 10, endpoint: ep('198.18.12.2:51820'), transferRx: 100 })
    const adopted = adoptTracks({ publicKey: SELF, listenPort: 51820, peers: [peer] }, [B], T0, timing)
    expect(reconcile(input(T0 + timing.deadAfterMs - 1, [peer], adopted, null)).changes).toEqual([])
    const dead = reconcile(input(T0 + timing.deadAfterMs, [peer], adopted, null))
    expect(dead.changes).toEqual([{ publicKey: B, allowedIps: [], persistentKeepalive: 0 }])
    expect(dead.tracks.get(B)?.phase).toBe('hub')
  })

  it('removes managed peers the registry dropped, and keeps everything when no table was fetched yet', () => {
    const { tracks, onDevice } = startTrying()
    expect(reconcile(input(T0 + 100, [onDevice], tracks, null)).changes).toEqual([])
    const out = reconcile(input(T0 + 100, [onDevice], tracks, []))
    expect(out.changes).toEqual([{ publicKey: B, remove: true }])
    expect(out.tracks.size).toBe(0)
  })

  it('retry slots are the same on both sides of a pair', () => {
    const a = retryAt(T0, 2, SELF, B, timing)
    const b = retryAt(T0 + 700, 2, B, SELF, timing)
    expect(a).toBe(b)
    for (const failures of [1, 3, 10]) {
      const period = Math.min(timing.retryMaxMs, timing.retryBaseMs * 2 ** (failures - 1))
      const wait = retryAt(T0, failures, SELF, B, timing) - T0
      expect(wait).toBeGreaterThanOrEqual(1000)
      expect(wait).toBeLessThanOrEqual(period + 1000)
    }
  })

  it('adopts the peers of a previous run: live direct ones stay direct', () => {
    const nowS = Math.floor(T0 / 1000)
    const device = { publicKey: SELF, listenPort: 51820, peers: [newPeer(B, { allowedIps: ['100.64.0.3/32'], latestHandshake: nowS - 10, endpoint: ep('198.18.12.2:51820') }), newPeer(HUB)] }
    expect(adoptTracks(device, [B], T0, timing).get(B)?.phase).toBe('direct')
    // An old handshake says little (WireGuard re-handshakes every two minutes): a peer with routes stays direct,
    // and the silence check demotes it if nothing arrives.
    device.peers[0]!.latestHandshake = nowS - 600
    expect(adoptTracks(device, [B], T0, timing).get(B)?.phase).toBe('direct')
    device.peers[0]!.allowedIps = []
    expect(adoptTracks(device, [B], T0, timing).get(B)?.phase).toBe('hub')
    expect(adoptTracks(device, [HUB].filter(() => false), T0, timing).size).toBe(0)
  })
})

describe('reconcile: dead direct paths are found without waiting for keepalives', () => {
  /** One check: the interface's counters at `atMs` after the start of the direct phase (they only grow). */
  interface Sample { atMs: number, rx: number, tx: number, handshakeAtMs?: number }
  const ALLOWED = ['100.64.0.3/32']
  const ENDPOINT = ep('198.18.12.2:51820')

  /**
   * Run a direct peer through the samples, after a first check at 0 (counters zero); the device follows the changes
   * as WireGuard would (a re-add zeroes counters). Results are per sample, the first check left out.
   */
  function drive (given: Sample[], opts: { psk?: boolean } = {}): { phases: string[], changes: PeerChange[][], track: PeerTrack | undefined } {
    const samples = [{ atMs: 0, rx: 0, tx: 0 }, ...given]
    let tracks = new Map<string, PeerTrack>([[B, { phase: 'direct', sinceMs: T0, failures: 0, retryAtMs: 0, endpoint: '198.18.12.2:51820', targets: '198.18.12.2:51820', rx: 0, rxAtMs: T0, reason: 'handshake' }]])
    // Counters the interface shows are the samples' minus what they were when the peer was last re-added.
    let base = { rx: 0, tx: 0 }
    let handshakeS = Math.floor(T0 / 1000)
    let allowed = ALLOWED
    const phases: string[] = []; const changes: PeerChange[][] = []
    for (const x of samples) {
      if (x.handshakeAtMs !== undefined) handshakeS = Math.floor((T0 + x.handshakeAtMs) / 1000)
      const peer = newPeer(B, { endpoint: ENDPOINT, allowedIps: allowed, persistentKeepalive: 25, hasPresharedKey: opts.psk === true, latestHandshake: handshakeS, transferRx: x.rx - base.rx, transferTx: x.tx - base.tx })
      const out = reconcile(input(T0 + x.atMs, [peer], tracks))
      if (out.changes.some((c) => c.remove === true)) { base = { rx: x.rx, tx: x.tx }; handshakeS = 0 }
      const routes = out.changes.filter((c) => c.allowedIps !== undefined).at(-1)
      if (routes?.allowedIps !== undefined) allowed = routes.allowedIps
      tracks = out.tracks
      phases.push(out.tracks.get(B)?.phase ?? 'none')
      changes.push(out.changes)
    }
    return { phases: phases.slice(1), changes: changes.slice(1), track: tracks.get(B) }
  }

  const PROBE: PeerChange[] = [{ publicKey: B, remove: true }, { publicKey: B, endpoint: ENDPOINT, persistentKeepalive: 25, allowedIps: ALLOWED }]
  const TO_HUB: PeerChange[] = [{ publicKey: B, allowedIps: [], persistentKeepalive: 0 }]
  /** Checks every second for a minute; `f` gives the counters at second i. */
  const everySecond = (n: number, f: (i: number) => { rx: number, tx: number }): Sample[] => Array.from({ length: n }, (_, i) => ({ atMs: (i + 1) * 1000, ...f(i + 1) }))

  it.each([
    { name: 'idle: keepalives each way every 25 s, 5 minutes', samples: everySecond(300, (i) => ({ rx: 32 * Math.floor(i / 25), tx: 32 * Math.floor((i + 12) / 25) })) },
    { name: 'traffic both ways', samples: everySecond(60, (i) => ({ rx: 640 * i, tx: 640 * i })) },
    { name: 'our keepalives and a handshake initiation unanswered for 20 s (under deadAfter)', samples: everySecond(20, (i) => ({ rx: 0, tx: i >= 5 ? 180 : 32 })) }
  ])('stays direct, no change, no probe: $name', ({ samples }) => {
    const r = drive(samples)
    expect(r.phases.every((p) => p === 'direct')).toBe(true)
    expect(r.changes.flat()).toEqual([])
  })

  it('data unanswered: probes with a fresh handshake after suspectAfterMs, back to the hub when the probe is not answered', () => {
    const r = drive([
      { atMs: 1000, rx: 640, tx: 640 },
      { atMs: 2000, rx: 640, tx: 1280 }, // nothing back: suspect
      { atMs: 2400, rx: 640, tx: 1536 }, // not yet suspectAfterMs
      { atMs: 2550, rx: 640, tx: 1664 }, // probe
      { atMs: 3000, rx: 640, tx: 2000 },
      { atMs: 3550, rx: 640, tx: 2300 } // probeTimeoutMs later: dead
    ])
    expect(r.changes).toEqual([[], [], [], PROBE, [], TO_HUB])
    expect(r.phases.at(-1)).toBe('hub')
    expect(r.track).toMatchObject({ lostAtMs: T0 + 3550, retryAtMs: retryAt(T0 + 3550, 1, SELF, B, { ...timing, retryBaseMs: timing.lostRetryMaxMs }) })
  })

  it('an answered probe keeps the path; a one-way stream is then probed at most every probeHoldoffMs, and dead after answerTimeoutMs without answers', () => {
    const samples: Sample[] = [
      { atMs: 1000, rx: 0, tx: 640 },
      { atMs: 1500, rx: 0, tx: 960 }, // probe
      { atMs: 1650, rx: 92, tx: 1200, handshakeAtMs: 1600 } // answered
    ]
    for (let t = 2000; t <= 11_000; t += 1000) samples.push({ atMs: t, rx: 92, tx: 1200 + t })
    const r = drive(samples)
    expect(r.changes.filter((c) => c.length > 0)).toEqual([PROBE])
    expect(r.phases.every((p) => p === 'direct')).toBe(true)
    const longer = drive([...samples, ...Array.from({ length: 15 }, (_, i) => ({ atMs: 12_000 + i * 1000, rx: 92, tx: 20_000 + i * 1000 }))])
    // After the holdoff a new probe goes out; unanswered, the path is dead.
    expect(longer.changes.slice(0, longer.phases.indexOf('hub') + 1).filter((c) => c.length > 0)).toEqual([PROBE, PROBE, TO_HUB])
  })

  it('a peer with a preshared key is never removed to probe; data unanswered for answerTimeoutMs is dead', () => {
    const samples = everySecond(20, (i) => ({ rx: 0, tx: 640 * i }))
    const r = drive(samples, { psk: true })
    expect(r.changes.flat().some((c) => c.remove === true)).toBe(false)
    expect(r.changes.slice(0, r.phases.indexOf('hub') + 1).filter((c) => c.length > 0)).toEqual([TO_HUB])
    // Unanswered from the first check that saw data (1 s) on.
    expect(samples[r.phases.indexOf('hub')]?.atMs).toBe(1000 + timing.answerTimeoutMs)
  })

  it('a healed pair moves its routes at the instant both sides compute (PROMOTE_DELAY_S after the handshake\'s second); a new pair at once', () => {
    const lost = drive([{ atMs: 1000, rx: 0, tx: 640 }, { atMs: 1500, rx: 0, tx: 960 }, { atMs: 2600, rx: 0, tx: 1300 }])
    const retry = lost.track!.retryAtMs
    const peer = newPeer(B, { endpoint: ENDPOINT, latestHandshake: Math.floor(T0 / 1000) })
    const trying = reconcile(input(retry, [peer], new Map([[B, lost.track!]])))
    expect(trying.tracks.get(B)?.phase).toBe('trying')
    const hsS = Math.floor((retry + 300) / 1000)
    const shook = { ...peer, latestHandshake: hsS, persistentKeepalive: 25 }
    const cases = [
      { name: 'handshake seen, before the instant', at: retry + 400, phase: 'trying', changes: [] },
      { name: 'just before the instant', at: (hsS + PROMOTE_DELAY_S) * 1000 - 1, phase: 'trying', changes: [] },
      { name: 'at the instant', at: (hsS + PROMOTE_DELAY_S) * 1000, phase: 'direct', changes: [{ publicKey: B, allowedIps: ALLOWED }] }
    ]
    for (const c of cases) {
      const out = reconcile(input(c.at, [shook], trying.tracks))
      expect(out.tracks.get(B)?.phase, c.name).toBe(c.phase)
      expect(out.changes, c.name).toEqual(c.changes)
    }
    // A pair that never lost a path: routes at once.
    const { tracks, onDevice } = startTrying()
    onDevice.latestHandshake = Math.floor(T0 / 1000) + 1
    expect(reconcile(input(T0 + 1500, [onDevice], tracks)).tracks.get(B)?.phase).toBe('direct')
  })

  it('after a lost path, retries stay at most lostRetryMaxMs apart and are never parked; each is a fresh handshake', () => {
    const lost = drive([{ atMs: 1000, rx: 0, tx: 640 }, { atMs: 1500, rx: 0, tx: 960 }, { atMs: 2600, rx: 0, tx: 1300 }])
    let tracks = new Map([[B, lost.track!]])
    const peer = newPeer(B, { endpoint: ENDPOINT, persistentKeepalive: 0, latestHandshake: Math.floor(T0 / 1000) })
    let now = T0 + 2600
    const starts: number[] = []
    for (let n = 0; n < 12; n++) {
      const retry = tracks.get(B)!.retryAtMs
      expect(retry - now).toBeLessThanOrEqual(timing.lostRetryMaxMs + 1000)
      now = retry
      const tryOut = reconcile(input(now, [peer], tracks))
      expect(tryOut.changes[0], `retry ${n}`).toEqual({ publicKey: B, remove: true })
      starts.push(now)
      now += timing.directTimeoutMs
      tracks = reconcile(input(now, [peer], tryOut.tracks)).tracks
      expect(tracks.get(B)?.phase).toBe('hub')
    }
    expect(starts.length).toBe(12)
  })
})

// ---------------------------------------------------------------------------------------------------------------
// The path machine driven over time against the fake interface: LAN candidates, hopeless pairs, parking, safety.

const IFACE = 'wg0'
/** B's endpoint as the hub sees it (its router's public address), and after its NAT mapping moved. */
const P = ep('198.18.12.2:51820'); const P_MOVED = ep('198.18.12.2:60001')
/** B's LAN endpoints, as it announced them. */
const L1 = ep('192.168.1.20:51820'); const L2 = ep('10.0.0.20:51820')
/** Our public address when we sit behind B's router, and when we do not. */
const SAME = P.address; const OTHER = '203.0.113.9'
/** A port mapping the peer's router granted. */
const M = ep('198.18.12.2:40001')

/** The change that starts an attempt: endpoint and keepalive, no allowed IPs. */
function attemptOf (endpoint: Endpoint, key = B): PeerChange {
  return { publicKey: key, endpoint, persistentKeepalive: timing.keepaliveS, allowedIps: [], kick: true }
}

/** One client: a fake interface holding the hub, the tracks it manages, a clock and its own NAT view. */
class Sim {
  readonly wg = new FakeWg()
  tracks = new Map<string, PeerTrack>()
  nowMs = T0
  self: { natClass: string, publicAddress: string | null, portMapped?: boolean }
  desired: DesiredPeer[] | null

  constructor (desired: DesiredPeer[] | null, self: { natClass?: string, publicAddress?: string | null, portMapped?: boolean } = {}) {
    this.desired = desired
    this.self = { natClass: self.natClass ?? 'unknown', publicAddress: self.publicAddress ?? null, ...(self.portMapped === undefined ? {} : { portMapped: self.portMapped }) }
    this.wg.addDevice(IFACE, { publicKey: SELF, listenPort: 51820, peers: [newPeer(HUB, { allowedIps: ['100.64.0.0/24'], endpoint: ep('198.18.0.1:51820'), persistentKeepalive: 25 })] })
  }

  /** Reconcile at `atMs` (default: the current clock) and apply the changes to the fake interface. */
  async step (atMs = this.nowMs): Promise<ReconcileOutput> {
    this.nowMs = atMs
    const device = await this.wg.show(IFACE)
    const out = reconcile({
      nowMs: this.nowMs,
      selfKey: SELF,
      device,
      desired: this.desired === null ? null : new Map(this.desired.map((d) => [d.publicKey, d])),
      tracks: this.tracks,
      timing,
      self: { ...this.self }
    })
    if (out.changes.length > 0) await this.wg.set(IFACE, out.changes)
    this.tracks = out.tracks
    return out
  }

  track (key = B): PeerTrack {
    const t = this.tracks.get(key)
    if (t === undefined) throw new Error(`no track for ${key}`)
    return t
  }

  /** Let the current attempt time out without a handshake. */
  async timeOut (): Promise<ReconcileOutput> {
    const t = this.track()
    expect(t.phase).toBe('trying')
    const out = await this.step(t.sinceMs + timing.directTimeoutMs)
    expect(out.changes).toEqual([{ publicKey: B, persistentKeepalive: 0 }])
    expect(this.track().phase).toBe('hub')
    return out
  }

  /** Wait in the hub phase until the retry slot, and reconcile there. */
  async retry (): Promise<ReconcileOutput> {
    const t = this.track()
    expect(t.phase).toBe('hub')
    expect(Number.isFinite(t.retryAtMs)).toBe(true)
    expect(t.retryAtMs).toBeGreaterThan(this.nowMs)
    expect((await this.step(t.retryAtMs - 1)).changes).toEqual([])
    return await this.step(t.retryAtMs)
  }
}

describe('reconcile: LAN candidates first behind the same public address', () => {
  const cases: Array<{ name: string, selfPublic: string | null, candidates: Endpoint[], tried: Endpoint[], firstReason: RegExp }> = [
    { name: 'same public address, two LAN candidates: both, then the public endpoint, then round again', selfPublic: SAME, candidates: [L1, L2], tried: [L1, L2, P, L1, L2], firstReason: /LAN endpoint/ },
    { name: 'same public address, one LAN candidate: it, then the public endpoint', selfPublic: SAME, candidates: [L1], tried: [L1, P, L1], firstReason: /LAN endpoint/ },
    { name: 'different public addresses: LAN candidates are ignored', selfPublic: OTHER, candidates: [L1, L2], tried: [P, P, P], firstReason: /from the registry/ },
    { name: 'our public address not known yet: LAN candidates are ignored', selfPublic: null, candidates: [L1, L2], tried: [P, P], firstReason: /from the registry/ },
    { name: 'same public address, no LAN candidates: the public endpoint only', selfPublic: SAME, candidates: [], tried: [P, P], firstReason: /from the registry/ }
  ]

  it.each(cases)('$name', async ({ selfPublic, candidates, tried, firstReason }) => {
    const sim = new Sim([want({ candidates })], { natClass: 'easy', publicAddress: selfPublic })
    const first = await sim.step()
    expect(first.changes).toEqual([attemptOf(tried[0]!)])
    expect(first.events).toEqual([{ publicKey: B, from: 'new', to: 'trying', reason: expect.stringMatching(firstReason) }])
    expect(sim.wg.peer(IFACE, B)).toMatchObject({ endpoint: tried[0], allowedIps: [], persistentKeepalive: 25 })
    for (const endpoint of tried.slice(1)) {
      await sim.timeOut()
      const again = await sim.retry()
      expect(again.changes).toEqual([attemptOf(endpoint)])
      expect(sim.track()).toMatchObject({ phase: 'trying', endpoint: `${endpoint.address}:${endpoint.port}` })
    }
  })

  it('the attempt that finally works is the one that gets the allowed IPs', async () => {
    const sim = new Sim([want({ candidates: [L1, L2] })], { natClass: 'easy', publicAddress: SAME })
    await sim.step()
    await sim.timeOut()
    await sim.retry() // L2 now
    const peer = sim.wg.peer(IFACE, B)!
    peer.latestHandshake = Math.floor(sim.nowMs / 1000) + 1
    const out = await sim.step(sim.nowMs + 1500)
    expect(out.changes).toEqual([{ publicKey: B, allowedIps: ['100.64.0.3/32'] }])
    expect(sim.track()).toMatchObject({ phase: 'direct', failures: 0, endpoint: '10.0.0.20:51820' })
    expect(sim.wg.peer(IFACE, B)).toMatchObject({ endpoint: L2, allowedIps: ['100.64.0.3/32'] })
  })
})

describe('reconcile: new candidates start a fresh attempt at once', () => {
  const CHANGE_AT = T0 + 4000
  const cases: Array<{ name: string, before: DesiredPeer, selfBefore: string | null, after: DesiredPeer, selfAfter: string | null, failFirst: boolean, next: Endpoint }> = [
    { name: 'LAN candidates announced while trying the public endpoint', before: want(), selfBefore: SAME, after: want({ candidates: [L1] }), selfAfter: SAME, failFirst: false, next: L1 },
    { name: 'our public address becomes known (equal to the peer\'s) while trying the public endpoint', before: want({ candidates: [L1] }), selfBefore: null, after: want({ candidates: [L1] }), selfAfter: SAME, failFirst: false, next: L1 },
    { name: 'the LAN candidate changes while trying the old one', before: want({ candidates: [L1] }), selfBefore: SAME, after: want({ candidates: [L2] }), selfAfter: SAME, failFirst: false, next: L2 },
    { name: 'the peer\'s public endpoint moves while trying it', before: want(), selfBefore: OTHER, after: want({ endpoint: P_MOVED }), selfAfter: OTHER, failFirst: false, next: P_MOVED },
    { name: 'LAN candidates announced while waiting in the hub phase, before the retry slot', before: want(), selfBefore: SAME, after: want({ candidates: [L1] }), selfAfter: SAME, failFirst: true, next: L1 }
  ]

  it.each(cases)('$name', async ({ before, selfBefore, after, selfAfter, failFirst, next }) => {
    const sim = new Sim([before], { natClass: 'easy', publicAddress: selfBefore })
    await sim.step()
    let changeAt = CHANGE_AT
    if (failFirst) {
      await sim.timeOut()
      changeAt = sim.nowMs + 500
      expect(sim.track().retryAtMs).toBeGreaterThan(changeAt)
    }
    const failuresBefore = sim.track().failures
    sim.desired = [after]
    sim.self.publicAddress = selfAfter
    const out = await sim.step(changeAt)
    expect(out.changes).toEqual([attemptOf(next)])
    expect(sim.track()).toMatchObject({ phase: 'trying', sinceMs: changeAt, failures: 0, endpoint: `${next.address}:${next.port}` })
    expect(failuresBefore).toBe(failFirst ? 1 : 0)
    // The new attempt gets its own full timeout.
    expect((await sim.step(changeAt + timing.directTimeoutMs - 1)).changes).toEqual([])
    expect(sim.track().phase).toBe('trying')
    await sim.timeOut()
  })

  it('nothing changes while trying when the announcement does not change the candidates (other public address)', async () => {
    const sim = new Sim([want()], { natClass: 'easy', publicAddress: OTHER })
    await sim.step()
    sim.desired = [want({ candidates: [L1, L2] })]
    expect((await sim.step(CHANGE_AT)).changes).toEqual([])
    expect(sim.track()).toMatchObject({ phase: 'trying', sinceMs: T0, endpoint: '198.18.12.2:51820' })
  })
})

describe('reconcile: both sides behind hard NATs', () => {
  const cases: Array<{ self: string, peer: string, attempts: boolean }> = [
    { self: 'hard', peer: 'hard', attempts: false },
    { self: 'hard', peer: 'easy', attempts: true },
    { self: 'easy', peer: 'hard', attempts: true },
    { self: 'hard', peer: 'unknown', attempts: true },
    { self: 'unknown', peer: 'hard', attempts: true },
    { self: 'hard', peer: 'public', attempts: true },
    { self: 'public', peer: 'hard', attempts: true }
  ]

  it.each(cases)('self $self, peer $peer: attempt $attempts', async ({ self, peer, attempts }) => {
    const sim = new Sim([want({ natClass: peer })], { natClass: self, publicAddress: OTHER })
    const out = await sim.step()
    expect(out.changes).toEqual(attempts ? [attemptOf(P)] : [])
    expect(out.tracks.has(B)).toBe(attempts)
    expect(out.events.length).toBe(attempts ? 1 : 0)
    expect(sim.wg.peer(IFACE, B) !== undefined).toBe(attempts)
  })

  it('a hard peer with a router port mapping is tried at the mapping first, even from behind a hard NAT', async () => {
    const sim = new Sim([want({ natClass: 'hard', mapped: M })], { natClass: 'hard', publicAddress: OTHER })
    const out = await sim.step()
    expect(out.changes).toEqual([attemptOf(M)])
    expect(out.events[0]?.reason).toMatch(/mapped endpoint/)
    await sim.timeOut()
    const retry = await sim.step(sim.track().retryAtMs)
    expect(retry.changes).toEqual([attemptOf(P)])
  })

  it('a hard client with a port mapping of its own adds a hard peer, so the peer\'s handshake through the mapping counts', async () => {
    const sim = new Sim([want({ natClass: 'hard' })], { natClass: 'hard', publicAddress: OTHER, portMapped: true })
    const out = await sim.step()
    expect(out.changes).toEqual([attemptOf(P)])
  })

  it('never starts an attempt for a hard/hard pair, however long it waits', async () => {
    const sim = new Sim([want({ natClass: 'hard' })], { natClass: 'hard', publicAddress: OTHER })
    for (const t of [T0, T0 + 60_000, T0 + 3_600_000, T0 + 86_400_000]) {
      const out = await sim.step(t)
      expect(out.changes).toEqual([])
      expect(out.tracks.size).toBe(0)
    }
  })

  const becomesHopeless: Array<{ name: string, change: (sim: Sim) => void }> = [
    { name: 'our class becomes hard', change: (sim) => { sim.self.natClass = 'hard' } },
    { name: 'our class becomes hard and the peer\'s endpoint moves', change: (sim) => { sim.self.natClass = 'hard'; sim.desired = [want({ natClass: 'hard', endpoint: P_MOVED })] } }
  ]

  it.each(becomesHopeless)('a peer waiting in the hub phase is not retried once both are hard: $name', async ({ change }) => {
    const sim = new Sim([want({ natClass: 'hard' })], { natClass: 'easy', publicAddress: OTHER })
    await sim.step()
    await sim.timeOut()
    const waiting = sim.track()
    change(sim)
    for (const t of [sim.nowMs + 100, waiting.retryAtMs, waiting.retryAtMs + 3_600_000]) {
      const out = await sim.step(t)
      expect(out.changes).toEqual([])
      expect(out.events).toEqual([])
      expect(sim.track()).toMatchObject({ phase: 'hub', failures: 1 })
    }
    expect(sim.wg.peer(IFACE, B)).toMatchObject({ persistentKeepalive: 0, allowedIps: [] })
  })
})

describe('reconcile: parking after repeated failures', () => {
  const cases: Array<{ name: string, self: string | null, candidates: Endpoint[], attempts: number }> = [
    { name: 'one candidate: parked after maxFailures attempts', self: OTHER, candidates: [], attempts: timing.maxFailures },
    { name: 'two candidates: parked after maxFailures rounds of both', self: SAME, candidates: [L1], attempts: timing.maxFailures * 2 },
    { name: 'three candidates: parked after maxFailures rounds of all', self: SAME, candidates: [L1, L2], attempts: timing.maxFailures * 3 }
  ]

  it.each(cases)('$name', async ({ self, candidates, attempts }) => {
    const sim = new Sim([want({ candidates })], { natClass: 'easy', publicAddress: self })
    await sim.step()
    for (let failed = 1; failed <= attempts; failed++) {
      await sim.timeOut()
      expect(sim.track().failures).toBe(failed)
      if (failed < attempts) {
        expect(Number.isFinite(sim.track().retryAtMs)).toBe(true)
        expect((await sim.retry()).changes).toHaveLength(1)
      }
    }
    const parked = sim.track()
    expect(parked.retryAtMs).toBe(Number.POSITIVE_INFINITY)
    expect(parked.reason).toMatch(new RegExp(`no handshake in ${attempts} attempts`))
    for (const t of [sim.nowMs + 1, sim.nowMs + timing.retryMaxMs * 10, sim.nowMs + 365 * 86_400_000]) {
      const out = await sim.step(t)
      expect(out.changes).toEqual([])
      expect(out.events).toEqual([])
      expect(sim.track()).toEqual(parked)
    }
  })

  const wakers: Array<{ name: string, start?: DesiredPeer, change: (sim: Sim) => void, next: Endpoint, reason: RegExp }> = [
    { name: 'the peer\'s endpoint moves', change: (sim) => { sim.desired = [want({ endpoint: P_MOVED })] }, next: P_MOVED, reason: /new endpoint/ },
    { name: 'our NAT class changes', change: (sim) => { sim.self.natClass = 'public' }, next: P, reason: /NAT class changed \(public\/unknown\)/ },
    { name: 'the peer\'s NAT class changes', change: (sim) => { sim.desired = [want({ natClass: 'easy' })] }, next: P, reason: /NAT class changed \(easy\/easy\)/ },
    { name: 'we turn out to be behind the peer\'s router, and it has LAN candidates', start: want({ candidates: [L1] }), change: (sim) => { sim.self.publicAddress = SAME }, next: L1, reason: /new endpoint/ },
    // Its wgnat started after our attempts failed: the same endpoint, the same (unknown) class, but it now has us.
    { name: 'a silent peer announces for the first time', start: want({ silent: true }), change: (sim) => { sim.desired = [want()] }, next: P, reason: /^the peer started announcing$/ }
  ]

  /** A peer (at our other public address) parked after maxFailures failed attempts. */
  async function parkedSim (peer = want()): Promise<Sim> {
    const sim = new Sim([peer], { natClass: 'easy', publicAddress: OTHER })
    await sim.step()
    for (let i = 0; i < timing.maxFailures; i++) {
      if (i > 0) await sim.retry()
      await sim.timeOut()
    }
    expect(sim.track().retryAtMs).toBe(Number.POSITIVE_INFINITY)
    return sim
  }

  it.each(wakers)('a parked peer is tried again at once when $name', async ({ start, change, next, reason }) => {
    const sim = await parkedSim(start)
    change(sim)
    const at = sim.nowMs + 3_600_000
    const out = await sim.step(at)
    expect(out.changes).toEqual([attemptOf(next)])
    expect(out.events).toEqual([{ publicKey: B, from: 'hub', to: 'trying', reason: expect.stringMatching(reason) }])
    expect(sim.track()).toMatchObject({ phase: 'trying', failures: 0, sinceMs: at })
    // A fresh budget: the next failure is not parked.
    await sim.timeOut()
    expect(sim.track().failures).toBe(1)
    expect(Number.isFinite(sim.track().retryAtMs)).toBe(true)
  })

  const sleepers: Array<{ name: string, change: (sim: Sim) => void }> = [
    { name: 'its allowed IPs change', change: (sim) => { sim.desired = [want({ allowedIps: ['100.64.0.4/32'] })] } },
    { name: 'it goes offline and back', change: (sim) => { sim.desired = [want({ online: false })] } },
    { name: 'our public address changes but the peer has no LAN candidates', change: (sim) => { sim.self.publicAddress = SAME } },
    { name: 'it announces LAN candidates but our public addresses differ', change: (sim) => { sim.desired = [want({ candidates: [L1, L2] })] } }
  ]

  it('a parked silent peer (a wg-nat client never announces) stays parked while it stays silent', async () => {
    const sim = await parkedSim(want({ silent: true }))
    for (const peer of [want({ silent: true, online: false }), want({ silent: true })]) {
      sim.desired = [peer]
      const out = await sim.step(sim.nowMs + 3_600_000)
      expect(out.changes).toEqual([])
      expect(sim.track()).toMatchObject({ phase: 'hub', retryAtMs: Number.POSITIVE_INFINITY })
    }
  })

  it.each(sleepers)('a parked peer stays parked when $name', async ({ change }) => {
    const sim = await parkedSim()
    change(sim)
    const out = await sim.step(sim.nowMs + 3_600_000)
    expect(out.changes).toEqual([])
    expect(sim.track()).toMatchObject({ phase: 'hub', retryAtMs: Number.POSITIVE_INFINITY })
  })
})

describe('reconcile: only managed and desired peers are ever changed', () => {
  const C = testKey('c'); const FOREIGN = testKey('foreign')
  const foreignPeer = newPeer(FOREIGN, { allowedIps: ['100.64.0.50/32'], endpoint: ep('198.18.50.1:51820'), persistentKeepalive: 25 })
  const hubPeer = newPeer(HUB, { allowedIps: ['100.64.0.0/24'], endpoint: ep('198.18.0.1:51820'), persistentKeepalive: 25 })

  const cases: Array<{ name: string, desired: DesiredPeer[] | null, tracks: Array<[string, PeerTrack]>, onDevice: WgPeer[], keys: string[] }> = [
    { name: 'no table yet', desired: null, tracks: [], onDevice: [], keys: [] },
    { name: 'an empty table', desired: [], tracks: [], onDevice: [], keys: [] },
    { name: 'one new peer', desired: [want()], tracks: [], onDevice: [], keys: [B] },
    {
      name: 'a managed peer dropped from the table, still on the interface',
      desired: [],
      tracks: [[C, { phase: 'direct', sinceMs: T0, failures: 0, retryAtMs: 0, endpoint: null, targets: null, rx: 0, rxAtMs: T0, reason: '' }]],
      onDevice: [newPeer(C)],
      keys: [C]
    },
    {
      name: 'a managed peer dropped from the table and already gone from the interface',
      desired: [],
      tracks: [[C, { phase: 'hub', sinceMs: T0, failures: 1, retryAtMs: T0, endpoint: null, targets: null, rx: 0, rxAtMs: T0, reason: '' }]],
      onDevice: [],
      keys: []
    }
  ]

  it.each(cases)('$name', ({ desired, tracks, onDevice, keys }) => {
    const out = reconcile({
      nowMs: T0 + 1000,
      selfKey: SELF,
      device: { publicKey: SELF, listenPort: 51820, peers: [hubPeer, foreignPeer, ...onDevice] },
      desired: desired === null ? null : new Map(desired.map((d) => [d.publicKey, d])),
      tracks: new Map(tracks),
      timing,
      self: { natClass: 'easy', publicAddress: OTHER }
    })
    expect(out.changes.map((c) => c.publicKey).sort()).toEqual([...keys].sort())
  })

  /** A registry table as a hostile or buggy registry might send it: it lists us, the hub and a foreign peer too. */
  const tablePeer = fc.record({
    endpoint: fc.constantFrom(null, '198.18.12.2:51820', '198.18.12.2:60001', '198.18.13.3:51820'),
    lan: fc.subarray(['192.168.1.20:51820', '10.0.0.20:51820']),
    natClass: fc.constantFrom('public' as const, 'easy' as const, 'hard' as const, 'unknown' as const),
    readyForUs: fc.boolean(),
    allowedIps: fc.constantFrom(['100.64.0.3/32'], ['100.64.0.4/32'], ['100.64.0.0/24'], ['100.64.0.50/32'], ['10.9.0.0/16'], [])
  })
  const stepArb = fc.record({
    dtMs: fc.integer({ min: 0, max: 400_000 }),
    noTable: fc.boolean(),
    b: fc.option(tablePeer), c: fc.option(tablePeer), self: tablePeer, hub: tablePeer, foreign: tablePeer,
    selfClass: fc.constantFrom('public', 'easy', 'hard', 'unknown'),
    selfPublic: fc.constantFrom(null, '198.18.12.2', '203.0.113.9'),
    handshake: fc.subarray([B, C]),
    rx: fc.subarray([B, C])
  })

  it('vetted tables of any shape never lead to a change of our own key, the hub or a peer someone else configured', async () => {
    await fc.assert(fc.asyncProperty(fc.boolean(), fc.array(stepArb, { minLength: 1, maxLength: 25 }), async (punching, steps) => {
      const wg = new FakeWg()
      wg.addDevice(IFACE, { publicKey: SELF, listenPort: 51820, peers: [structuredClone(hubPeer), structuredClone(foreignPeer)] })
      let tracks = new Map<string, PeerTrack>()
      let nowMs = T0
      for (const s of steps) {
        nowMs += s.dtMs
        const device = await wg.show(IFACE)
        const table: TablePeer[] = []
        const add = (key: string, p: typeof s.self | null): void => {
          if (p === null) return
          table.push({ publicKey: key, endpoint: p.endpoint, allowedIps: [...p.allowedIps], latestHandshake: 0, online: true, announce: { natClass: p.natClass, mappedEndpoint: null, lanEndpoints: p.lan, ready: p.readyForUs ? [SELF] : [] } })
        }
        add(SELF, s.self); add(HUB, s.hub); add(FOREIGN, s.foreign); add(B, s.b); add(C, s.c)
        const { desired } = vetTable(table, {
          selfKey: SELF,
          registryKey: HUB,
          meshPrefixes: [parsePrefix('100.64.0.0/24')],
          registryAddresses: ['100.64.0.1'],
          hubPrefixes: [parsePrefix('100.64.0.0/24')],
          managed: new Set(tracks.keys()),
          device
        })
        const out = reconcile({ nowMs, selfKey: SELF, device, desired: s.noTable ? null : desired, tracks, timing, self: { natClass: s.selfClass, publicAddress: s.selfPublic }, punching })
        const allowed = new Set([...(s.noTable ? [] : desired.keys()), ...tracks.keys()])
        for (const c of out.changes) {
          expect([SELF, HUB, FOREIGN]).not.toContain(c.publicKey)
          expect(allowed.has(c.publicKey)).toBe(true)
          if (c.remove === true) expect(tracks.has(c.publicKey)).toBe(true)
        }
        for (const key of out.tracks.keys()) expect(allowed.has(key)).toBe(true)
        if (out.changes.length > 0) await wg.set(IFACE, out.changes)
        tracks = out.tracks
        // WireGuard's side of the story: some handshakes and some traffic.
        for (const key of s.handshake) { const p = wg.peer(IFACE, key); if (p !== undefined) p.latestHandshake = Math.floor(nowMs / 1000) }
        for (const key of s.rx) { const p = wg.peer(IFACE, key); if (p !== undefined) p.transferRx += 148 }
      }
      expect(wg.peer(IFACE, HUB)).toEqual(hubPeer)
      expect(wg.peer(IFACE, FOREIGN)).toEqual(foreignPeer)
      expect(wg.peer(IFACE, SELF)).toBeUndefined()
    }), { numRuns: 150 })
  })
})

describe('candidatesOf', () => {
  const V6P = ep('[2001:db8::7]:51820'); const V6L = ep('[fd00:1::7]:51820')
  const cases: Array<{ name: string, peer: DesiredPeer, selfPublic: string | null, expected: Endpoint[] }> = [
    { name: 'no endpoint: nowhere to go, even with LAN candidates', peer: want({ endpoint: null, candidates: [L1] }), selfPublic: null, expected: [] },
    { name: 'no endpoint, same-looking address irrelevant', peer: want({ endpoint: null, candidates: [L1] }), selfPublic: SAME, expected: [] },
    { name: 'our public address unknown: the public endpoint only', peer: want({ candidates: [L1, L2] }), selfPublic: null, expected: [P] },
    { name: 'different public addresses: the public endpoint only', peer: want({ candidates: [L1, L2] }), selfPublic: OTHER, expected: [P] },
    { name: 'same public address: LAN candidates in order, then the public endpoint', peer: want({ candidates: [L1, L2] }), selfPublic: SAME, expected: [L1, L2, P] },
    { name: 'same public address, no LAN candidates', peer: want(), selfPublic: SAME, expected: [P] },
    { name: 'same address, other port (the address is what counts)', peer: want({ endpoint: P_MOVED, candidates: [L1] }), selfPublic: SAME, expected: [L1, P_MOVED] },
    { name: 'IPv6: same public address', peer: want({ endpoint: V6P, candidates: [V6L] }), selfPublic: '2001:db8::7', expected: [V6L, V6P] },
    { name: 'IPv6: other public address', peer: want({ endpoint: V6P, candidates: [V6L] }), selfPublic: '2001:db8::8', expected: [V6P] },
    { name: 'a router port mapping first, then the public endpoint', peer: want({ mapped: M }), selfPublic: OTHER, expected: [M, P] },
    { name: 'a mapping, our public address unknown', peer: want({ mapped: M, candidates: [L1] }), selfPublic: null, expected: [M, P] },
    { name: 'a mapping behind the same router: LAN, not the mapping (no hairpin)', peer: want({ mapped: M, candidates: [L1] }), selfPublic: SAME, expected: [L1, P] },
    { name: 'a mapping equal to the public endpoint is tried once', peer: want({ mapped: P }), selfPublic: OTHER, expected: [P] }
  ]

  it.each(cases)('$name', ({ peer, selfPublic, expected }) => {
    expect(candidatesOf(peer, selfPublic)).toEqual(expected)
  })
})

describe('reconcile: a hub that does not relay has no path to protect', () => {
  const noRelay = (i: ReconcileInput): ReconcileInput => ({ ...i, hubRelays: false })

  it('a new peer gets its allowed IPs with the attempt, so traffic flows the moment the handshake completes', () => {
    const out = reconcile(noRelay(input(T0, [], new Map())))
    expect(out.changes).toEqual([{ publicKey: B, endpoint: ep('198.18.12.2:51820'), persistentKeepalive: 25, allowedIps: ['100.64.0.3/32'], kick: true }])
    expect(out.tracks.get(B)?.phase).toBe('trying')
  })

  it('the same peer behind a relaying hub gets none (the hub carries its traffic until a handshake)', () => {
    const out = reconcile({ ...input(T0, [], new Map()), hubRelays: true })
    expect(out.changes[0]).toMatchObject({ allowedIps: [] })
  })

  it('still counts the path direct only after a handshake, and leaves the routes alone while trying', () => {
    const tracks = reconcile(noRelay(input(T0, [], new Map()))).tracks
    const onDevice = newPeer(B, { endpoint: ep('198.18.12.2:51820'), persistentKeepalive: 25, allowedIps: ['100.64.0.3/32'] })
    const waiting = reconcile(noRelay(input(T0 + 500, [onDevice], tracks)))
    expect(waiting.changes).toEqual([])
    expect(waiting.tracks.get(B)?.phase).toBe('trying')
    onDevice.latestHandshake = Math.floor((T0 + 700) / 1000)
    expect(reconcile(noRelay(input(T0 + 800, [onDevice], waiting.tracks))).tracks.get(B)?.phase).toBe('direct')
  })

  it('turns direct without a `wg set` when the routes are already on, and sets them when they are not', () => {
    const tracks = reconcile(noRelay(input(T0, [], new Map()))).tracks
    const onDevice = newPeer(B, { endpoint: ep('198.18.12.2:51820'), persistentKeepalive: 25, allowedIps: ['100.64.0.3/32'], latestHandshake: Math.floor((T0 + 700) / 1000) })
    const done = reconcile(noRelay(input(T0 + 800, [onDevice], tracks)))
    expect(done.tracks.get(B)?.phase).toBe('direct')
    expect(done.changes).toEqual([])
    // Someone took them off meanwhile (or the hub relayed during the attempt): they go on with the promotion.
    const bare = { ...onDevice, allowedIps: [] }
    const relayed = reconcile(noRelay(input(T0 + 800, [bare], tracks)))
    expect(relayed.changes).toEqual([{ publicKey: B, allowedIps: ['100.64.0.3/32'] }])
  })

  it('takes the early routes off when the attempt fails', () => {
    const tracks = reconcile(noRelay(input(T0, [], new Map()))).tracks
    const onDevice = newPeer(B, { endpoint: ep('198.18.12.2:51820'), persistentKeepalive: 25, allowedIps: ['100.64.0.3/32'] })
    const failed = reconcile(noRelay(input(T0 + timing.directTimeoutMs, [onDevice], tracks)))
    expect(failed.changes).toEqual([{ publicKey: B, persistentKeepalive: 0, allowedIps: [] }])
    expect(failed.tracks.get(B)?.phase).toBe('hub')
  })

  it('takes them off mid-attempt when the hub starts relaying: the hub path is the safe one again', () => {
    const tracks = reconcile(noRelay(input(T0, [], new Map()))).tracks
    const onDevice = newPeer(B, { endpoint: ep('198.18.12.2:51820'), persistentKeepalive: 25, allowedIps: ['100.64.0.3/32'] })
    const out = reconcile({ ...input(T0 + 500, [onDevice], tracks), hubRelays: true })
    expect(out.changes).toEqual([{ publicKey: B, allowedIps: [] }])
    expect(out.tracks.get(B)?.phase).toBe('trying')
  })

  it('with punching, the routes go on when the armed attempt starts', () => {
    const armed = reconcile({ ...noRelay(input(T0, [], new Map())), punching: true })
    expect(armed.changes).toEqual([])
    expect(armed.tracks.get(B)?.phase).toBe('arming')
    const out = reconcile({ ...noRelay(input(T0 + timing.armTimeoutMs, [], armed.tracks)), punching: true, desired: new Map([[B, want({ readyFor: true })]]) })
    expect(out.changes).toEqual([{ publicKey: B, endpoint: ep('198.18.12.2:51820'), persistentKeepalive: 25, allowedIps: ['100.64.0.3/32'], kick: true }])
  })
})

describe('reconcile: a peer flapping its announcements cannot make us send without bound', () => {
  it('starts fresh attempts for new LAN candidates from a small bucket, then one per FRESH_REFILL_MS', async () => {
    // B sits behind our router and announces a new list of LAN candidates (anyone's addresses) twice a second.
    const sim = new Sim([want({ candidates: [L1] })], { publicAddress: SAME })
    let attempts = 0
    const durationMs = 120_000
    for (let t = 0; t <= durationMs; t += 500) {
      const n = t / 500
      sim.desired = [want({ candidates: [ep(`192.168.1.${(n % 200) + 20}:51820`)] })]
      const out = await sim.step(T0 + t)
      attempts += out.changes.filter((c) => c.kick === true).length
    }
    // Flapping 240 times: at most the burst, one per 10 s, and the timed retries of the backoff.
    expect(FRESH_REFILL_MS).toBeGreaterThanOrEqual(10_000)
    const bound = FRESH_BURST + durationMs / 10_000 + 2
    expect(attempts).toBeGreaterThan(FRESH_BURST) // it does keep trying the new candidates, at a bounded rate
    expect(attempts).toBeLessThanOrEqual(bound)
  })

  it('a direct peer flapping its LAN candidates moves our endpoint only within the same bucket (each move sends to the address it names)', async () => {
    const sim = new Sim([want({ candidates: [L1] })], { publicAddress: SAME })
    await sim.step()
    // The attempt on L1 got its handshake: direct. From then on the peer names a new LAN candidate every second.
    const handshake = (): void => { const p = sim.wg.peer(IFACE, B)!; p.latestHandshake = Math.floor(sim.nowMs / 1000); p.transferRx += 92 }
    handshake()
    await sim.step(sim.nowMs + 200)
    expect(sim.track().phase).toBe('direct')
    let moves = 0
    const durationMs = 60_000
    for (let t = 1000; t <= durationMs; t += 1000) {
      sim.desired = [want({ candidates: [ep(`192.168.1.${(t / 1000) + 20}:51820`)] })]
      const out = await sim.step(T0 + 200 + t)
      moves += out.changes.filter((c) => c.endpoint !== undefined).length
    }
    expect(moves).toBeGreaterThan(FRESH_BURST)
    expect(moves).toBeLessThanOrEqual(FRESH_BURST + durationMs / FRESH_REFILL_MS + 1)
  })

  it('still follows a real change at once (a rebooted router announces a new endpoint once)', async () => {
    const sim = new Sim([want()])
    await sim.step()
    await sim.timeOut()
    sim.desired = [want({ endpoint: P_MOVED })]
    const out = await sim.step(sim.nowMs + 100)
    expect(out.changes).toEqual([attemptOf(P_MOVED)])
  })
})

describe('reconcile: a peer saying it is ready for us', () => {
  it('brings an attempt forward only between punching clients, and never wakes a parked pair', async () => {
    for (const punching of [false, true]) {
      const sim = new Sim([want()])
      await sim.step()
      await sim.timeOut()
      const before = sim.track()
      sim.desired = [want({ readyFor: true })]
      const out = reconcile({ nowMs: sim.nowMs + 100, selfKey: SELF, device: await sim.wg.show(IFACE), desired: new Map([[B, want({ readyFor: true })]]), tracks: sim.tracks, timing, punching })
      expect(out.tracks.get(B)?.phase).toBe(punching ? 'arming' : 'hub')
      if (punching) expect(out.tracks.get(B)?.failures).toBe(before.failures) // brought forward, failures kept
      // Parked: no attempt, whatever the peer says.
      const parked = new Map([[B, { ...before, retryAtMs: Number.POSITIVE_INFINITY }]])
      const still = reconcile({ nowMs: sim.nowMs + 100, selfKey: SELF, device: await sim.wg.show(IFACE), desired: new Map([[B, want({ readyFor: true })]]), tracks: parked, timing, punching })
      expect(still.tracks.get(B)?.phase).toBe('hub')
      expect(still.changes).toEqual([])
    }
  })
})
