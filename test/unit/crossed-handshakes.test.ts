import { describe, expect, it } from 'vitest'
import { CROSSED_WAIT_MS, CROSSED_WAIT_OTHER_MS, MAX_REINITIATIONS, crossedHandshakes } from '../../src/client/paths/crossed-handshakes.js'
import { defaultTiming, PROMOTE_DELAY_S, reconcile, type PeerTrack, type ReconcileInput } from '../../src/client/paths/reconcile.js'
import type { DesiredPeer } from '../../src/client/paths/vet-table.js'
import type { WgPeer } from '../../src/shared/wg-dump.js'
import { ep, newPeer } from '../helpers/fake-wg.js'
import { testKey } from '../helpers/keys.js'

// Two keys in a known order: the side whose key sorts first re-initiates first.
const [LOW, HIGH] = [testKey('x'), testKey('y')].sort() as [string, string]
const HUB = testKey('hub')
const T0 = 1_700_000_000_000
const timing = defaultTiming(25)
const PEER_ENDPOINT = '198.18.12.2:51820'
/** A handshake initiation, as wireguard-go counts it in transfer-rx. */
const INITIATION = 148

function want (publicKey: string): DesiredPeer {
  return { publicKey, endpoint: ep(PEER_ENDPOINT), allowedIps: ['100.64.0.3/32'], online: true, candidates: [], natClass: 'easy', readyFor: false }
}

/** One side of the pair: `self` reconciles towards `peer`. */
function side (self: string, peer: string, hubRelays = true) {
  const input = (nowMs: number, peers: WgPeer[], tracks: Map<string, PeerTrack>): ReconcileInput => ({
    nowMs,
    selfKey: self,
    device: { publicKey: self, listenPort: 51820, peers: [newPeer(HUB, { allowedIps: ['100.64.0.0/24'] }), ...peers] },
    desired: new Map([[peer, want(peer)]]),
    tracks,
    timing,
    hubRelays
  })
  return { input, run: (nowMs: number, peers: WgPeer[], tracks: Map<string, PeerTrack>) => reconcile(input(nowMs, peers, tracks)) }
}

/** The peer as WireGuard shows it after two initiations crossed: the other's answered, ours dropped, no session. */
function crossed (peer: string, over: Partial<WgPeer> = {}): WgPeer {
  return newPeer(peer, { endpoint: ep(PEER_ENDPOINT), persistentKeepalive: 25, transferRx: INITIATION, transferTx: INITIATION + 92, ...over })
}

describe('crossedHandshakes (pure)', () => {
  const base = { nowMs: T0 + 1000, selfKey: LOW, peerKey: HIGH, heardAtMs: T0, reinitiations: 0, onDevice: { hasPresharedKey: false } }

  it('the side whose key sorts first goes after CROSSED_WAIT_MS, the other after CROSSED_WAIT_OTHER_MS', () => {
    expect(crossedHandshakes({ ...base, nowMs: T0 + CROSSED_WAIT_MS - 1 })).toBe(false)
    expect(crossedHandshakes({ ...base, nowMs: T0 + CROSSED_WAIT_MS })).toBe(true)
    const other = { ...base, selfKey: HIGH, peerKey: LOW }
    expect(crossedHandshakes({ ...other, nowMs: T0 + CROSSED_WAIT_MS })).toBe(false)
    expect(crossedHandshakes({ ...other, nowMs: T0 + CROSSED_WAIT_OTHER_MS - 1 })).toBe(false)
    expect(crossedHandshakes({ ...other, nowMs: T0 + CROSSED_WAIT_OTHER_MS })).toBe(true)
  })

  it('never without having heard from the peer, past the limit, or with a preshared key', () => {
    expect(crossedHandshakes({ ...base, heardAtMs: undefined })).toBe(false)
    expect(crossedHandshakes({ ...base, reinitiations: MAX_REINITIATIONS })).toBe(false)
    expect(crossedHandshakes({ ...base, reinitiations: MAX_REINITIATIONS - 1 })).toBe(true)
    expect(crossedHandshakes({ ...base, onDevice: { hasPresharedKey: true } })).toBe(false)
  })
})

