import { networkInterfaces } from 'node:os'
import { WgnatError, messageOf, quote } from '../shared/errors.js'
import { firstHost, formatEndpoint, parseEndpoint, parseIp, parsePrefix, prefixHas, type Endpoint, type Prefix } from '../shared/ip.js'
import { interfaceAddresses } from '../shared/interface-addresses.js'
import type { Logger } from '../shared/log.js'
import type { TablePeer, TableResponse } from '../shared/protocol.js'
import { sleep, Wakeup } from '../shared/sleep.js'
import { formatDuration } from '../shared/duration.js'
import { WgSetError, type WgControl } from '../shared/wg.js'
import { shortKey, type WgDevice } from '../shared/wg-dump.js'
import { adoptTracks, defaultTiming, directPending, reconcile, type PathTiming, type PeerTrack, type ReconcileOutput } from './paths/reconcile.js'
import { QuietReads } from './paths/quiet-reads.js'
import { MAX_REINITIATIONS } from './paths/crossed-handshakes.js'
import type { MeshObserver } from './observe/mesh-observer.js'
import type { NatMonitor } from './nat/nat-monitor.js'
import { NAT_START_DEFER_MS, NO_RAW_PROBLEM, firstAttemptsPending, hasGlobalIpv6, needsNatNow } from './nat/nat-start.js'
import { PathLog } from './paths/path-log.js'
import { meanCycleCpuMs, retryReadMs } from './paths/read-budget.js'
import type { PortMapper } from './portmap/port-mapper.js'
import { RegistryClient } from './registry-client.js'
import { longPollWaitS } from './long-poll-wait.js'
import { StateStore } from './state-store.js'
import { peerStatus, type ClientStatus } from './observe/status.js'
import { serveStatus } from './observe/status-socket.js'
import { vetTable, type DesiredPeer } from './paths/vet-table.js'
import { PolicyFilter } from './policy/policy-filter.js'
import { START_DEVICE_MAX_AGE_MS, TABLE_TICK_GAP_MS, nextTickDueMs, reusableRead, tickHoldMs, type InterfaceRead } from './paths/tick-pacing.js'
import { nftCli, type NftControl } from '../shared/nft.js'
import { HEALING_TICK_MS, healingTickMs, plannedSwitches, RouteSwitchTimer, SWITCH_SETTLE_MS } from './paths/route-switch.js'
import { allParked, restingTickMs } from './paths/parked-tick.js'

export interface MeshClientInit {
  iface: string
  registryKey: string
  /** Upper bound between full table fetches (wg-nat's -t). */
  intervalMs: number
  /** Persistent keepalive set on mesh peers, seconds. @default 25 */
  keepaliveS?: number
  /** Where the registry listens; default: first host of the registry peer's allowed IPs. */
  registryAddress?: string
  /** Default: the port of the registry peer's endpoint (the hub's WireGuard listen port). */
  registryPort?: number
  stateDir: string
  /** Override path timings (tests). */
  timing?: Partial<PathTiming>
  /** Long-poll the registry for changes (push). Off: poll once per interval, like wg-nat. @default true */
  push?: boolean
  /** Unix socket for `wgnat-client status`; none when undefined. */
  statusSocket?: string
  /** UDP port of the hub's STUN server (wgnat-server --stun-port); 0: do not ask the hub. @default 3478 */
  hubStunPort?: number
  /** More STUN servers to ask (`--stun`). */
  stunServers?: Endpoint[]
  /** Raw-socket features (STUN from the WireGuard port, punching). @default true */
  raw?: boolean
  /** TTL of punch datagrams: low enough to open our own NAT but expire before the far one. Undefined: no punching. */
  punchTtl?: number
  /** How often the NAT mapping is checked (STUN). @default NAT_RECHECK_MS */
  natCheckMs?: number
  /** Ask the router for a mapping of the WireGuard port (PCP, NAT-PMP, UPnP IGD) and announce it. @default true */
  portMapping?: boolean
}

export interface MeshClientComponents {
  wg: WgControl
  logger: Logger
  nowMs?: () => number
  /** @default nftCli() */
  nft?: NftControl
  /** Told about path changes, registry errors, STUN and NAT changes (metrics). */
  observer?: MeshObserver
}

/**
 * The addresses mesh peers may be given: the registry peer's allowed IPs (a hub configured with the whole subnet),
 * and the subnets of this interface's own addresses (a hub configured as a /32: `Address = 100.64.0.2/24` already
 * routes the /24 into the tunnel). Nothing outside these is ever routed to a peer the registry names.
 */
export function meshPrefixes (hubPrefixes: Prefix[], own: Array<{ address: string, bits: number }>): Prefix[] {
  const out = [...hubPrefixes]
  for (const a of own) {
    const p = parsePrefix(`${a.address}/${a.bits}`)
    const max = p.address.kind() === 'ipv4' ? 32 : 128
    if (p.bits < max && !out.some((q) => q.text === p.text)) out.push(p)
  }
  return out
}

