import type { Logger } from '../../shared/log.js'
import { messageOf } from '../../shared/errors.js'
import { parseIp, parsePrefix, prefixHas, type Prefix } from '../../shared/ip.js'
import type { WgControl } from '../../shared/wg.js'
import { shortKey, type WgDevice } from '../../shared/wg-dump.js'
import type { TablePeer } from '../../shared/protocol.js'
import { RegistryTable, type TableView } from './registry-table.js'
import { evaluatePolicy, type PolicyEvaluation } from '../policy/evaluate-policy.js'
import { idleReadMs, nextReadDelay } from './read-pacing.js'
import type { LoadedPolicy } from '../policy/load-policy.js'
import { WaiterWheel } from './waiter-wheel.js'

/** How often expired long-polls are answered; a long-poll lasts its wait plus at most this. */
const WAITER_SWEEP_MS = 1000

interface Waiter { deadline: number, wake: () => void }

export interface RegistryServiceInit {
  iface: string
  /**
   * How often the interface is read into the shared snapshot when something suggests a change (see read-pacing.ts);
   * also the idle interval of an interface of up to 500 peers. @default 1000
   */
  pollMs?: number
  /** The interval between reads while nothing prompts one. @default idleReadMs(peers, pollMs), by the last read */
  idleReadMs?: number
}

export interface RegistryServiceComponents {
  wg: WgControl
  logger: Logger
  /** Unix seconds. @default wall clock */
  nowS?: () => number
  /** The hub's peer names (public key -> name), asked once per poll. @default none */
  names?: () => Promise<ReadonlyMap<string, string>>
  /**
   * Called with the policy's evaluation whenever the policy or the table changed under a policy (the relay's
   * filter follows it); undefined when the policy is dropped. What it returns (the relay's filter being applied) is
   * awaited before a new policy is served.
   */
  onPolicy?: (evaluation: PolicyEvaluation | undefined, peers: readonly TablePeer[]) => void | Promise<void>
}

/**
 * Keeps one snapshot of the hub's interface, read by one `wg show` every `pollMs` while something suggests a change,
 * less often while nothing does on a big interface (see read-pacing.ts), whatever the request load.
 * Requests read the snapshot and wait on `changedSince()` / `whenChanged()`; they never run `wg` themselves.
 */
export class RegistryService {
  readonly table = new RegistryTable()
  private readonly iface: string
  private readonly pollMs: number
  private readonly wg: WgControl
  private readonly log: Logger
  private readonly nowS: () => number
  private readonly names: () => Promise<ReadonlyMap<string, string>>
  private timer: NodeJS.Timeout | undefined
  private running = false
  private reading = false
  /** Something since the last read started suggests the interface changed: read again `pollMs` after it. */
  private prompted = false
  private lastReadAt: number | undefined
  private readonly fixedIdleMs: number | undefined
  private readonly waiters = new WaiterWheel<Waiter>(WAITER_SWEEP_MS)
  private sweeper: NodeJS.Timeout | undefined
  private identityVersion = -1
  private hosts = new Map<string, string>()
  private nets: Array<{ prefix: Prefix, key: string }> = []
  private failing = false
  private _device: WgDevice | undefined
  private policy: LoadedPolicy | undefined
  private evaluation: PolicyEvaluation | undefined
  private readonly onPolicy: RegistryServiceComponents['onPolicy']
  /** Allowed IPs of each peer as last evaluated against the policy. */
  private readonly lastAllowedIps = new Map<string, string>()

  constructor (init: RegistryServiceInit, components: RegistryServiceComponents) {
    this.iface = init.iface
    this.pollMs = init.pollMs ?? 1000
    this.fixedIdleMs = init.idleReadMs
    this.wg = components.wg
    this.log = components.logger
    this.nowS = components.nowS ?? (() => Math.floor(Date.now() / 1000))
    this.names = components.names ?? (async () => new Map())
    this.onPolicy = components.onPolicy
  }

  /**
   * Put an access policy in force (undefined: everyone reaches everyone). Every caller's view is recomputed and
   * every long-poll woken with a delta listing each peer, as an entry or as removed; after `onPolicy`'s work (the
   * relay's filter) is done, so that a pair the new policy forbids is cut on the hub before its spokes drop each
   * other and their traffic falls back to the hub.
   */
  async setPolicy (policy: LoadedPolicy | undefined): Promise<void> {
    this.policy = policy
    this.evaluation = undefined
    const { applying } = this.evaluate()
    if (applying !== undefined) await applying
    this.table.touchAll()
    this.wake()
  }

