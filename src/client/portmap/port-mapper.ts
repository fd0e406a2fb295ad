import { messageOf } from '../../shared/errors.js'
import { formatEndpoint } from '../../shared/ip.js'
import type { Logger } from '../../shared/log.js'
import { RepeatingTask } from '../../shared/repeating-task.js'
import { defaultGateway } from './default-gateway.js'
import { natPmpMap } from './nat-pmp-client.js'
import { pcpMap } from './pcp-client.js'
import { PortMapError, type MapFunction, type MapRequest, type MappingProtocol, type PortMapping } from './port-mapping.js'
import { upnpMap } from './upnp-client.js'

/** Defaults of {@link PortMapperInit}; each has its reason. */
export const PORT_MAPPER_DEFAULTS = {
  /** Lifetime asked for: two hours, renewed at half-time, so a crashed client's mapping does not outlive it long. */
  lifetimeS: 7200,
  /**
   * How long one round of asking may take: a gateway on the LAN answers in milliseconds, so a gateway that says
   * nothing in this long speaks none of the protocols. Runs in the background; nothing waits for it.
   */
  timeoutMs: 2000,
  /**
   * After a round where every protocol failed: ask again this much later, doubling per failed round up to
   * retryMaxMs (or at once on a network change). A busy gateway that missed one round is asked again soon; one
   * that speaks none of the protocols costs a 2 s round a few times an hour, in the background.
   */
  retryBaseMs: 10_000,
  retryMaxMs: 300_000,
  /** A network change asks again at once, but never more often than this after a failed round. */
  minRetryMs: 10_000,
  /** Renew a permanent (UPnP lease 0) mapping this often anyway: it notices a router that lost its table. */
  permanentRenewMs: 600_000,
  /** Deleting the mapping on exit waits at most this long. */
  removeTimeoutMs: 1000
} as const

export interface PortMapperInit {
  /** The UDP port to map: WireGuard's listen port. */
  internalPort: number
  lifetimeS?: number
  timeoutMs?: number
  retryBaseMs?: number
  retryMaxMs?: number
  minRetryMs?: number
}

export interface PortMapperComponents {
  logger: Logger
  /** The mapped endpoint changed (or was lost: null). */
  onChange?: (mapping: PortMapping | null) => void
  /** The default gateway (tests inject one). */
  gateway?: (signal?: AbortSignal) => Promise<string | null>
  /** The protocols (tests inject fakes). */
  protocols?: { pcp?: MapFunction, natPmp?: MapFunction, upnp?: MapFunction }
  nowMs?: () => number
}

/** What `wgnat-client status` shows about the mapping. */
export interface PortMappingStatus {
  protocol: MappingProtocol
  /** The external endpoint peers can send to. */
  endpoint: string
  gateway: string
  lifetimeS: number
  /** Unix seconds of the next renewal. */
  renewAtS: number
}

/**
 * Keeps a mapping of WireGuard's UDP port on the default gateway: asks by PCP (falling back to NAT-PMP, which
 * shares its port) and by UPnP IGD in parallel, takes the first that succeeds, renews it at half its lifetime,
 * and deletes it on stop(). The requests leave from other ports than WireGuard's: all three protocols name the
 * internal port explicitly. A gateway that answers nothing costs one `timeoutMs` in the background, then a retry
 * every `retryMs` or on a network change. Its loop never throws.
 */
export class PortMapper {
  private readonly task: RepeatingTask
  private readonly cfg: Required<PortMapperInit>
  private readonly nowMs: () => number
  private mapping: { m: PortMapping, gateway: string, renewAtMs: number } | null = null
  private cleanups = new Set<Promise<void>>()
  private lastAttemptMs = Number.NEGATIVE_INFINITY
  private lastError = ''
  /** Failed rounds in a row (for the backoff). */
  private failedRounds = 0
  private rechecking = false

  constructor (init: PortMapperInit, private readonly c: PortMapperComponents) {
    this.cfg = { ...PORT_MAPPER_DEFAULTS, ...init } as Required<PortMapperInit>
    this.nowMs = c.nowMs ?? Date.now
    this.task = new RepeatingTask({
      round: async (signal) => {
        await this.step(signal)
        return this.waitMs()
      },
      onError: (err) => {
        this.c.logger.warn(`port mapping: ${messageOf(err)}`)
        return this.waitMs()
      }
    })
  }