/** Punch rounds per attempt (the first is awaited before telling the peer we are ready). */
export const PUNCH_ROUNDS = 3

/** Device read interval while an attempt is pending: both sides see the handshake within one round trip. */
export const PENDING_TICK_MS = 150
/**
 * The same for a first attempt when the hub does not relay (routes go on with the attempt): only status and retries
 * wait on it, and a `wg show` every 150 ms per client is CPU that many clients starting at once need elsewhere.
 */
export const PENDING_TICK_NO_RELAY_MS = 1000
/** Device read interval while data flows to a direct peer: a dead path is seen within one or two of these. */
export const BUSY_TICK_MS = 1000
/** Device read interval while a retry (an attempt after a failure) is pending; longer with many peers (read-budget.ts). */
export const RETRY_TICK_MS = 1000
/** Device read interval with direct peers: catches dead direct paths (and data starting to flow to them). */
export const IDLE_TICK_MS = 2000
/** New problems with a registry table logged one by one at warn; more are summed up in one line. */
export const MAX_TABLE_WARNINGS = 5
/** Device read interval with no direct peer and nothing pending (or due sooner): catches peers changed behind our back. */
export const QUIET_TICK_MS = 10_000
/** First wait after a failed registry call (the registry may still be starting); doubles up to 30 s or the interval. */
export const RETRY_BASE_MS = 250

/**
 * The client daemon: keeps the registry's table (full at start, then changes pushed by long-poll) and drives the
 * interface towards it through `reconcile()`, one `wg set` per change set; a NatMonitor keeps the registry told
 * about our NAT; a status socket answers `wgnat-client status`.
 */
export class MeshClient {
  private readonly log: Logger
  private readonly wg: WgControl
  private readonly nowMs: () => number
  private readonly timing: PathTiming
  private readonly abort = new AbortController()
  private readonly wakeup = new Wakeup()
  private readonly store: StateStore
  private registry!: RegistryClient
  private meshPrefixes: Prefix[] = []
  private hubPrefixes: Prefix[] = []
  /** Keys and allowed IPs of the peers we do not manage, as last vetted against. */
  private foreignSignature = ''
  private registryAddress = ''
  private selfKey = ''
  private tracks = new Map<string, PeerTrack>()
  /** A read that changes nothing for peers parked on the hub skips the reconcile (quiet-reads.ts). */
  private readonly quietReads = new QuietReads()
  private table: Map<string, TablePeer> | null = null
  private tableChanged = false
  private desired: Map<string, DesiredPeer> | null = null
  private lastWarnings = new Set<string>()
  private loops: Array<Promise<void>> = []
  private lastDevice: WgDevice | undefined
  private registryState = { reachable: false, version: 0, relay: false, lastSyncS: 0 }
  private selfEntry: TablePeer | undefined
  private statusServer: Promise<{ close: () => Promise<void> } | undefined> | undefined
  private nat: NatMonitor | undefined
  /** Every peer parked on the hub at the last tick (parked-tick.ts): the NAT check runs less often. */
  private atRest = false
  private hubEndpoint: Endpoint | null = null
  private listenPort = 0
  private retryNow = false
  /** Resolved once a tick has applied the kicks of a network change. */
  private kickWaiters: Array<() => void> = []
  private pathLog: PathLog
  private readonly warnedUnreachable = new Set<string>()
  private natStarted = false
  /** NAT discovery's modules loading and its start (startNat), once natStarted. */
  private natLoad: Promise<void> | undefined
  /** Starts NAT discovery if the first attempts are still unanswered NAT_START_DEFER_MS after they went out. */
  private natTimer: ReturnType<typeof setTimeout> | undefined
  private settle: () => void = () => {}
  /** This host had a global IPv6 address at start (nat-start.ts): NAT discovery is not put off. */
  private ipv6Here = false
  /**
   * Resolves once the first table's attempts are answered, or NAT_START_DEFER_MS after they went out (nat-start.ts):
   * when the work that can wait for the first attempts begins (NAT discovery, port mapping, the first path report).
   */
  readonly settled = new Promise<void>((resolve) => { this.settle = resolve })
  private readonly policyFilter: PolicyFilter
  private portMapper: PortMapper | undefined
  private readonly observer: MeshObserver | undefined
  /** The interface as read by start(), for the first tick (see START_DEVICE_MAX_AGE_MS). */
  private startDevice: { device: WgDevice, atMs: number } | undefined
  /** When the last tick started (for tick pacing). */
  private lastTickMs = 0
  /** Writes to the interface so far (ticks, timed switches): a read older than the last write is not reused. */
  private wgWrites = 0
  /** The last tick's read of the interface, for a table-only tick (see TABLE_TICK_READ_MAX_AGE_MS). */
  private lastRead: InterfaceRead<WgDevice> | undefined
  /** Woken when a tick has vetted the latest table: the next long-poll waits for it. */
  private readonly tableTaken = new Wakeup()
  /** A healed pair's route switch, at the instant both sides compute (see route-switch.ts). */
  private readonly switches = new RouteSwitchTimer({
    apply: async (changes) => { this.wgWrites++; await this.wg.set(this.init.iface, changes) },
    stage: (changes) => {
      const staged = this.wg.stage?.(this.init.iface, changes)
      return staged === undefined ? undefined : { commit: async () => { this.wgWrites++; await staged.commit() }, cancel: () => { staged.cancel() } }
    },
    done: (err) => {
      if (err !== undefined) this.log.debug(`timed route switch failed, the next sync retries it: ${messageOf(err)}`)
      else this.log.debug('timed route switch applied')
      this.wakeup.wake()
    }
  })
  /** Bumped when a peer's path or endpoint may have changed (see PathReporter's `version`). */
  pathsVersion = 0
  /** Called whenever pathsVersion is bumped (the path reporter sleeps until then instead of polling it). */
  onPathsChanged: (() => void) | undefined
  /** Running mean of a sync cycle's CPU (ms): reads for retries are spaced to stay within a budget (read-budget.ts). */
  private cycleCpuMs: number | undefined

