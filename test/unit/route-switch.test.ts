import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { defaultTiming, PROMOTE_DELAY_S, reconcile, type PeerTrack } from '../../src/client/paths/reconcile.js'
import { HEALING_TICK_MS, HEALING_WATCH_MS, healingTickMs, plannedSwitches, RouteSwitchTimer, STAGE_AHEAD_MS } from '../../src/client/paths/route-switch.js'
import { addconfText } from '../../src/shared/wg-addconf.js'
import { WgError } from '../../src/shared/errors.js'
import type { DesiredPeer } from '../../src/client/paths/vet-table.js'
import type { PeerChange } from '../../src/shared/wg.js'
import { ep, newPeer } from '../helpers/fake-wg.js'
import { testKey } from '../helpers/keys.js'

const SELF = testKey('self'); const HUB = testKey('hub'); const B = testKey('b')
const T0 = 1_700_000_000_000
const timing = defaultTiming(25)
const ALLOWED = ['100.64.0.3/32']
const want: DesiredPeer = { publicKey: B, endpoint: ep('198.18.12.2:51820'), allowedIps: ALLOWED, online: true, candidates: [], natClass: 'easy', readyFor: false }

function track (over: Partial<PeerTrack>): PeerTrack {
  return { phase: 'hub', sinceMs: T0, failures: 0, retryAtMs: T0 + 15_000, endpoint: '198.18.12.2:51820', targets: '198.18.12.2:51820', rx: 0, rxAtMs: T0, reason: 'test', ...over }
}

function hubStep (nowMs: number, t: PeerTrack, latestHandshake: number, allowedIps: string[] = []): ReturnType<typeof reconcile> {
  const peer = newPeer(B, { endpoint: ep('198.18.12.2:51820'), latestHandshake, allowedIps, persistentKeepalive: allowedIps.length > 0 ? 25 : 0 })
  return reconcile({ nowMs, selfKey: SELF, device: { publicKey: SELF, listenPort: 51820, peers: [newPeer(HUB, { allowedIps: ['100.64.0.0/24'] }), peer] }, desired: new Map([[B, want]]), tracks: new Map([[B, t]]), timing })
}

describe('a healed pair on the hub: the handshake WireGuard completed by itself moves the routes at the agreed instant', () => {
  const lost = track({ lostAtMs: T0, sinceMs: T0 })
  const hsS = Math.floor(T0 / 1000) + 20

  it.each([
    { name: 'seen before the instant: waits, no change', at: hsS * 1000 + 300, phase: 'hub', changes: [] as PeerChange[], promoteAtMs: (hsS + PROMOTE_DELAY_S) * 1000 },
    { name: 'at the instant, the timer not yet fired: the routes and the keepalive', at: (hsS + PROMOTE_DELAY_S) * 1000, phase: 'direct', changes: [{ publicKey: B, allowedIps: ALLOWED, persistentKeepalive: 25 }], promoteAtMs: 0 }
  ])('$name', ({ at, phase, changes, promoteAtMs }) => {
    const out = hubStep(at, lost, hsS)
    expect(out.tracks.get(B)?.phase).toBe(phase)
    expect(out.changes).toEqual(changes)
    expect(out.tracks.get(B)?.promoteAtMs ?? 0).toBe(promoteAtMs)
  })

  it('after the timer put the routes on, the next read records the phase without a second wg set', () => {
    const out = hubStep((hsS + PROMOTE_DELAY_S) * 1000 + 150, { ...lost, promoteAtMs: (hsS + PROMOTE_DELAY_S) * 1000 }, hsS, ALLOWED)
    expect(out.tracks.get(B)?.phase).toBe('direct')
    expect(out.changes).toEqual([])
  })

  it('a pair that never lost a path still goes direct at once (no hub traffic to protect, formation stays fast)', () => {
    const out = hubStep(hsS * 1000 + 300, track({ failures: 1 }), hsS)
    expect(out.tracks.get(B)?.phase).toBe('direct')
  })

  it('both sides compute the same instant from the handshake second, whenever each reads it', () => {
    const seenAt = [hsS * 1000 + 10, hsS * 1000 + 990, hsS * 1000 + 1900]
    const instants = seenAt.map((at) => hubStep(at, lost, hsS).tracks.get(B)?.promoteAtMs)
    expect(new Set(instants).size).toBe(1)
  })
})

describe('healingTickMs and plannedSwitches', () => {
  it.each([
    { name: 'hub, lost just now', t: track({ lostAtMs: T0 }), at: T0 + 1000, want: HEALING_TICK_MS },
    { name: 'hub, lost long ago', t: track({ lostAtMs: T0 }), at: T0 + HEALING_WATCH_MS, want: undefined },
    { name: 'hub, never direct', t: track({}), at: T0 + 1000, want: undefined },
    { name: 'hub, switch planned', t: track({ lostAtMs: T0, promoteAtMs: T0 + 3000 }), at: T0 + 1000, want: undefined },
    { name: 'direct', t: track({ phase: 'direct', lostAtMs: T0 }), at: T0 + 1000, want: undefined }
  ])('$name', ({ t, at, want: expected }) => {
    expect(healingTickMs(t, at)).toBe(expected)
  })

  it('plans the routes and keepalive of trying and hub peers with an instant, nothing else', () => {
    const tracks = new Map<string, PeerTrack>([
      [B, track({ promoteAtMs: T0 + 3000 })],
      [testKey('c'), track({ phase: 'trying' })],
      [testKey('d'), track({ phase: 'direct', promoteAtMs: T0 + 3000 })]
    ])
    expect(plannedSwitches(tracks, new Map([[B, want]]), 25)).toEqual([{ publicKey: B, atMs: T0 + 3000, change: { publicKey: B, allowedIps: ALLOWED, persistentKeepalive: 25 } }])
    expect(plannedSwitches(tracks, null, 25)).toEqual([])
  })
})