describe('reconcile: initiations that crossed', () => {
  it('the first side re-adds the peer (a fresh initiation at once) once it heard from it and no handshake followed', () => {
    const a = side(LOW, HIGH)
    const started = a.run(T0, [], new Map())
    expect(started.tracks.get(HIGH)).toMatchObject({ phase: 'trying', rx: 0 })
    // The first read after the attempt: the peer's initiation arrived, no session.
    const heard = a.run(T0 + 150, [crossed(HIGH)], started.tracks)
    expect(heard.changes).toEqual([])
    expect(heard.tracks.get(HIGH)).toMatchObject({ phase: 'trying', heardAtMs: T0 + 150 })
    expect(a.run(T0 + 150 + CROSSED_WAIT_MS - 1, [crossed(HIGH)], heard.tracks).changes).toEqual([])
    // Towards the endpoint WireGuard has now (where the peer's initiation came from), still without routes.
    const roamed = crossed(HIGH, { endpoint: ep('198.18.12.2:40000') })
    const again = a.run(T0 + 150 + CROSSED_WAIT_MS, [roamed], heard.tracks)
    expect(again.changes).toEqual([
      { publicKey: HIGH, remove: true },
      { publicKey: HIGH, endpoint: ep('198.18.12.2:40000'), persistentKeepalive: 25, allowedIps: [] }
    ])
    expect(again.events).toEqual([])
    expect(again.tracks.get(HIGH)).toMatchObject({ phase: 'trying', sinceMs: T0, rx: 0, heardAtMs: undefined, reinitiations: 1 })
    // The re-added peer's counters start from zero, and so does the baseline: a fresh initiation from the peer (as
    // much as the one heard before) is heard again, and crosses again: one more re-add, then no more.
    const fresh = newPeer(HIGH, { endpoint: ep('198.18.12.2:40000'), persistentKeepalive: 25, transferRx: INITIATION, transferTx: INITIATION + 92 })
    const heardAgain = a.run(T0 + 600, [fresh], again.tracks)
    expect(heardAgain.changes).toEqual([])
    expect(heardAgain.tracks.get(HIGH)?.heardAtMs).toBe(T0 + 600)
    const second = a.run(T0 + 600 + CROSSED_WAIT_MS, [fresh], heardAgain.tracks)
    expect(second.changes.map((c) => c.remove === true)).toEqual([true, false])
    expect(second.tracks.get(HIGH)?.reinitiations).toBe(2)
    const quiet = a.run(T0 + 1000, [newPeer(HIGH, { endpoint: ep('198.18.12.2:40000'), persistentKeepalive: 25, transferTx: INITIATION })], second.tracks)
    expect(quiet.changes).toEqual([])
    expect(quiet.tracks.get(HIGH)?.heardAtMs).toBeUndefined()
    // The peer answers: a handshake, and the routes move at the instant both sides compute (the hub relays).
    const hs = Math.floor((T0 + 1050) / 1000)
    const answered = newPeer(HIGH, { endpoint: ep('198.18.12.2:40000'), persistentKeepalive: 25, transferRx: 92, transferTx: INITIATION + 32, latestHandshake: hs })
    expect(a.run(T0 + 1100, [answered], quiet.tracks).tracks.get(HIGH)).toMatchObject({ phase: 'trying', promoteAtMs: (hs + PROMOTE_DELAY_S) * 1000 })
  })

  it('where the hub does not relay, the re-added peer keeps its routes', () => {
    const a = side(LOW, HIGH, false)
    const started = a.run(T0, [], new Map())
    const onDevice = crossed(HIGH, { allowedIps: ['100.64.0.3/32'] })
    const heard = a.run(T0 + 1000, [onDevice], started.tracks)
    const again = a.run(T0 + 1000 + CROSSED_WAIT_MS, [onDevice], heard.tracks)
    expect(again.changes).toEqual([
      { publicKey: HIGH, remove: true },
      { publicKey: HIGH, endpoint: ep(PEER_ENDPOINT), persistentKeepalive: 25, allowedIps: ['100.64.0.3/32'] }
    ])
  })

  it('the other side waits CROSSED_WAIT_OTHER_MS: the two fresh initiations must not cross again', () => {
    const b = side(HIGH, LOW)
    const started = b.run(T0, [], new Map())
    const heard = b.run(T0 + 150, [crossed(LOW)], started.tracks)
    expect(b.run(T0 + 150 + CROSSED_WAIT_MS, [crossed(LOW)], heard.tracks).changes).toEqual([])
    expect(b.run(T0 + 150 + CROSSED_WAIT_OTHER_MS, [crossed(LOW)], heard.tracks).changes).toEqual([
      { publicKey: LOW, remove: true },
      { publicKey: LOW, endpoint: ep(PEER_ENDPOINT), persistentKeepalive: 25, allowedIps: [] }
    ])
  })

  it('answering the peer\'s initiation normally ends in a handshake, and then nothing is re-added', () => {
    const a = side(LOW, HIGH, false)
    const started = a.run(T0, [], new Map())
    const heard = a.run(T0 + 150, [crossed(HIGH)], started.tracks)
    const confirmed = crossed(HIGH, { transferRx: INITIATION + 32, latestHandshake: Math.floor((T0 + 200) / 1000) })
    const out = a.run(T0 + 150 + CROSSED_WAIT_MS, [confirmed], heard.tracks)
    expect(out.changes.some((c) => c.remove === true)).toBe(false)
    expect(out.tracks.get(HIGH)?.phase).toBe('direct')
  })

  it('nothing heard from the peer (its NAT dropped our initiation, it has not started): no re-add, WireGuard retries', () => {
    const a = side(LOW, HIGH)
    let tracks = a.run(T0, [], new Map()).tracks
    const silent = newPeer(HIGH, { endpoint: ep(PEER_ENDPOINT), persistentKeepalive: 25, transferTx: INITIATION })
    for (let t = T0 + 150; t < T0 + 5000; t += 150) {
      const out = a.run(t, [silent], tracks)
      expect(out.changes).toEqual([])
      tracks = out.tracks
    }
  })

  it('re-initiates at most MAX_REINITIATIONS times in one attempt, then leaves it to WireGuard and the attempt\'s timeout', () => {
    const a = side(LOW, HIGH)
    let tracks = a.run(T0, [], new Map()).tracks
    let readds = 0
    let rx = 0
    for (let i = 1, t = T0 + 150; t < T0 + 9000; i++, t += 150) {
      if (i % 4 === 0) rx += INITIATION // the peer keeps sending initiations that never complete
      const out = a.run(t, [crossed(HIGH, { transferRx: rx })], tracks)
      if (out.changes.some((c) => c.remove === true)) { readds++; rx = 0 }
      tracks = out.tracks
    }
    expect(readds).toBe(MAX_REINITIATIONS)
  })

  it('a peer with a preshared key is never re-added (we do not hold its key)', () => {
    const a = side(LOW, HIGH)
    const started = a.run(T0, [], new Map())
    const psk = crossed(HIGH, { hasPresharedKey: true })
    const heard = a.run(T0 + 150, [psk], started.tracks)
    expect(a.run(T0 + 2000, [psk], heard.tracks).changes).toEqual([])
  })

  it('an attempt that re-adds a peer which handshook before takes zero as its baseline, not the old counters', () => {
    const a = side(LOW, HIGH)
    // A retry after a failure: the peer is on the interface with an old session's counters.
    const old = newPeer(HIGH, { endpoint: ep(PEER_ENDPOINT), transferRx: 50_000, transferTx: 60_000, latestHandshake: Math.floor(T0 / 1000) - 600 })
    const hub: PeerTrack = { phase: 'hub', sinceMs: T0 - 30_000, failures: 1, retryAtMs: T0, endpoint: PEER_ENDPOINT, targets: PEER_ENDPOINT, rx: 50_000, rxAtMs: T0 - 30_000, reason: 'x', classes: 'unknown/easy' }
    const started = a.run(T0, [old], new Map([[HIGH, hub]]))
    expect(started.changes[0]).toEqual({ publicKey: HIGH, remove: true })
    expect(started.tracks.get(HIGH)).toMatchObject({ phase: 'trying', rx: 0 })
    const fresh = newPeer(HIGH, { endpoint: ep(PEER_ENDPOINT), persistentKeepalive: 25, transferTx: INITIATION })
    const read = a.run(T0 + 150, [fresh], started.tracks)
    expect(read.tracks.get(HIGH)?.heardAtMs).toBeUndefined()
    expect(a.run(T0 + 150 + CROSSED_WAIT_OTHER_MS, [fresh], read.tracks).changes).toEqual([])
    // The peer's initiation on the fresh peer (148 bytes, far below the old counters) is heard.
    const heard = a.run(T0 + 300, [{ ...fresh, transferRx: INITIATION }], started.tracks)
    expect(heard.tracks.get(HIGH)?.heardAtMs).toBe(T0 + 300)
  })

  it('while the routes wait for the instant both sides compute (the hub relays), a handshake is there: no re-add', () => {
    const a = side(LOW, HIGH)
    const started = a.run(T0, [], new Map())
    const heard = a.run(T0 + 150, [crossed(HIGH)], started.tracks)
    const shook = crossed(HIGH, { transferRx: INITIATION + 32, latestHandshake: Math.floor((T0 + 300) / 1000) })
    const waiting = a.run(T0 + 2000, [shook], heard.tracks)
    expect(waiting.tracks.get(HIGH)).toMatchObject({ phase: 'trying', promoteAtMs: expect.any(Number) })
    expect(waiting.changes).toEqual([])
  })

  it('the attempt\'s timeout wins over a re-add that is due at the same read, and the next attempt may re-add again', () => {
    const a = side(LOW, HIGH)
    const started = a.run(T0, [], new Map())
    const heard = a.run(T0 + 150, [crossed(HIGH)], started.tracks)
    const once = a.run(T0 + 150 + CROSSED_WAIT_MS, [crossed(HIGH)], heard.tracks)
    expect(once.tracks.get(HIGH)?.reinitiations).toBe(1)
    const heardLate = a.run(T0 + timing.directTimeoutMs - 100, [crossed(HIGH)], once.tracks)
    const failed = a.run(T0 + timing.directTimeoutMs + 200, [crossed(HIGH)], heardLate.tracks)
    expect(failed.tracks.get(HIGH)?.phase).toBe('hub')
    expect(failed.changes.some((c) => c.remove === true)).toBe(false)
    // The retry is a new attempt: nothing heard yet, no re-initiations spent.
    const at = failed.tracks.get(HIGH)?.retryAtMs as number
    const retry = a.run(at, [crossed(HIGH, { persistentKeepalive: 0 })], failed.tracks)
    expect(retry.tracks.get(HIGH)?.phase).toBe('trying')
    expect(retry.tracks.get(HIGH)?.heardAtMs).toBeUndefined()
    expect(retry.tracks.get(HIGH)?.reinitiations ?? 0).toBe(0)
  })

  it('with punching, the baseline is taken when the attempt leaves arming: what arrived while arming is not hearing', () => {
    const a = { ...side(LOW, HIGH), run: (nowMs: number, peers: WgPeer[], tracks: Map<string, PeerTrack>) => reconcile({ ...side(LOW, HIGH).input(nowMs, peers, tracks), punching: true }) }
    const arming = a.run(T0, [newPeer(HIGH, { endpoint: ep(PEER_ENDPOINT) })], new Map())
    expect(arming.tracks.get(HIGH)?.phase).toBe('arming')
    // The peer's initiation came while we armed (no keepalive yet: we did not answer with our own).
    const early = newPeer(HIGH, { endpoint: ep(PEER_ENDPOINT), transferRx: INITIATION, transferTx: 92 })
    const trying = a.run(T0 + timing.armTimeoutMs, [early], arming.tracks)
    expect(trying.tracks.get(HIGH)).toMatchObject({ phase: 'trying', rx: INITIATION })
    const read = a.run(T0 + timing.armTimeoutMs + 150, [early], trying.tracks)
    expect(read.tracks.get(HIGH)?.heardAtMs).toBeUndefined()
    expect(a.run(T0 + timing.armTimeoutMs + 150 + CROSSED_WAIT_OTHER_MS, [early], read.tracks).changes).toEqual([])
  })
})