  constructor (private readonly init: MeshClientInit, components: MeshClientComponents) {
    this.log = components.logger
    this.wg = components.wg
    this.nowMs = components.nowMs ?? Date.now
    this.observer = components.observer
    this.timing = { ...defaultTiming(init.keepaliveS ?? 25), ...init.timing }
    this.store = new StateStore(init.stateDir, init.iface)
    this.policyFilter = new PolicyFilter({ iface: init.iface }, { nft: components.nft ?? nftCli(), logger: this.log })
    this.pathLog = new PathLog(this.nowMs())
  }

  /**
   * Check the interface and the registry peer (errors here are fatal), then sync at once and keep syncing.
   * `firstRead`: a read of the interface already under way (started while the daemon's code loaded), else one is made.
   */
  async start (firstRead?: Promise<WgDevice>): Promise<void> {
    const { iface, registryKey } = this.init
    const device = await (firstRead ?? this.wg.show(iface))
    if (device.publicKey === null) throw new WgnatError(`interface ${quote(iface)} has no private key`, 69)
    this.selfKey = device.publicKey
    const registryPeer = device.peers.find((p) => p.publicKey === registryKey)
    if (registryPeer === undefined) throw new WgnatError(`registry peer ${quote(registryKey)} is not a peer of ${quote(iface)}`, 64)
    const hubPrefixes = registryPeer.allowedIps.map(parsePrefix)
    if (hubPrefixes.length === 0) throw new WgnatError(`registry peer ${shortKey(registryKey)} has no allowed IPs on ${quote(iface)}`, 64)
    this.hubPrefixes = hubPrefixes
    // A hub peer that routes everything (0.0.0.0/0, an exit through the hub) does not make the internet the mesh.
    const hubPrefix = hubPrefixes.find((p) => p.bits > 0)
    this.meshPrefixes = meshPrefixes(hubPrefixes.filter((p) => p.bits > 0), interfaceAddresses(iface))
    this.ipv6Here = hasGlobalIpv6(networkInterfaces(), iface, this.meshPrefixes)
    if (this.init.registryAddress === undefined && hubPrefix === undefined) {
      throw new WgnatError(`registry peer ${shortKey(registryKey)} routes everything (${hubPrefixes.map((p) => p.text).join(', ')}): pass --registry-address`, 64)
    }
    this.registryAddress = this.init.registryAddress ?? firstHost(hubPrefix as Prefix)
    // The registry speaks only inside the tunnel: an address the hub peer does not route would go out some other way.
    const registryIp = parseIp(this.registryAddress)
    if (!hubPrefixes.some((p) => prefixHas(p, registryIp))) {
      throw new WgnatError(`--registry-address ${quote(this.registryAddress)} is outside registry peer ${shortKey(registryKey)}'s allowed IPs (${hubPrefixes.map((p) => p.text).join(', ')}): the registry is reached only through the tunnel`, 64)
    }
    const port = this.init.registryPort ?? registryPeer.endpoint?.port
    if (port === undefined) throw new WgnatError(`registry peer ${shortKey(registryKey)} has no endpoint to take the port from: pass --registry-port`, 64)
    this.registry = new RegistryClient({ address: this.registryAddress, port })
    this.hubEndpoint = registryPeer.endpoint
    this.listenPort = device.listenPort
    this.store.prepare()
    const managed = await this.store.load()
    // Never ours to manage, whatever an old state file says.
    managed.delete(registryKey)
    managed.delete(this.selfKey)
    this.tracks = adoptTracks(device, managed, this.nowMs(), this.timing)
    this.log.info({ registry: this.registry.url, mesh: this.meshPrefixes.map((p) => p.text), adopted: this.tracks.size }, `syncing ${iface} with the registry at ${this.registry.url}`)
    this.lastDevice = device
    this.startDevice = { device, atMs: this.nowMs() }
    // NAT discovery and port mapping start once the first table's attempts are answered (see startNatWhenDue).
    this.loops = [this.syncLoop(), this.tickLoop()]
    // The status socket comes up beside the first sync, not before it (its files and socket are no part of it).
    if (this.init.statusSocket !== undefined) this.statusServer = this.serveStatusSocket(this.init.statusSocket)
  }

