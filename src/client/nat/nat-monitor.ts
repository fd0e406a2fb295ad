import { messageOf } from '../../shared/errors.js'
import { formatEndpoint, type Endpoint, type Prefix } from '../../shared/ip.js'
import type { Logger } from '../../shared/log.js'
import { listAddresses, watchAddressChanges } from '../../shared/netlink-addresses.js'
import { PROTOCOL_LIMITS, type Announce } from '../../shared/protocol.js'
import { RawSocketUnavailable, rawSocketProblem, type RawUdpSender } from '../../shared/raw-udp.js'
import { RepeatingTask } from '../../shared/repeating-task.js'
import { sleep } from '../../shared/sleep.js'
import type { MeshObserver } from '../observe/mesh-observer.js'
import { AddressCache } from './address-cache.js'
import { KeptSender } from './kept-sender.js'
import { discover, type Discovery } from './nat-discovery.js'
import { stunProbe, type StunProbeResult } from './stun-probe.js'
import { READY_SHRINK_HOLD_MS, onlyReadyShrank } from './ready-shrink.js'
import { natRecheckMs } from './resting-recheck.js'
import { NO_RAW_PROBLEM } from './nat-start.js'

/**
 * How often the NAT mapping is checked again when nothing else prompts it: a router that reboots or drops its
 * mappings is noticed within this, and the direct paths are back within about this plus a second (the goal is 5 s,
 * whichever side is sending). One STUN exchange each time, with the raw receive socket open for one round trip.
 */
export const NAT_RECHECK_MS = 2_000
/** Longest an announcement of a new mapping waits for the direct peers to be kicked through it. */
export const KICK_BEFORE_ANNOUNCE_MS = 1000
/** Wait after a failed discovery round before the next. */
export const NAT_FAILURE_RETRY_MS = 5_000
/**
 * How long after our mapping moved the hub's view of us may still show the old one without making our NAT hard. The
 * hub's WireGuard learns the new mapping from our next packet to it (the announcement of the move is one, through the
 * tunnel), and the registry tells us within a second or two; a hub still showing the old mapping after this is a real
 * second mapping, so the class is hard.
 */
export const HUB_VIEW_CATCH_UP_MS = 10_000

export interface NatMonitorInit {
  iface: string
  listenPort: number
  meshPrefixes: Prefix[]
  /** STUN servers to ask from the WireGuard port (the hub's own first). */
  stunServers: Endpoint[]
  /** Use raw sockets (STUN from the WireGuard port). @default true */
  raw?: boolean
  recheckMs?: number
  failureRetryMs?: number
  /** Reuse the address list this long while netlink reports no change (0: read it every check). @default ADDRESS_CACHE_MAX_AGE_MS */
  addressMaxAgeMs?: number
  /** Wait between checks while `atRest()` (if longer than recheckMs). @default NAT_RECHECK_AT_REST_MS */
  restingRecheckMs?: number
  /** @default HUB_VIEW_CATCH_UP_MS */
  hubCatchUpMs?: number
}

export interface NatMonitorComponents {
  logger: Logger
  /** How the hub's WireGuard sees us, once the registry told us. */
  hubView: () => { hub: Endpoint, mapped: Endpoint } | null
  /** Send the announcement to the registry; throws when it cannot. */
  announce: (a: Announce, signal: AbortSignal) => Promise<void>
  /**
   * The network changed (addresses, links, routes) or the mapping moved: re-punch at once. May return a promise,
   * settled once our router has been re-opened towards the direct peers: a new mapping is announced only after
   * that (at most {@link KICK_BEFORE_ANNOUNCE_MS} later), so the peers' packets to it find our router open.
   */
  onNetworkChange: () => void | Promise<void>
  probe?: typeof stunProbe
  addresses?: typeof listAddresses
  /** Peers we have punched towards and are about to handshake with (carried in the announcement). */
  ready?: () => string[]
  /** The endpoint our router maps to the WireGuard port (PCP / NAT-PMP / UPnP), carried in the announcement. */
  portMapping?: () => string | null
  /** Told about STUN round trips and NAT changes (metrics). */
  observer?: MeshObserver
  /** Every peer is parked on the hub (resting-recheck.ts): check less often; recheck() when that ends. @default never */
  atRest?: () => boolean
  /** Opens the raw send socket kept between checks (tests). @default openUdpSender */
  openSender?: () => RawUdpSender
  /** Why the raw-socket addon cannot load, or null (tests). @default rawSocketProblem */
  rawCheck?: () => string | null
}