describe('reconcile: a direct path\'s probe whose initiation crossed the peer\'s', () => {
  const ROUTES = ['100.64.0.3/32']
  /** A direct peer just probed (removed and re-added at T0: counters zero, no handshake), as directCheck leaves it. */
  const probed = (peer: string): Map<string, PeerTrack> => new Map([[peer, {
    phase: 'direct', sinceMs: T0 - 60_000, failures: 0, retryAtMs: 0, endpoint: PEER_ENDPOINT, targets: PEER_ENDPOINT, rx: 0, rxAtMs: T0 - 2000, tx: 0, txAtRx: 0, probeAtMs: T0, reinitiations: 0, reason: 'handshake'
  }]])
  const onDevice = (peer: string, over: Partial<WgPeer> = {}): WgPeer => newPeer(peer, { endpoint: ep(PEER_ENDPOINT), allowedIps: ROUTES, persistentKeepalive: 25, transferTx: INITIATION, ...over })
  const REPROBE = (peer: string): unknown[] => [{ publicKey: peer, remove: true }, { publicKey: peer, endpoint: ep(PEER_ENDPOINT), persistentKeepalive: 25, allowedIps: ROUTES }]

  it('the first side hears the peer\'s initiation without a handshake, sends a fresh one after CROSSED_WAIT_MS, and the answer ends the probe', () => {
    const a = side(LOW, HIGH, false)
    const heard = a.run(T0 + 150, [onDevice(HIGH, { transferRx: INITIATION })], probed(HIGH))
    expect(heard.changes).toEqual([])
    expect(heard.tracks.get(HIGH)).toMatchObject({ phase: 'direct', probeAtMs: T0, heardAtMs: T0 + 150 })
    const again = a.run(T0 + 150 + CROSSED_WAIT_MS, [onDevice(HIGH, { transferRx: INITIATION })], heard.tracks)
    expect(again.changes).toEqual(REPROBE(HIGH))
    expect(again.tracks.get(HIGH)).toMatchObject({ phase: 'direct', probeAtMs: T0, rx: 0, reinitiations: 1 })
    const shook = onDevice(HIGH, { transferRx: 92, latestHandshake: Math.floor((T0 + 450) / 1000) })
    const done = a.run(T0 + 550, [shook], again.tracks)
    expect(done.changes).toEqual([])
    expect(done.tracks.get(HIGH)).toMatchObject({ phase: 'direct', probeAtMs: 0, probeOkAtMs: T0 + 550 })
  })

  it('the other side counts the peer\'s bytes as an answer at once, as before (no re-add: the two would cross again)', () => {
    const b = side(HIGH, LOW, false)
    const heard = b.run(T0 + 150, [onDevice(LOW, { transferRx: INITIATION })], probed(LOW))
    expect(heard.changes).toEqual([])
    expect(heard.tracks.get(LOW)).toMatchObject({ phase: 'direct', probeAtMs: 0, probeOkAtMs: T0 + 150 })
  })

  it('heard but never a handshake: the probe still counts as answered at its timeout (the peer is there), not dead', () => {
    const a = side(LOW, HIGH, false)
    let tracks = probed(HIGH)
    let device = onDevice(HIGH, { transferRx: INITIATION })
    const phases: string[] = []
    for (let t = T0 + 150; t <= T0 + timing.probeTimeoutMs + 150; t += 150) {
      const out = a.run(t, [device], tracks)
      if (out.changes.some((c) => c.remove === true)) device = onDevice(HIGH)
      tracks = out.tracks
      phases.push(out.tracks.get(HIGH)?.phase ?? 'none')
    }
    expect(phases.every((p) => p === 'direct')).toBe(true)
    expect(tracks.get(HIGH)).toMatchObject({ probeAtMs: 0 })
  })

  it('nothing heard: dead at the probe\'s timeout, routes back to the hub, as before', () => {
    const a = side(LOW, HIGH, false)
    const out = a.run(T0 + timing.probeTimeoutMs, [onDevice(HIGH)], probed(HIGH))
    expect(out.tracks.get(HIGH)?.phase).toBe('hub')
    expect(out.changes).toEqual([{ publicKey: HIGH, allowedIps: [], persistentKeepalive: 0 }])
  })
})