  private async serveStatusSocket (path: string): Promise<{ close: () => Promise<void> } | undefined> {
    try {
      return await serveStatus(path, () => this.status())
    } catch (err) {
      this.log.warn(`no status socket at ${quote(path)}: ${messageOf(err)}`)
      return undefined
    }
  }

  /**
   * NAT discovery and port mapping, loaded only now: their modules (with `zlib` and netlink's rtnetlink code) are
   * nothing the first attempts need, and every millisecond of a client's start counts while many start at once
   * (issue 16). The bundle keeps them (scripts/bundle.mjs): loading them is running their module code.
   */
  private async startNat (): Promise<void> {
    const [{ NatMonitor }, { PortMapper }] = await Promise.all([import('./nat/nat-monitor.js'), import('./portmap/port-mapper.js')])
    if (this.abort.signal.aborted) return
    this.nat = this.natMonitor(NatMonitor)
    if (this.init.portMapping !== false) {
      // The mapping reaches the registry with the next announcement.
      this.portMapper = new PortMapper({ internalPort: this.listenPort }, {
        logger: this.log,
        onChange: () => { this.nat?.announceNow().catch((err: unknown) => this.log.warn(`announcing to the registry failed: ${messageOf(err)}`)) }
      })
    }
    this.nat.start()
    this.portMapper?.start()
  }

  private natMonitor (Monitor: typeof NatMonitor): NatMonitor {
    const hubStunPort = this.init.hubStunPort ?? 3478
    const stunServers = [...(this.hubEndpoint !== null && hubStunPort > 0 ? [{ address: this.hubEndpoint.address, port: hubStunPort }] : []), ...(this.init.stunServers ?? [])]
    return new Monitor({ iface: this.init.iface, listenPort: this.listenPort, meshPrefixes: this.meshPrefixes, stunServers, raw: this.init.raw, recheckMs: this.init.natCheckMs }, {
      logger: this.log,
      hubView: () => {
        const mapped = this.selfEntry?.endpoint
        return this.hubEndpoint === null || mapped == null ? null : { hub: this.hubEndpoint, mapped: parseEndpoint(mapped) }
      },
      announce: async (a, signal) => {
        try { await this.registry.announce(a, signal) } catch (err) { if (!signal.aborted) this.observer?.registryError?.('announce'); throw err }
      },
      observer: this.observer,
      atRest: () => this.atRest,
      onNetworkChange: async () => {
        this.retryNow = true
        this.portMapper?.recheck()
        const applied = new Promise<void>((resolve) => { this.kickWaiters.push(resolve) })
        this.wakeup.wake()
        await applied
      },
      portMapping: () => { const m = this.portMapper?.current; return m == null ? null : formatEndpoint(m.external) },
      ready: () => [...this.tracks].filter(([, t]) => t.phase === 'arming' || t.phase === 'trying').map(([key]) => key).sort()
    })
  }

  async stop (): Promise<void> {
    this.abort.abort()
    clearTimeout(this.natTimer)
    this.switches.stop()
    this.wakeup.wake()
    // The port mapping is deleted on the router here (at most a second).
    const natStopped = (async () => { await this.natLoad; await Promise.all([this.nat?.stop(), this.portMapper?.stop()]) })()
    await Promise.all([...this.loops, natStopped])
    this.registry?.close()
    await (await this.statusServer)?.close()
    await this.policyFilter.stop()
  }

  /** The registry this client talks to (after start). */
  get registryClient (): RegistryClient { return this.registry }

  /** Everything `wgnat-client status` shows. */
  status (): ClientStatus {
    const handshakes = new Map((this.lastDevice?.peers ?? []).map((p) => [p.publicKey, p.latestHandshake]))
    const keys = new Set([...this.tracks.keys(), ...(this.desired?.keys() ?? [])])
    return {
      interface: this.init.iface,
      publicKey: this.selfKey,
      registry: { url: this.registry.url, ...this.registryState },
      self: {
        endpoint: this.selfEntry?.endpoint ?? null,
        natClass: this.nat?.current?.announce.natClass ?? 'unknown',
        mappedEndpoint: this.nat?.current?.announce.mappedEndpoint ?? null,
        portMapping: this.portMapper?.status() ?? null,
        natReason: this.nat?.current?.reason ?? (this.natStarted ? 'checking' : 'not checked yet (it starts once the first table\'s attempts are answered, at most 2 s after them)'),
        rawProblem: this.nat?.rawProblem ?? (this.init.raw === false ? NO_RAW_PROBLEM : null)
      },
      peers: [...keys].sort().map((key) => peerStatus(key, this.tracks.get(key), this.desired?.get(key), handshakes.get(key) ?? 0, this.registryState.relay, this.nat?.current?.announce.natClass))
    }
  }