  /** The mapping in force, if any. */
  get current (): PortMapping | null { return this.mapping?.m ?? null }

  status (): PortMappingStatus | null {
    const m = this.mapping
    if (m === null) return null
    return { protocol: m.m.protocol, endpoint: formatEndpoint(m.m.external), gateway: m.gateway, lifetimeS: m.m.lifetimeS, renewAtS: Math.floor(m.renewAtMs / 1000) }
  }

  start (): void { this.task.start() }

  /** The network changed: check the gateway again (and ask again if we have no mapping). */
  recheck (): void { this.rechecking = true; this.task.wake() }

  /** Stop, and delete the mapping on the gateway (waits at most removeTimeoutMs). */
  async stop (): Promise<void> {
    await this.task.stop()
    await Promise.all(this.cleanups)
    const held = this.mapping
    this.mapping = null
    if (held === null) return
    try {
      await held.m.remove(PORT_MAPPER_DEFAULTS.removeTimeoutMs)
      this.c.logger.info(`port mapping ${formatEndpoint(held.m.external)} (${held.m.protocol}) deleted on ${held.gateway}`)
    } catch (err) {
      this.c.logger.warn(`deleting the port mapping ${formatEndpoint(held.m.external)} on ${held.gateway} failed: ${messageOf(err)}`)
    }
  }

  /** Until the renewal, or the next attempt. */
  private waitMs (): number {
    return this.mapping !== null
      ? Math.max(0, this.mapping.renewAtMs - this.nowMs())
      : Math.max(0, this.nextAttemptMs() - this.nowMs())
  }

  private async step (signal: AbortSignal): Promise<void> {
    const recheck = this.rechecking
    this.rechecking = false
    const held = this.mapping
    if (held !== null) {
      if (recheck) {
        const gateway = await (this.c.gateway ?? defaultGateway)(signal)
        if (gateway === held.gateway) return
        // Another gateway: the old mapping is gone with the old network (or soon will be); start over.
        this.c.logger.info(`default gateway changed (${held.gateway} -> ${gateway ?? 'none'}): asking for a new port mapping`)
        this.drop(held.m)
        await this.acquire(signal)
        return
      }
      if (this.nowMs() < held.renewAtMs) return
      try {
        const renewed = await held.m.renew(this.cfg.timeoutMs, signal)
        if (signal.aborted) return
        this.keep(renewed, held.gateway)
        if (formatEndpoint(renewed.external) !== formatEndpoint(held.m.external)) {
          this.c.logger.info(`port mapping moved: ${formatEndpoint(held.m.external)} -> ${formatEndpoint(renewed.external)} (${renewed.protocol})`)
          this.c.onChange?.(renewed)
        } else {
          this.c.logger.debug(`port mapping ${formatEndpoint(renewed.external)} renewed for ${renewed.lifetimeS} s`)
        }
      } catch (err) {
        if (signal.aborted) return
        this.c.logger.warn(`renewing the port mapping ${formatEndpoint(held.m.external)} failed (${messageOf(err)}); asking again`)
        this.mapping = null
        this.c.onChange?.(null)
        await this.acquire(signal)
      }
      return
    }
    // No mapping: ask on schedule, or on a network change unless we asked very recently.
    if (recheck && this.nowMs() - this.lastAttemptMs < this.cfg.minRetryMs) return
    if (!recheck && this.nowMs() < this.nextAttemptMs()) return
    await this.acquire(signal)
  }

  private nextAttemptMs (): number {
    if (this.failedRounds === 0) return this.lastAttemptMs
    return this.lastAttemptMs + Math.min(this.cfg.retryMaxMs, this.cfg.retryBaseMs * 2 ** (this.failedRounds - 1))
  }

  private keep (m: PortMapping, gateway: string): void {
    const renewInMs = m.lifetimeS === 0 ? PORT_MAPPER_DEFAULTS.permanentRenewMs : Math.max(1000, m.lifetimeS * 500)
    this.mapping = { m, gateway, renewAtMs: this.nowMs() + renewInMs }
  }

