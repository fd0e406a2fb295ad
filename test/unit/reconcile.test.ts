import { describe, expect, it } from 'vitest'
import { adoptTracks, defaultTiming, reconcile, retryAt, type PeerTrack, type ReconcileInput } from '../../src/client/reconcile.js'
import type { DesiredPeer } from '../../src/client/vet-table.js'
import type { WgPeer } from '../../src/shared/wg-dump.js'
import { ep, newPeer } from '../helpers/fake-wg.js'
import { testKey } from '../helpers/keys.js'

const SELF = testKey('self'); const HUB = testKey('hub'); const B = testKey('b')
const T0 = 1_700_000_000_000
const timing = defaultTiming(25)

function want (over: Partial<DesiredPeer> = {}): DesiredPeer {
  return { publicKey: B, endpoint: ep('198.18.12.2:51820'), allowedIps: ['100.64.0.3/32'], online: true, candidates: [], natClass: 'unknown', ...over }
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
    expect(out.changes).toEqual([{ publicKey: B, endpoint: ep('198.18.12.2:51820'), persistentKeepalive: 25, allowedIps: [] }])
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

  it('leaves a working direct path alone when the registry reports another endpoint (roaming knows better)', () => {
    const { tracks, onDevice } = startTrying()
    onDevice.latestHandshake = Math.floor(T0 / 1000) + 1
    const direct = reconcile(input(T0 + 1500, [onDevice], tracks)).tracks
    onDevice.allowedIps = ['100.64.0.3/32']
    const moved = [want({ endpoint: ep('198.18.12.2:60000') })]
    expect(reconcile(input(T0 + 3000, [onDevice], direct, moved)).changes).toEqual([])
    // Once the handshake is old, the registry's word wins.
    const later = reconcile(input(T0 + 200_000, [{ ...onDevice, transferRx: 5 }], direct, moved))
    expect(later.changes).toEqual([{ publicKey: B, endpoint: ep('198.18.12.2:60000'), persistentKeepalive: 25, allowedIps: undefined }])
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
    device.peers[0]!.latestHandshake = nowS - 600
    expect(adoptTracks(device, [B], T0, timing).get(B)?.phase).toBe('hub')
    expect(adoptTracks(device, [HUB].filter(() => false), T0, timing).size).toBe(0)
  })
})