  /**
   * Fetch the table: the full table at start and after any failure, then changes only, each request held open by
   * the registry until something changes (push) but never longer than the interval, so a sync happens at least
   * every `-t`. At 10,000 peers a full table is 1.8 MB: fetching it every interval from every client would cost the
   * hub far more than the deltas, which are a few hundred bytes. Never throws.
   */
  private async syncLoop (): Promise<void> {
    const signal = this.abort.signal
    const push = this.init.push ?? true
    let version = 0
    let needFull = true
    let epoch = ''
    let failures = 0
    while (!signal.aborted) {
      const full = needFull || version === 0
      const waitS = full || !push ? 0 : longPollWaitS(this.init.intervalMs)
      try {
        const res = await this.registry.table(full ? 0 : version, waitS, signal)
        if (!res.full && res.epoch !== epoch) {
          // The registry restarted: our version means nothing to it. Start over with the full table.
          needFull = true
          continue
        }
        epoch = res.epoch
        needFull = false
        if (res.version !== version || res.full) this.takeTable(res)
        version = res.version
        if (res.relay !== this.registryState.relay) this.pathsChanged()
        this.registryState = { reachable: true, version, relay: res.relay, lastSyncS: Math.floor(this.nowMs() / 1000) }
        const selfMoved = res.self.endpoint !== this.selfEntry?.endpoint
        this.selfEntry = res.self
        if (this.natStarted && selfMoved) this.nat?.recheck()
        if (failures > 0) this.log.info('registry reachable again')
        failures = 0
        // Last: the tick that takes this table sees its relay and our own entry (set just above, before it runs).
        await this.waitTableTaken(signal)
      } catch (err) {
        if (signal.aborted) break
        this.observer?.registryError?.('table')
        failures++
        needFull = true
        this.registryState.reachable = false
        const waitMs = Math.min(this.init.intervalMs, 30_000, RETRY_BASE_MS * 2 ** (failures - 1))
        if (failures === 1 || failures % 10 === 0) this.log.warn(`${messageOf(err)}; keeping the last good state, retrying in ${formatDuration(waitMs)}`)
        await sleep(waitMs, signal)
        continue
      }
      // Without push, poll once per interval as wg-nat does; with push the next call is a long-poll (or, with an
      // interval under a second, too short for one, a plain poll after the interval).
      if (!push || (waitS === 0 && !full)) await sleep(this.init.intervalMs, signal)
    }
  }

  private takeTable (res: TableResponse): void {
    if (res.full || this.table === null) {
      this.table = new Map(res.peers.map((p) => [p.publicKey, p]))
    } else {
      for (const p of res.peers) this.table.set(p.publicKey, p)
      for (const key of res.removed) this.table.delete(key)
    }
    this.log.debug({ version: res.version, full: res.full, peers: this.table.size }, 'table received')
    this.tableChanged = true
    this.wakeup.wake()
  }

  /** A peer's path or endpoint may have changed: a new paths version, and the path reporter told. */
  private pathsChanged (): void {
    this.pathsVersion++
    this.onPathsChanged?.()
  }

  /**
   * A table arrived: the next long-poll waits until a tick has vetted and applied it (at most two tick gaps), so
   * changes that come while the tick is held (tick pacing) arrive together in one response instead of one response
   * each, and the first table's attempts go out before the next request (issue 16: on a busy CPU, each step waits for
   * it).
   */
  private async waitTableTaken (signal: AbortSignal): Promise<void> {
    const until = this.nowMs() + 2 * TABLE_TICK_GAP_MS
    while (this.tableChanged && !signal.aborted && this.nowMs() < until) await this.tableTaken.wait(until - this.nowMs(), signal)
  }

  /** Read the interface, reconcile, apply. Never throws: one failure is logged and retried on the next tick. */
  private async tickLoop (): Promise<void> {
    const signal = this.abort.signal
    let failing = false
    // Nothing to attempt before the first table: wait for it (or for the timer, which adopted peers may need).
    if (this.table === null) await this.wakeup.wait(this.nextTickMs(), signal)
    // Started by a table change alone (not its timer, not a network change): may reuse the last read (tick-pacing.ts).
    let tableOnly = false
    while (!signal.aborted) {
      this.lastTickMs = this.nowMs()
      let decidedAtMs: number | undefined
      try {
        const cpu0 = process.cpuUsage(); const wall0 = performance.now()
        try {
          decidedAtMs = await this.tick(tableOnly)
        } finally {
          // Vetted and applied (or failed): the sync loop's next long-poll may go (waitTableTaken).
          this.tableTaken.wake()
        }
        const cpu = process.cpuUsage(cpu0)
        this.cycleCpuMs = meanCycleCpuMs(this.cycleCpuMs, (cpu.user + cpu.system) / 1000)
        this.observer?.syncCycle?.((cpu.user + cpu.system) / 1000, performance.now() - wall0)
        if (failing) this.log.info(`controlling ${this.init.iface} works again`)
        failing = false
      } catch (err) {
        if (!failing) this.log.warn(`sync of ${this.init.iface} failed, will retry: ${messageOf(err)}`)
        failing = true
      }
      // Counted from the read the tick decided on: a tick that reused an older read does not put off the next fresh one.
      const dueMs = nextTickDueMs({ nowMs: this.nowMs(), decidedAtMs, waitMs: this.nextTickMs() })
      await this.wakeup.wait(dueMs - this.nowMs(), signal)
      // A table change that comes soon after a tick waits for the gap; more changes meanwhile join that tick.
      for (;;) {
        const hold = tickHoldMs({ nowMs: this.nowMs(), lastTickMs: this.lastTickMs, tableChanged: this.tableChanged, firstTable: this.desired === null, networkChanged: this.retryNow, dueMs })
        if (hold <= 0 || signal.aborted) break
        await this.wakeup.wait(hold, signal)
      }
      tableOnly = this.tableChanged && !this.retryNow && this.nowMs() < dueMs
    }
  }