  /** Forget a mapping and delete it in the background. */
  private drop (m: PortMapping): void {
    if (this.mapping?.m === m) { this.mapping = null; this.c.onChange?.(null) }
    this.background(m.remove(PORT_MAPPER_DEFAULTS.removeTimeoutMs).catch(() => {}))
  }

  private background (p: Promise<void>): void {
    this.cleanups.add(p)
    void p.finally(() => this.cleanups.delete(p))
  }

  /** One round: all protocols at once, the first success wins. */
  private async acquire (signal: AbortSignal): Promise<void> {
    this.lastAttemptMs = this.nowMs()
    let gateway: string | null
    try {
      gateway = await (this.c.gateway ?? defaultGateway)(signal)
    } catch (err) {
      this.failedRounds++
      throw err
    }
    if (gateway === null) {
      this.failedRounds++
      this.note('no IPv4 default gateway to ask for a port mapping')
      return
    }
    const round = new AbortController()
    const onAbort = (): void => round.abort()
    signal.addEventListener('abort', onAbort)
    const req: MapRequest = { gateway, internalPort: this.cfg.internalPort, lifetimeS: this.cfg.lifetimeS, timeoutMs: this.cfg.timeoutMs, signal: round.signal }
    const p = this.c.protocols ?? {}
    const pcp = p.pcp ?? pcpMap
    const natPmp = p.natPmp ?? natPmpMap
    const upnp = p.upnp ?? upnpMap
    // PCP and NAT-PMP share the gateway's port 5351: ask PCP first, NAT-PMP with what is left of the time if PCP
    // fails (an old gateway answers PCP with NAT-PMP's UNSUPP_VERSION at once).
    const portControl = (async () => {
      const t0 = this.nowMs()
      try {
        return await pcp({ ...req, timeoutMs: Math.floor(req.timeoutMs / 2) })
      } catch (pcpErr) {
        if (round.signal.aborted) throw pcpErr
        try {
          return await natPmp({ ...req, timeoutMs: Math.max(250, req.timeoutMs - (this.nowMs() - t0)) })
        } catch (natPmpErr) {
          throw new PortMapError(`${messageOf(pcpErr)}; ${messageOf(natPmpErr)}`)
        }
      }
    })()
    const attempts = [portControl, upnp(req)]
    let winner: PortMapping | null = null
    try {
      winner = await Promise.any(attempts)
    } catch (err) {
      const reasons = err instanceof AggregateError ? err.errors.map(messageOf) : [messageOf(err)]
      if (!signal.aborted) this.note(`no port mapping from ${gateway}: ${reasons.join('; ')}`)
    } finally {
      round.abort()
      signal.removeEventListener('abort', onAbort)
    }
    // A loser that got a mapping of its own anyway (a different external endpoint) is deleted; one that got the
    // same endpoint is the same entry on the gateway and stays.
    for (const a of attempts) {
      this.background(a.then((m) => {
        if (m !== winner && (winner === null || formatEndpoint(m.external) !== formatEndpoint(winner.external))) return m.remove(PORT_MAPPER_DEFAULTS.removeTimeoutMs).catch(() => {})
      }, () => {}))
    }
    if (winner === null) { this.failedRounds++; return }
    this.failedRounds = 0
    if (signal.aborted) { this.background(winner.remove(PORT_MAPPER_DEFAULTS.removeTimeoutMs).catch(() => {})); return }
    this.keep(winner, gateway)
    this.lastError = ''
    this.c.logger.info({ protocol: winner.protocol, gateway, lifetimeS: winner.lifetimeS }, `port mapping ${formatEndpoint(winner.external)} -> :${winner.internalPort} by ${winner.protocol} on ${gateway}`)
    this.c.onChange?.(winner)
  }

  /** Log a failure at info once, then at debug while it stays the same. */
  private note (message: string): void {
    if (message === this.lastError) this.c.logger.debug(message)
    else this.c.logger.info(message)
    this.lastError = message
  }
}

