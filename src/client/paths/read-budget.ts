/**
 * How often the client reads the interface while only retries (attempts after a failure) wait on it. A read costs
 * what reading, parsing and reconciling the whole interface costs: about 10 ms of CPU with 1,000 peers, far more
 * with 10,000, and with many peers that never answer some retry is nearly always under way. So such reads come at
 * most as often as keeps them within a share of a core; with a few hundred peers that is every second as before.
 * First attempts, data flowing to a direct peer (dead-path detection) and a healing pair's agreed instant are not
 * slowed: they read as often as they need.
 */
export const RETRY_READ_BUDGET = 0.02
/** Never further apart than this while a retry waits: its handshake is seen well within its attempt window. */
export const RETRY_READ_MAX_MS = 5000
/** Weight of the newest cycle in the running mean of a cycle's CPU. */
export const CYCLE_CPU_WEIGHT = 0.3

/** The running mean of one sync cycle's CPU (ms), updated with the latest cycle. Pure. */
export function meanCycleCpuMs (mean: number | undefined, latestMs: number): number {
  return mean === undefined ? latestMs : mean + CYCLE_CPU_WEIGHT * (latestMs - mean)
}

/** The read interval for retries: `baseMs`, stretched so that reads cost at most `budget` of a core, up to `maxMs`. Pure. */
export function retryReadMs (baseMs: number, cycleCpuMs: number, budget = RETRY_READ_BUDGET, maxMs = RETRY_READ_MAX_MS): number {
  return Math.max(baseMs, Math.min(maxMs, cycleCpuMs / budget))
}