  /** Fresh initiations decided this tick (paths/crossed-handshakes.ts), at debug: they change no path. */
  private logReinitiations (previous: Map<string, PeerTrack>): void {
    this.tracks.forEach((t, key) => {
      if ((t.reinitiations ?? 0) <= (previous.get(key)?.reinitiations ?? 0)) return
      const peer = this.desired?.get(key)?.name ?? shortKey(key)
      this.log.debug({ peer, endpoint: t.endpoint ?? undefined }, `peer ${peer}: its handshake initiation crossed ours; sent a fresh one`)
    })
  }

  /**
   * How long until the next read of the interface: often while an attempt or a probe waits for its answer, every
   * second while data flows to a direct peer (a path that dies is then seen within a second or two), else rarely.
   */
  private nextTickMs (): number {
    const now = this.nowMs()
    // Every peer parked on the hub: the NAT check is rarer too, and runs at once when that ends (resting-recheck.ts).
    const atRest = allParked(this.tracks, now)
    if (this.atRest && !atRest && this.natStarted) this.nat?.recheck()
    this.atRest = atRest
    // Every peer parked on the hub: rarer still (parked-tick.ts).
    let wait = restingTickMs(this.tracks, now, QUIET_TICK_MS)
    this.tracks.forEach((t) => {
      // A healed pair moves its routes at an agreed instant: be there on time.
      // (The switch itself is on its own timer; the tick after it records it. Meanwhile read every HEALING_TICK_MS:
      // a newer handshake, say from the other side's slot retry, moves the instant on both sides.)
      if ((t.promoteAtMs ?? 0) > 0) wait = Math.min(wait, Math.max(0, (t.promoteAtMs ?? 0) - now) + SWITCH_SETTLE_MS, HEALING_TICK_MS)
      else if (t.phase === 'arming' || directPending(t, now, this.timing)) wait = Math.min(wait, PENDING_TICK_MS)
      // Heard from a peer being tried, no handshake yet: its initiation may have crossed ours (crossed-handshakes.ts).
      else if (t.phase === 'trying' && t.heardAtMs !== undefined && (t.reinitiations ?? 0) < MAX_REINITIATIONS) wait = Math.min(wait, PENDING_TICK_MS)
      else if (t.phase === 'trying' && t.failures === 0) wait = Math.min(wait, this.registryState.relay ? PENDING_TICK_MS : PENDING_TICK_NO_RELAY_MS)
      // A retry (it failed before): a handshake seen within a second is soon enough, and with many peers that never
      // answer some retry is nearly always under way: reading the interface every 150 ms for it would cost a core.
      else if (t.phase === 'trying') wait = Math.min(wait, retryReadMs(RETRY_TICK_MS, this.cycleCpuMs ?? 0))
      else if (t.busy === true) wait = Math.min(wait, BUSY_TICK_MS)
      else if (t.phase === 'direct') wait = Math.min(wait, IDLE_TICK_MS)
      else if (healingTickMs(t, now) !== undefined) wait = Math.min(wait, healingTickMs(t, now) as number, Math.max(0, t.retryAtMs - now))
      else if (t.phase === 'hub' && Number.isFinite(t.retryAtMs)) wait = Math.min(wait, Math.max(0, t.retryAtMs - now))
    })
    return wait
  }

