/** Timing constants for the NAT lab. Tests that need shorter waits import and pass their own values. */

/** Default limit for one command run in a lab namespace (`lab.exec`). */
export const DEFAULT_EXEC_TIMEOUT_MS = 30_000

/** How long wireguard-go may take to create its UAPI socket before start-up counts as failed. */
export const WG_START_TIMEOUT_MS = 5_000

/** How often to look for wireguard-go's UAPI socket while it starts. */
export const WG_START_POLL_MS = 10

/** Grace between SIGTERM and SIGKILL when stopping processes at teardown (wireguard-go removes its socket on SIGTERM). */
export const STOP_GRACE_MS = 1_000

/** How often to check whether signalled processes are gone during teardown. */
export const STOP_POLL_MS = 20

/** Defaults for `lab.ping`: packets, seconds between them, seconds to wait for each reply. */
export const PING_DEFAULT_COUNT = 3
export const PING_DEFAULT_INTERVAL_S = 0.2
export const PING_DEFAULT_TIMEOUT_S = 1

/** Extra time on top of the expected ping duration before the ping process itself is killed. */
export const PING_SLACK_MS = 5_000

/** How long miniupnpd (port-mapping routers) may take to listen on UDP 5351 (it runs its STUN check first). */
export const MINIUPNPD_START_TIMEOUT_MS = 10_000
