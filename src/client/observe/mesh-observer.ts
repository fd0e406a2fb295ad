import type { PathEvent, PeerTrack } from '../paths/reconcile.js'

/**
 * What the mesh client and its NAT monitor tell observers (metrics): counters and durations at the moment things
 * happen. Every method is optional and must be cheap and never throw; state (peers by path, NAT class) is read
 * from `status()` when needed instead.
 */
export interface MeshObserver {
  /** Path changes of one reconcile round; `before` holds the tracks as they were, `nowMs` the time of the round. */
  pathEvents?: (events: readonly PathEvent[], before: ReadonlyMap<string, PeerTrack>, nowMs: number) => void
  /** A registry call failed. */
  registryError?: (op: 'table' | 'announce' | 'report') => void
  /** One STUN request answered after `ms` (from its last send). */
  stunRoundTrip?: (ms: number) => void
  /** The STUN-mapped endpoint or the NAT class changed after the first discovery. */
  natChanged?: () => void
  /**
   * One sync cycle (read the interface, vet, reconcile, apply) took `cpuMs` of this process's CPU (user+system, from
   * its start to its end: whatever ran meanwhile in the process is included, the `wg` commands it ran are not) and
   * `wallMs` of wall time.
   */
  syncCycle?: (cpuMs: number, wallMs: number) => void
}