  /** One tick; resolves to the time it decided as of (its read's time when it reused one). */
  private async tick (tableOnly = false): Promise<number> {
    // The first tick reuses start()'s read of the interface if it is fresh: one `wg show` less before the first attempts.
    const start = this.startDevice
    this.startDevice = undefined
    // A tick for a table change alone reuses the last read if fresh and unwritten since, and decides as of its time.
    const reused = reusableRead(this.lastRead, { nowMs: this.nowMs(), tableOnly, writes: this.wgWrites })
    let read = reused
    if (read === undefined) {
      const writes = this.wgWrites
      read = start !== undefined && this.nowMs() - start.atMs <= START_DEVICE_MAX_AGE_MS
        ? { device: start.device, atMs: start.atMs, writes }
        : { device: await this.wg.show(this.init.iface), atMs: this.nowMs(), writes }
      this.lastRead = read
    }
    const { device } = read
    const nowMs = reused === undefined ? this.nowMs() : reused.atMs
    this.lastDevice = device
    const foreign = this.foreignPeersSignature(device)
    const vetted = this.table !== null && (this.tableChanged || foreign !== this.foreignSignature)
    if (vetted) {
      // Vet again when the table changed, and when someone changed peers we do not manage: a prefix that was free
      // may have been given to one of theirs.
      this.tableChanged = false
      this.foreignSignature = foreign
      this.desired = this.vet(device)
      // One-way policy rules: drop new connections from managed peers that may not open them (none: no table).
      this.policyFilter.update(this.desired.values())
    }
    // The network changed: kick every direct peer and retry every waiting one (once a table says who they are).
    const networkChanged = this.retryNow && this.desired !== null
    if (networkChanged) this.retryNow = false
    const waiters = networkChanged || this.desired === null ? this.kickWaiters.splice(0) : []
    const self = { natClass: this.nat?.current?.announce.natClass ?? 'unknown', publicAddress: this.selfPublicAddress(), portMapped: this.portMapper?.current != null, ipv6: (this.nat?.current?.announce.ipv6Endpoints?.length ?? 0) > 0 }
    // Before NAT discovery has started (and checked the raw-socket addon), raw sockets count as on unless --no-raw.
    const punching = this.init.punchTtl !== undefined && (this.nat?.rawAvailable ?? this.init.raw !== false)
    // Where the hub does not relay, a peer's routes go on with the attempt (nothing to protect on the hub path).
    const input = { nowMs, selfKey: this.selfKey, device, desired: this.desired, tracks: this.tracks, timing: this.timing, self, punching, networkChanged, hubRelays: this.registryState.relay }
    const out = this.quietReads.reuse(input) ?? this.quietReads.record(input, reconcile(input))
    // Defence in depth: the hub peer and our own key are never changed, whatever the machine above decided.
    const refused = out.changes.filter((c) => c.publicKey === this.init.registryKey || c.publicKey === this.selfKey)
    if (refused.length > 0) {
      this.log.error(`refusing to change the registry peer or ourselves (${refused.length} change(s)); this is a bug`)
      out.changes = out.changes.filter((c) => !refused.includes(c))
      out.tracks.delete(this.init.registryKey)
    }
    const armed = await this.punchNewAttempts(out)
    let partial: WgSetError | undefined
    if (out.changes.length > 0) {
      // Record new peers before adding them, so a crash in between never leaves a peer we forget we own.
      await this.store.save(new Set([...this.tracks.keys(), ...out.tracks.keys()]))
      try {
        this.wgWrites++
        await this.wg.set(this.init.iface, out.changes, { current: device })
      } catch (err) {
        if (!(err instanceof WgSetError)) throw err
        // Applied in several calls and some failed: the others are on the interface. Peers whose change failed
        // keep their old track (the same change is decided again on the next tick); a new one stays tracked so it
        // is never mistaken for someone else's peer.
        partial = err
        const failed = err.failedKeys
        for (const key of failed) {
          const old = this.tracks.get(key)
          if (old !== undefined) out.tracks.set(key, old)
        }
        out.events = out.events.filter((e) => !failed.has(e.publicKey))
      }
      await this.store.save(out.tracks.keys())
    }
    if (out.events.length > 0) this.observer?.pathEvents?.(out.events, this.tracks, this.nowMs())
    const previous = this.tracks
    this.tracks = out.tracks
    if (out.changes.length > 0 && this.log.isLevelEnabled('debug')) this.logReinitiations(previous)
    this.switches.plan(plannedSwitches(this.tracks, this.desired, this.timing.keepaliveS))
    if (out.events.length > 0 || out.changes.length > 0 || vetted) this.pathsChanged()
    for (const resolve of waiters) resolve()
    if (!this.natStarted && this.desired !== null) this.startNatWhenDue()
    // Tell the peers we punched towards that our NAT is open for them (after the punches are out).
    if (armed || out.events.some((e) => e.from === 'arming' || e.from === 'trying')) {
      this.nat?.announceNow().catch((err: unknown) => this.log.warn(`announcing to the registry failed: ${messageOf(err)}`))
    }
    // A path change once at info; attempts and failures at debug, summed up at most once a minute.
    const infoEvents = new Set(this.pathLog.record(out.events))
    for (const e of out.events) {
      const endpoint = out.tracks.get(e.publicKey)?.endpoint ?? undefined
      // The hub's name for the peer when it serves one (vetted), else a key prefix.
      const peer = this.desired?.get(e.publicKey)?.name ?? shortKey(e.publicKey)
      const fields = { peer, endpoint }
      const text = `peer ${peer}: ${e.from} -> ${e.to} (${e.reason})`
      if (infoEvents.has(e)) this.log.info(fields, text)
      else this.log.debug(fields, text)
      if (e.to === 'hub' && !this.registryState.relay && !this.warnedUnreachable.has(e.publicKey)) {
        // Once per peer: after that its retries are in the summary (and at debug).
        this.warnedUnreachable.add(e.publicKey)
        this.log.warn({ peer }, `peer ${peer} is unreachable: no direct path, and the hub does not relay (wgnat-server --relay)`)
      }
      if (e.to === 'direct' || e.to === 'removed') this.warnedUnreachable.delete(e.publicKey)
    }
    const summary = this.pathLog.summary(this.nowMs(), this.tracks)
    if (summary !== null) this.log.info(summary)
    out.tracks.forEach((t, key) => {
      if ((t.probeAtMs ?? 0) > 0 && t.probeAtMs !== previous.get(key)?.probeAtMs) this.log.debug({ peer: shortKey(key) }, `peer ${shortKey(key)}: data unanswered, probing the direct path with a fresh handshake`)
    })
    if (partial !== undefined) throw partial
    return nowMs
  }