/**
 * Knows this client's NAT class, STUN-mapped endpoint and LAN endpoints, and keeps the registry told: at start,
 * every `recheckMs`, on netlink address/link/route events and on demand. Its loop never throws.
 */
export class NatMonitor {
  private readonly task: RepeatingTask
  private readonly abort = new AbortController()
  private readonly addresses: AddressCache
  private readonly sender: KeptSender
  /** Netlink change notifications are subscribed (they reset the kept sender when routes or addresses change). */
  private changesWatched = false
  private raw: boolean
  private _current: Discovery | null = null
  private announced = ''
  private readonly lastSamples = new Map<string, string>()
  private _rawProblem: string | null = null
  private lastSent: Announce | undefined
  private shrinkTimer: ReturnType<typeof setTimeout> | undefined
  /** The mapping our router dropped, while the hub's view may still show it (see HUB_VIEW_CATCH_UP_MS). */
  private staleHubView: { mapped: string, until: number } | null = null

  constructor (private readonly init: NatMonitorInit, private readonly c: NatMonitorComponents) {
    this.raw = init.raw ?? true
    if (!this.raw) this._rawProblem = NO_RAW_PROBLEM
    this.sender = new KeptSender(c.openSender)
    this.addresses = new AddressCache({ read: async (o) => await (this.c.addresses ?? listAddresses)(o), maxAgeMs: init.addressMaxAgeMs })
    this.task = new RepeatingTask({
      round: async (signal) => {
        await this.once(signal)
        return natRecheckMs(this.init.recheckMs ?? NAT_RECHECK_MS, this.c.atRest?.() === true, this.init.restingRecheckMs)
      },
      onError: (err) => {
        this.c.logger.warn(`NAT discovery failed, will retry: ${messageOf(err)}`)
        this.announced = ''
        return this.init.failureRetryMs ?? NAT_FAILURE_RETRY_MS
      }
    })
  }

  get current (): Discovery | null { return this._current }

  /** Why raw-socket features (STUN from the WireGuard port, punching) are off, with the fix; null while they work. */
  get rawProblem (): string | null { return this._rawProblem }

  /**
   * Check at start that the raw-socket addon loads; if not, say so in one line (with the command that fixes it) and
   * carry on without raw features, rather than failing later in the first STUN exchange.
   */
  preflight (): void {
    if (!this.raw) return
    const problem = (this.c.rawCheck ?? rawSocketProblem)()
    if (problem === null) return
    this.disableRaw(problem)
  }

  private disableRaw (why: string): void {
    this.raw = false
    this._rawProblem = why
    this.c.logger.warn(`${why}; carrying on without STUN and punching (the mesh still forms through WireGuard's own handshakes)`)
  }

  /**
   * Check the raw-socket addon (preflight), watch for network changes, then start checking (the first check trusts
   * the watch from its start).
   */
  start (): void {
    this.preflight()
    void this.watchChanges().then(() => { if (!this.abort.signal.aborted) this.task.start() })
  }

  private async watchChanges (): Promise<void> {
    try {
      await watchAddressChanges(() => {
        this.c.logger.info('network change: checking the NAT mapping again')
        this.addresses.invalidate()
        this.sender.reset()
        this.c.onNetworkChange()
        this.task.wake()
      }, this.abort.signal, { routes: true })
      this.addresses.trustChanges()
      this.changesWatched = true
    } catch (err) {
      this.c.logger.warn(`not watching for network changes: ${messageOf(err)}`)
    }
  }

  /** Check again now (the registry's view of us changed, say). */
  recheck (): void { this.task.wake() }

  /** Send the current findings again if what we would announce changed (the ready list, say); no new probe. */
  async announceNow (): Promise<void> {
    if (this._current === null || this.c.hubView() === null) return
    await this.send(this._current.announce, this.task.signal, true)
  }

  private async send (found: Announce, signal: AbortSignal, onDemand = false): Promise<void> {
    const announce = { ...found, ready: (this.c.ready?.() ?? []).slice(0, PROTOCOL_LIMITS.maxReady), ...(this.c.portMapping === undefined ? {} : { portMapping: this.c.portMapping() }) }
    const text = JSON.stringify(announce)
    if (text === this.announced) return
    if (onDemand && onlyReadyShrank(this.lastSent, announce)) {
      // Held (see READY_SHRINK_HOLD_MS); the next check or any other change sends it sooner.
      this.shrinkTimer ??= setTimeout(() => {
        this.shrinkTimer = undefined
        if (signal.aborted || this._current === null || this.c.hubView() === null) return
        this.send(this._current.announce, signal).catch((err: unknown) => this.c.logger.warn(`announcing to the registry failed: ${messageOf(err)}`))
      }, READY_SHRINK_HOLD_MS)
      return
    }
    clearTimeout(this.shrinkTimer)
    this.shrinkTimer = undefined
    this.announced = text
    try {
      await this.c.announce(announce, signal)
      this.lastSent = announce
    } catch (err) {
      this.announced = ''
      throw err
    }
  }