  /** The access policy's evaluation in force, if any. */
  get policyEvaluation (): PolicyEvaluation | undefined { return this.evaluation }

  /** What `caller` may see under the policy; undefined without one (everything). */
  view (caller: string): TableView | undefined {
    return this.evaluation?.view(caller)
  }

  /** Did any of `changed` come, leave or change its allowed IPs since the last call? */
  private membershipChanged (changed: string[]): boolean {
    let moved = false
    for (const key of changed) {
      const ips = this.table.get(key)?.allowedIps.join(',')
      if (ips === this.lastAllowedIps.get(key)) continue
      moved = true
      if (ips === undefined) this.lastAllowedIps.delete(key)
      else this.lastAllowedIps.set(key, ips)
    }
    return moved
  }

  /** Evaluate the policy against the table; `changed` when what callers may see changed. */
  private evaluate (): { changed: boolean, applying?: Promise<void> } {
    const tell = (evaluation: PolicyEvaluation | undefined, peers: readonly TablePeer[]): Promise<void> | undefined => {
      const applying = this.onPolicy?.(evaluation, peers)
      return applying instanceof Promise ? applying : undefined
    }
    if (this.policy === undefined) return { changed: false, applying: tell(undefined, []) }
    const peers = [...this.table.peers()]
    const next = evaluatePolicy(this.policy.policy, peers, this.policy.names)
    const changed = next.signature !== this.evaluation?.signature
    this.evaluation = next
    return { changed, applying: tell(next, peers) }
  }

  /** The device as last read: listen port and own key (its peers are in `table`). */
  get device (): WgDevice {
    if (this._device === undefined) throw new Error('registry service not started')
    return this._device
  }

  /** Read the interface once (errors here are fatal: interface missing, `wg` absent), then keep polling. */
  async start (): Promise<void> {
    this.lastReadAt = Date.now()
    this.apply(await this.wg.show(this.iface), await this.names())
    this.log.info({ peers: this.table.size, version: this.table.version, idleReadMs: this.idleMs() }, `serving ${this.table.size} peers of ${this.iface}`)
    this.running = true
    this.schedule()
    this.sweeper = setInterval(() => this.sweep(), WAITER_SWEEP_MS)
  }

  stop (): void {
    this.running = false
    clearTimeout(this.timer)
    clearInterval(this.sweeper)
    this.timer = undefined
    this.wake()
  }

  /**
   * Resolve when the table moves past `version`, after about `timeoutMs`, or on abort; whichever comes first.
   * Waiters hold no timer of their own: one sweep per second ends the expired ones, so 10,000 long-polls cost
   * 10,000 small records, not 10,000 timers.
   */
  async changedSince (version: number, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (this.table.version !== version || timeoutMs <= 0 || signal?.aborted === true) return
    await new Promise<void>((resolve) => {
      const waiter: Waiter = { deadline: Date.now() + timeoutMs, wake: () => { signal?.removeEventListener('abort', onAbort); resolve() } }
      const onAbort = (): void => { this.waiters.delete(waiter); waiter.wake() }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.waiters.add(waiter)
    })
  }

  /**
   * `changedSince` without a promise: call `wake` (once) when the table moves past `version` or after about
   * `timeoutMs`; at once when it already has. A held long-poll is then one small record and one closure, not a
   * chain of suspended async frames (10,000 of them at 10,000 long-polls).
   */
  whenChanged (version: number, timeoutMs: number, wake: () => void): void {
    if (this.table.version !== version || timeoutMs <= 0) { wake(); return }
    this.waiters.add({ deadline: Date.now() + timeoutMs, wake })
  }

  /** How many requests are waiting for a change. */
  get waiting (): number { return this.waiters.size }

  /** The peer whose allowed IPs contain `address` (WireGuard's cryptokey routing vouches for it), if any. */
  identify (address: string): string | undefined {
    // Rebuilt only when a peer came, left or got other allowed IPs: parsing 10,000 peers' prefixes at every
    // endpoint or announcement change would stall every request behind it.
    if (this.identityVersion !== this.table.addressVersion) this.rebuildIdentity()
    // An address in its canonical text (what a socket gives for a tunnel peer) that is a host key: no parse. A key
    // is canonical text, so a literal match is that very address; anything else is parsed and looked up again.
    const literal = this.hosts.get(address)
    if (literal !== undefined) return literal
    let ip
    try { ip = parseIp(address) } catch { return undefined }
    const exact = this.hosts.get(ip.toString())
    if (exact !== undefined) return exact
    let best: { bits: number, key: string } | undefined
    for (const { prefix, key } of this.nets) {
      if (prefixHas(prefix, ip) && (best === undefined || prefix.bits > best.bits)) best = { bits: prefix.bits, key }
    }
    return best?.key
  }

