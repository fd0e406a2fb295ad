import type { NetlinkAddress } from '../../shared/netlink-addresses.js'

/**
 * Longest the NAT check reuses an address list while netlink reports no change. The kernel's change notifications
 * (addresses, links, routes; a lost notification shows as an overflow) are what invalidates the list; this only
 * bounds the age of a list should a notification be missed anyway. An address dump is a netlink socket and two
 * dumps, the largest part of a NAT check at rest once the STUN exchange is cheap.
 */
export const ADDRESS_CACHE_MAX_AGE_MS = 60_000

export interface AddressCacheInit {
  /** Reads the addresses afresh (a netlink dump). */
  read: (opts: { signal?: AbortSignal }) => Promise<NetlinkAddress[]>
  /** 0: never reuse a list (no change notifications to rely on). @default ADDRESS_CACHE_MAX_AGE_MS */
  maxAgeMs?: number
  nowMs?: () => number
}

/**
 * The interface addresses, read again only after a change was reported (invalidate()) or when the list is older
 * than `maxAgeMs`. Reuse starts only once {@link AddressCache.trustChanges} says changes are being watched. A change
 * reported while a read is in flight is not lost: that read's result is used once, not kept.
 */
export class AddressCache {
  private list: NetlinkAddress[] | undefined
  private readAtMs = 0
  /** Bumped by every invalidate(); a read keeps its result only if none came while it ran. */
  private generation = 0
  private trusted = false
  private readonly nowMs: () => number

  constructor (private readonly init: AddressCacheInit) {
    this.nowMs = init.nowMs ?? Date.now
  }

  /** Netlink change notifications are subscribed: a list may be reused until invalidate(). */
  trustChanges (): void { this.trusted = true }

  /** The addresses may have changed: the next get() reads them again. */
  invalidate (): void {
    this.generation++
    this.list = undefined
  }

  async get (signal?: AbortSignal): Promise<NetlinkAddress[]> {
    const maxAgeMs = this.init.maxAgeMs ?? ADDRESS_CACHE_MAX_AGE_MS
    if (this.trusted && this.list !== undefined && this.nowMs() - this.readAtMs < maxAgeMs) return this.list
    const generation = this.generation
    const at = this.nowMs()
    const list = await this.init.read({ signal })
    if (generation === this.generation) {
      this.list = list
      this.readAtMs = at
    }
    return list
  }
}
