import type { Logger } from '../../shared/log.js'
import { messageOf } from '../../shared/errors.js'
import type { PolicyEvaluation, PolicyPeer } from './evaluate-policy.js'
import { removeTableScript, type NftControl } from '../../shared/nft.js'
import { DENIED_COUNTER, relayRuleset, relayTableName } from './relay-ruleset.js'

export interface Counter { packets: number, bytes: number }

export interface RelayFilterInit { iface: string }
export interface RelayFilterComponents { nft: NftControl, logger: Logger }

/**
 * The hub's policy filter on forwarded traffic (relayRuleset), kept in step with the policy and the peers:
 * `update()` may be called on every table change; only a ruleset that differs from the one in force is applied, one
 * `nft -f` at a time, the newest winning. The denied counter carries over each replacement. `stop()` removes it.
 */
export class RelayFilter {
  private readonly iface: string
  private readonly nft: NftControl
  private readonly log: Logger
  private applied = ''
  private pending: { evaluation: PolicyEvaluation | undefined, peers: readonly PolicyPeer[] } | undefined
  private running: Promise<void> | undefined
  private failing = false

  constructor (init: RelayFilterInit, components: RelayFilterComponents) {
    this.iface = init.iface
    this.nft = components.nft
    this.log = components.logger
  }

  /** Apply at once and throw on failure (start-up: nft missing or not permitted is fatal). */
  async start (evaluation: PolicyEvaluation, peers: readonly PolicyPeer[]): Promise<void> {
    await this.apply(evaluation, peers)
  }

  /**
   * Follow a new evaluation or peer list (never throws; a failure is logged and retried with the next change).
   * Resolves once it is applied (or has failed).
   */
  async update (evaluation: PolicyEvaluation | undefined, peers: readonly PolicyPeer[]): Promise<void> {
    this.pending = { evaluation, peers }
    this.running ??= this.drain()
    await this.settled()
  }

  /** Wait until every update so far is applied (or has failed). */
  async settled (): Promise<void> {
    while (this.running !== undefined) await this.running
  }

  /** Relayed packets the policy dropped, as the kernel counts them; undefined when the table is not there. */
  async denied (): Promise<Counter | undefined> {
    return await readDenied(this.nft, this.iface)
  }

  async stop (): Promise<void> {
    this.pending = undefined
    await this.settled()
    if (this.applied === '') return
    const table = relayTableName(this.iface)
    await this.nft.apply(removeTableScript(table)).catch((err: unknown) => this.log.warn(`cannot remove the relay policy table: ${messageOf(err)}`))
    this.applied = ''
  }

  private async drain (): Promise<void> {
    // Yield first: `running` must be set before the loop can end and clear it.
    await Promise.resolve()
    try {
      while (this.pending !== undefined) {
        const { evaluation, peers } = this.pending
        this.pending = undefined
        if (evaluation === undefined) continue
        try {
          await this.apply(evaluation, peers)
          if (this.failing) this.log.info('relay policy filter applied again')
          this.failing = false
        } catch (err) {
          if (!this.failing) this.log.error(`relay policy filter not updated, the previous one stays: ${messageOf(err)}`)
          this.failing = true
        }
      }
    } finally {
      this.running = undefined
    }
  }

  private async apply (evaluation: PolicyEvaluation, peers: readonly PolicyPeer[]): Promise<void> {
    const probe = relayRuleset(this.iface, evaluation, peers)
    if (probe.script === this.applied) return
    const counter = this.applied === '' ? undefined : await this.denied()
    const t0 = Date.now()
    await this.nft.apply(counter === undefined ? probe.script : relayRuleset(this.iface, evaluation, peers, counter).script)
    this.applied = probe.script
    this.log.info({ rules: probe.rules, elements: probe.elements, ms: Date.now() - t0 }, `relay policy filter: ${probe.rules} rules, ${probe.elements} set elements (table inet ${relayTableName(this.iface)})`)
  }
}

/** Read the denied counter of `iface`'s relay policy table. */
export async function readDenied (nft: NftControl, iface: string): Promise<Counter | undefined> {
  const json = await nft.listJson(['list', 'counter', 'inet', relayTableName(iface), DENIED_COUNTER]) as { nftables?: Array<{ counter?: Counter }> } | undefined
  const c = json?.nftables?.find((o) => o.counter !== undefined)?.counter
  return c === undefined ? undefined : { packets: c.packets, bytes: c.bytes }
}