  /** Record what a peer announced; wakes long-polls when it changed the table. */
  announce (...args: Parameters<RegistryTable['announce']>): void {
    if (!this.table.announce(...args)) return
    this.wake()
    // A peer whose NAT or network changed says so, through the tunnel: the hub has its new endpoint now.
    this.promptRead()
  }

  /**
   * `caller` made a request (its packets reach the hub now): when the table shows it offline or without an
   * endpoint, the table is behind the interface, and the interface is read soon (a peer coming up).
   */
  noteRequest (caller: string): void {
    const peer = this.table.get(caller)
    if (peer !== undefined && (peer.endpoint === null || !peer.online)) this.promptRead()
  }

  /** Read the interface `pollMs` after the last read started (at once if that is past), not at the idle interval. */
  promptRead (): void {
    if (!this.running || this.prompted) return
    this.prompted = true
    // A read under way may have run `wg` before the change: the next one follows it `pollMs` after its start.
    if (!this.reading) this.schedule()
  }

  /** The interval between reads while nothing prompts one (see read-pacing.ts). */
  idleMs (): number {
    return this.fixedIdleMs ?? idleReadMs(this.table.size, this.pollMs)
  }

  private schedule (): void {
    clearTimeout(this.timer)
    const delay = nextReadDelay({ lastReadAt: this.lastReadAt, now: Date.now(), prompted: this.prompted, idleMs: this.idleMs(), pollMs: this.pollMs })
    this.timer = setTimeout(() => { void this.poll() }, delay)
  }

  /** One poll; never throws: a failed read keeps the last good snapshot. */
  private async poll (): Promise<void> {
    this.reading = true
    this.prompted = false
    this.lastReadAt = Date.now()
    try {
      const device = await this.wg.show(this.iface)
      this.apply(device, await this.names())
      if (this.failing) this.log.info(`reading ${this.iface} works again`)
      this.failing = false
    } catch (err) {
      if (!this.failing) this.log.warn(`reading ${this.iface} failed, serving the last good table: ${messageOf(err)}`)
      this.failing = true
    }
    this.reading = false
    if (this.running) this.schedule()
  }

  private apply (device: WgDevice, names: ReadonlyMap<string, string>): void {
    const first = this._device === undefined
    // Keep the interface's own facts only; the peers live on in the table.
    this._device = { publicKey: device.publicKey, listenPort: device.listenPort, peers: [] }
    const changed = this.table.update(device, this.nowS(), names)
    if (changed.length === 0) return
    // A peer that came, left or got other allowed IPs may change who reaches whom (an endpoint change cannot):
    // then every caller's view is sent again.
    if (this.policy !== undefined && this.membershipChanged(changed) && this.evaluate().changed && !first) this.table.touchAll()
    if (!first && changed.length <= 32) {
      for (const key of changed) {
        const peer = this.table.get(key)
        if (peer === undefined) this.log.info({ peer: shortKey(key) }, 'peer removed')
        else this.log.info({ peer: peer.name ?? shortKey(key), endpoint: peer.endpoint, online: peer.online }, 'peer changed')
      }
    } else if (!first) {
      this.log.info({ changed: changed.length, version: this.table.version }, 'table changed')
    }
    this.wake()
  }

  private wake (): void {
    for (const w of this.waiters.takeAll()) w.wake()
  }

  /** End the expired waits: only the seconds that have passed are looked at, not every held long-poll. */
  private sweep (): void {
    for (const w of this.waiters.takeExpired(Date.now())) w.wake()
  }

  private rebuildIdentity (): void {
    this.hosts = new Map()
    this.nets = []
    for (const peer of this.table.peers()) {
      for (const text of peer.allowedIps) {
        const prefix = parsePrefix(text)
        const max = prefix.address.kind() === 'ipv4' ? 32 : 128
        if (prefix.bits === max) this.hosts.set(prefix.address.toString(), peer.publicKey)
        else this.nets.push({ prefix, key: peer.publicKey })
      }
    }
    this.identityVersion = this.table.addressVersion
  }
}