  async stop (): Promise<void> {
    clearTimeout(this.shrinkTimer)
    this.shrinkTimer = undefined
    this.abort.abort()
    await this.task.stop()
    this.sender.reset()
  }

  private async once (signal: AbortSignal): Promise<void> {
    const addresses = await this.addresses.get(signal)
    let stun: StunProbeResult | null = null
    if (this.raw && this.init.stunServers.length > 0) {
      try {
        stun = await (this.c.probe ?? stunProbe)({ localPort: this.init.listenPort, servers: this.init.stunServers, signal }, { openSender: this.sender.lend })
        // Not one answer (a stale source address, say), or no notifications to tell us of a change: a fresh socket next time.
        if (stun.samples.length === 0 || !this.changesWatched) this.sender.reset()
        for (const f of stun.failures) this.c.logger.debug(`STUN ${f.server}: ${f.reason}`)
        for (const ms of stun.roundTripsMs ?? []) this.c.observer?.stunRoundTrip?.(ms)
      } catch (err) {
        if (!(err instanceof RawSocketUnavailable)) throw err
        this.disableRaw(err.message)
      }
    }
    const before = this._current
    // Our endpoint-independent mapping moved (a symmetric NAT's fresh ports are no move; see mappingMoved).
    const moved = before !== null && before.announce.natClass !== 'hard' && this.mappingMoved(stun)
    const hubView = this.currentHubView(moved)
    const found = discover({ listenPort: this.init.listenPort, addresses, iface: this.init.iface, meshPrefixes: this.init.meshPrefixes, hubView, stun })
    // A lost reply is no change: keep what we knew rather than flap between servers' answers.
    if (found.announce.mappedEndpoint === null && before !== null && stun !== null) found.announce.mappedEndpoint = before.announce.mappedEndpoint
    this._current = found
    if (before?.announce.natClass !== found.announce.natClass || before?.announce.mappedEndpoint !== found.announce.mappedEndpoint) {
      this.c.logger.info({ natClass: found.announce.natClass, mapped: found.announce.mappedEndpoint }, `NAT ${found.announce.natClass}: ${found.reason}`)
      if (before !== null) this.c.observer?.natChanged?.()
    }
    if (moved) {
      const kicked = this.c.onNetworkChange()
      if (kicked !== undefined) await Promise.race([kicked.catch(() => {}), sleep(KICK_BEFORE_ANNOUNCE_MS, signal)])
    }
    // Each server's last answer is kept through rounds it did not answer: a router that reboots is offline for a
    // round or more, and its new mapping must still be told from the old one when it is back.
    if (stun !== null) for (const s of stun.samples) this.lastSamples.set(s.server, formatEndpoint(s.mapped))
    if (this.c.hubView() !== null) await this.send(found.announce, signal)
  }

  /**
   * The hub's view of our mapping, left out while it is the mapping STUN saw before our mapping moved (a router
   * reboot, say): the hub's WireGuard keeps our old endpoint until our next packet reaches it, and comparing that with
   * the new mapping would call the NAT hard for the second or two it takes, while the peers probe our new endpoint.
   */
  private currentHubView (moved: boolean): ReturnType<NatMonitorComponents['hubView']> {
    const view = this.c.hubView()
    if (view === null) return null
    const seen = formatEndpoint(view.mapped)
    if (moved && [...this.lastSamples.values()].includes(seen)) {
      this.staleHubView = { mapped: seen, until: Date.now() + (this.init.hubCatchUpMs ?? HUB_VIEW_CATCH_UP_MS) }
    }
    if (this.staleHubView === null) return view
    if (seen === this.staleHubView.mapped && Date.now() < this.staleHubView.until) return null
    this.staleHubView = null
    return view
  }

  /**
   * Did a server that answered last time see a different mapping now? Callers ask only when the mapping was
   * endpoint-independent: behind a symmetric NAT every probe may get a fresh port, and that is no network change.
   */
  private mappingMoved (stun: StunProbeResult | null): boolean {
    if (stun === null) return false
    return stun.samples.some((s) => {
      const last = this.lastSamples.get(s.server)
      return last !== undefined && last !== formatEndpoint(s.mapped)
    })
  }

  /** Raw sockets work (for punching). */
  get rawAvailable (): boolean { return this.raw }
}
