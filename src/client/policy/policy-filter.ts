import { messageOf } from '../../shared/errors.js'
import type { Logger } from '../../shared/log.js'
import { removeTableScript, type NftControl } from '../../shared/nft.js'
import { clientFilterRuleset, clientTableName, type FilterPeer } from './policy-filter-ruleset.js'

/**
 * The look for a table left by a killed run waits this long after the first vetting: it is cleanup (such a table
 * only drops more than it should), and a client's first seconds belong to its first attempts (one `nft` less then).
 */
export const STALE_CHECK_DELAY_MS = 5000

export interface PolicyFilterInit {
  iface: string
  /** @default STALE_CHECK_DELAY_MS */
  staleCheckDelayMs?: number
}
export interface PolicyFilterComponents { nft: NftControl, logger: Logger }

/**
 * Keeps the spoke's one-way filter (clientFilterRuleset) in step with the vetted table: fed the peers this client
 * manages after each vetting, it applies a changed ruleset with one `nft -f` (atomic), removes the table when no
 * peer needs it, and on stop(). Peers wgnat did not add are never in it. nft missing or refused: one warning, and
 * the hub's filter still stops relayed traffic.
 */
export class PolicyFilter {
  private readonly iface: string
  private readonly nft: NftControl
  private readonly log: Logger
  private applied: string | undefined
  private wanted: string | undefined
  private running: Promise<void> | undefined
  private failing = false
  private stopped = false
  private staleScheduled = false
  private staleDue = false
  private staleTimer: ReturnType<typeof setTimeout> | undefined
  private readonly staleDelayMs: number

  constructor (init: PolicyFilterInit, components: PolicyFilterComponents) {
    this.iface = init.iface
    this.nft = components.nft
    this.log = components.logger
    this.staleDelayMs = init.staleCheckDelayMs ?? STALE_CHECK_DELAY_MS
  }

  /** The managed peers as last vetted. Never throws; applies in the background, newest wins. */
  update (peers: Iterable<FilterPeer>): void {
    if (this.stopped) return
    this.wanted = clientFilterRuleset(this.iface, peers)
    if (!this.staleScheduled) {
      this.staleScheduled = true
      if (this.staleDelayMs <= 0) {
        this.staleDue = true
      } else {
        this.staleTimer = setTimeout(() => { this.staleDue = true; if (!this.stopped) this.running ??= this.drain() }, this.staleDelayMs)
        this.staleTimer.unref()
      }
    }
    this.running ??= this.drain()
  }

  /** Remove the filter (if we installed one) and stop following. */
  async stop (): Promise<void> {
    this.stopped = true
    clearTimeout(this.staleTimer)
    this.staleDue = false
    this.wanted = undefined
    while (this.running !== undefined) await this.running
    if (this.applied !== undefined) await this.put(undefined).catch((err: unknown) => this.log.warn(`cannot remove the policy filter: ${messageOf(err)}`))
  }

  private async drain (): Promise<void> {
    // Yield first: `running` must be set before the loop can end and clear it.
    await Promise.resolve()
    try {
      while (this.staleDue || this.wanted !== this.applied) {
        if (this.staleDue) {
          // A table of ours from a run that was killed would go on dropping: remove it. (A ruleset we apply replaces
          // it whole, so this matters only while we have none.)
          this.staleDue = false
          if (this.wanted === undefined && await this.nft.removeStale('inet', clientTableName(this.iface))) this.log.info(`removed a stale policy filter (table inet ${clientTableName(this.iface)})`)
          continue
        }
        const wanted = this.wanted
        try {
          await this.put(wanted)
          if (this.failing) this.log.info('policy filter applied again')
          this.failing = false
        } catch (err) {
          if (!this.failing) this.log.warn(`cannot apply the policy filter (one-way rules not enforced on this spoke; the hub still filters what it relays): ${messageOf(err)}`)
          this.failing = true
          break
        }
      }
    } finally {
      this.running = undefined
    }
  }

  private async put (script: string | undefined): Promise<void> {
    const table = clientTableName(this.iface)
    await this.nft.apply(script ?? removeTableScript(table))
    const was = this.applied
    this.applied = script
    if (script === undefined) this.log.info(`policy filter removed (table inet ${table})`)
    else if (was === undefined) this.log.info(`policy filter installed: new connections from peers that may not open them are dropped (table inet ${table})`)
    else this.log.debug('policy filter updated')
  }
}