  /** Our public address as the hub sees it (the registry's entry for us), or null before the first table. */
  private selfPublicAddress (): string | null {
    return this.selfEntry?.endpoint == null ? null : parseEndpoint(this.selfEntry.endpoint).address
  }

  /**
   * NAT discovery and port mapping start once the first attempts are answered, NAT_START_DEFER_MS after they went out,
   * or at once on a host with global IPv6 or for a table with a peer that needs them (nat-start.ts); a tick calls this
   * after its attempts are out, every tick until then.
   */
  private startNatWhenDue (): void {
    const start = (): void => {
      if (this.natStarted || this.abort.signal.aborted) return
      this.natStarted = true
      clearTimeout(this.natTimer)
      this.natLoad = this.startNat().catch((err: unknown) => { this.log.warn(`NAT discovery did not start: ${messageOf(err)}`) })
      this.settle()
    }
    // After stop() (a tick that was under way): no timer that would hold the process up to 2 s.
    if (this.abort.signal.aborted) return
    if (this.ipv6Here || !firstAttemptsPending(this.tracks) || (this.desired !== null && needsNatNow(this.desired, this.selfPublicAddress()))) start()
    else this.natTimer ??= setTimeout(start, NAT_START_DEFER_MS).unref()
  }

  /**
   * Open our own NAT towards peers we start arming for: low-TTL datagrams from the WireGuard port that expire before
   * the far router. The far router then sees the peer's handshake as a reply, not as an unsolicited packet that would
   * clash with its own mapping. Resolves once the first round is out (only then may the peer be told we are ready);
   * the later rounds follow in the background. Returns whether anything was punched.
   */
  private async punchNewAttempts (out: ReconcileOutput): Promise<boolean> {
    if (this.init.punchTtl === undefined) return false
    const targets = out.events.filter((e) => e.to === 'arming').flatMap((e) => {
      const endpoint = out.tracks.get(e.publicKey)?.endpoint
      return endpoint == null ? [] : [parseEndpoint(endpoint)]
    })
    if (targets.length === 0) return false
    const init = { localPort: this.listenPort, targets, ttl: this.init.punchTtl, signal: this.abort.signal }
    // Loaded on first use, as NAT discovery is: punching is opt-in (--punch-ttl).
    const { punch } = await import('./nat/puncher.js')
    const first = await punch({ ...init, count: 1 }, { logger: this.log })
    if (first.errors.length > 0) this.log.debug(`punch: ${first.errors[0] ?? ''}`)
    void punch({ ...init, count: PUNCH_ROUNDS - 1 }, { logger: this.log })
    return true
  }

  private foreignPeersSignature (device: WgDevice): string {
    return device.peers
      .filter((p) => p.publicKey !== this.init.registryKey && !this.tracks.has(p.publicKey))
      .map((p) => `${p.publicKey}=${p.allowedIps.join(',')}`)
      .sort()
      .join(';')
  }

  private vet (device: WgDevice): Map<string, DesiredPeer> {
    const { desired, warnings } = vetTable(this.table?.values() ?? [], {
      selfKey: this.selfKey,
      registryKey: this.init.registryKey,
      meshPrefixes: this.meshPrefixes,
      registryAddresses: [this.registryAddress],
      hubPrefixes: this.hubPrefixes,
      managed: new Set(this.tracks.keys()),
      device
    })
    const now = new Set(warnings)
    // A hostile table may carry a problem per peer (20,000 of them): a few lines at warn, the rest summed up in one.
    const fresh = [...now].filter((w) => !this.lastWarnings.has(w))
    for (const w of fresh.slice(0, MAX_TABLE_WARNINGS)) this.log.warn(w)
    if (fresh.length > MAX_TABLE_WARNINGS) {
      this.log.warn(`${fresh.length - MAX_TABLE_WARNINGS} more problems with the registry table (listed at --log-level debug)`)
      for (const w of fresh.slice(MAX_TABLE_WARNINGS)) this.log.debug(w)
    }
    this.lastWarnings = now
    return desired
  }
}