describe('RouteSwitchTimer', () => {
  beforeEach(() => { vi.useFakeTimers({ now: T0 }) })
  afterEach(() => { vi.useRealTimers() })

  const planned = (atMs: number): Parameters<RouteSwitchTimer['plan']>[0] => [{ publicKey: B, atMs, change: { publicKey: B, allowedIps: ALLOWED } }]

  it('applies the switch at its instant, once, however often it is planned again, and reports it', async () => {
    const applied: Array<{ at: number, changes: PeerChange[] }> = []
    const done: unknown[] = []
    const timer = new RouteSwitchTimer({ apply: async (changes) => { applied.push({ at: Date.now(), changes }) }, done: (err) => { done.push(err) } })
    timer.plan(planned(T0 + 3000))
    await vi.advanceTimersByTimeAsync(1000)
    timer.plan(planned(T0 + 3000))
    await vi.advanceTimersByTimeAsync(1999)
    expect(applied).toEqual([])
    await vi.advanceTimersByTimeAsync(1)
    expect(applied).toEqual([{ at: T0 + 3000, changes: [{ publicKey: B, allowedIps: ALLOWED }] }])
    timer.plan(planned(T0 + 3000))
    await vi.advanceTimersByTimeAsync(5000)
    expect(applied).toHaveLength(1)
    expect(done).toEqual([undefined])
    timer.stop()
  })

  it('a new instant re-arms; a switch no longer planned, or a stopped timer, applies nothing; a failure is reported', async () => {
    const applied: number[] = []
    const done: unknown[] = []
    const timer = new RouteSwitchTimer({ apply: async () => { applied.push(Date.now()); throw new Error('wg failed') }, done: (err) => { done.push(err) } })
    timer.plan(planned(T0 + 3000))
    timer.plan(planned(T0 + 4000))
    await vi.advanceTimersByTimeAsync(4000)
    expect(applied).toEqual([T0 + 4000])
    expect(String(done[0])).toContain('wg failed')
    timer.plan(planned(T0 + 9000))
    timer.plan([])
    await vi.advanceTimersByTimeAsync(10_000)
    expect(applied).toHaveLength(1)
    timer.plan(planned(T0 + 30_000))
    timer.stop()
    timer.plan(planned(T0 + 31_000))
    await vi.advanceTimersByTimeAsync(60_000)
    expect(applied).toHaveLength(1)
  })
})

describe('RouteSwitchTimer with staging (a wg waiting on its stdin)', () => {
  beforeEach(() => { vi.useFakeTimers({ now: T0 }) })
  afterEach(() => { vi.useRealTimers() })
  const planned = (atMs: number): Parameters<RouteSwitchTimer['plan']>[0] => [{ publicKey: B, atMs, change: { publicKey: B, allowedIps: ALLOWED } }]

  function harness (commitFails = false): { timer: RouteSwitchTimer, log: string[] } {
    const log: string[] = []
    const timer = new RouteSwitchTimer({
      apply: async () => { log.push(`apply@${Date.now() - T0}`) },
      stage: () => {
        log.push(`stage@${Date.now() - T0}`)
        return { commit: async () => { log.push(`commit@${Date.now() - T0}`); if (commitFails) throw new WgError('wg died') }, cancel: () => { log.push(`cancel@${Date.now() - T0}`) } }
      },
      done: (err) => { log.push(err === undefined ? 'done' : 'failed') }
    })
    return { timer, log }
  }

  it('stages STAGE_AHEAD_MS before the instant and commits at it; no wg set', async () => {
    const { timer, log } = harness()
    timer.plan(planned(T0 + 3000))
    await vi.advanceTimersByTimeAsync(5000)
    expect(log).toEqual([`stage@${3000 - STAGE_AHEAD_MS}`, 'commit@3000', 'done'])
  })

  it('a new instant drops the staged change; a failed commit falls back to wg set', async () => {
    const { timer, log } = harness(true)
    timer.plan(planned(T0 + 3000))
    await vi.advanceTimersByTimeAsync(2500)
    timer.plan(planned(T0 + 4000))
    await vi.advanceTimersByTimeAsync(5000)
    expect(log).toEqual([`stage@${3000 - STAGE_AHEAD_MS}`, 'cancel@2500', `stage@${4000 - STAGE_AHEAD_MS}`, 'commit@4000', 'apply@4000', 'done'])
  })
})

describe('addconfText', () => {
  it('writes the fields a change sets, as [Peer] sections', () => {
    expect(addconfText([{ publicKey: B, allowedIps: ['100.64.0.3/32', 'fd00::3/128'], persistentKeepalive: 25 }])).toBe(`[Peer]\nPublicKey = ${B}\nAllowedIPs = 100.64.0.3/32, fd00::3/128\nPersistentKeepalive = 25\n`)
    expect(addconfText([{ publicKey: B, endpoint: ep('198.18.12.2:51820'), persistentKeepalive: 0 }])).toBe(`[Peer]\nPublicKey = ${B}\nEndpoint = 198.18.12.2:51820\nPersistentKeepalive = off\n`)
  })

  it.each([
    { name: 'a removal', change: { publicKey: B, remove: true } },
    { name: 'a kick', change: { publicKey: B, persistentKeepalive: 25, kick: true } },
    { name: 'emptied allowed IPs', change: { publicKey: B, allowedIps: [] } },
    { name: 'a line break in a value', change: { publicKey: B, allowedIps: ['100.64.0.3/32\n[Peer]'] } }
  ])('refuses $name with a one-line WgError', ({ change }) => {
    expect(() => addconfText([change])).toThrow(WgError)
  })
})
