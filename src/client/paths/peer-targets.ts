import { formatEndpoint, type Endpoint } from '../../shared/ip.js'
import type { DesiredPeer } from './vet-table.js'

/** Where to try a peer, best first, and the same as one string (a track's `targets`); null when nowhere. */
export interface PeerTargets { candidates: Endpoint[], targets: string | null }

const memo = new WeakMap<DesiredPeer, { context: string, value: PeerTargets }>()

/**
 * `compute(want)` (reconcile's candidates, best first) and its string form, kept per vetted peer: a vetted table
 * is the same objects from one reconcile to the next until the registry's table changes, so a client at rest with
 * 10,000 peers does not format 10,000 endpoint lists on every read of the interface. `context` is what else the
 * list depends on (our public address, whether we have IPv6): recomputed when it changes. The result is shared:
 * callers must not change it.
 */
export function peerTargets (want: DesiredPeer, context: string, compute: (want: DesiredPeer) => Endpoint[]): PeerTargets {
  const hit = memo.get(want)
  if (hit !== undefined && hit.context === context) return hit.value
  const candidates = compute(want)
  const value = { candidates, targets: candidates.length === 0 ? null : candidates.map(formatEndpoint).join(',') }
  memo.set(want, { context, value })
  return value
}
