import type { SpawnedProcess } from './command.js'

/**
 * How a site's router treats traffic between its LAN and the internet.
 * - `public`: no NAT, no firewall; inet routes the site's LAN.
 * - `easy`: endpoint-independent mapping (MASQUERADE), port-restricted filtering (new inbound dropped).
 * - `hard`: symmetric NAT (MASQUERADE --random-fully, a new port per destination), new inbound dropped.
 * - `clash`: like `easy` without the inbound drop: unsolicited packets create conntrack entries.
 * - `udpblock`: like `easy`, and UDP from the LAN is dropped unless it goes to the hub.
 */
export type RouterKind = 'public' | 'easy' | 'hard' | 'clash' | 'udpblock'

export const ROUTER_KINDS: readonly RouterKind[] = ['public', 'easy', 'hard', 'clash', 'udpblock']

export interface ClientSpec {
  name: string
  /** UDP port of the client's WireGuard interface. @default 51820 */
  listenPort?: number
}

export interface SiteSpec {
  name: string
  kind: RouterKind
  clients: Array<string | ClientSpec>
  /**
   * The router grants port mappings: miniupnpd (UPnP IGD, NAT-PMP, PCP) on its LAN side, nftables rules instead of
   * iptables, inbound NEW dropped unless miniupnpd mapped it. `easy` and `hard` only. @default false
   */
  portMapping?: boolean
  /**
   * Dual stack: the site's LAN gets the global IPv6 prefix 2001:db8:1:<k>::/64 (clients ::2, ::3...), the router
   * forwards IPv6 without NAT and, unless `public`, drops inbound NEW (a stateful firewall, nftables); `udpblock`
   * also drops the LAN's outbound UDP over IPv6 (the hub is IPv4-only). inet routes every IPv6 site's prefix; the hub
   * stays IPv4-only. @default false
   */
  ipv6?: boolean
}

export interface LabSpec {
  /** Per-run id in names (namespaces, interfaces, state file): 1-8 of [a-z0-9]. @default 5 random hex chars */
  id?: string
  sites: SiteSpec[]
  /** Turn on ip_forward in the hub namespace. @default false */
  hubForwarding?: boolean
  /** AllowedIPs of the hub peer on each client: the hub's /32 or the whole tunnel /24. @default 'subnet' */
  hubAllowedIps?: 'host' | 'subnet'
  /**
   * No WireGuard at all: namespaces, routers, addresses and routes only, for tests that build WireGuard themselves
   * (`wgnat-server init`, `wg-quick up`). Hosts' `wgIf` names are still planned (use them: the lab removes their
   * userspace sockets at teardown, and kills every process in its namespaces); `publicKey` is ''. @default false
   */
  bare?: boolean
  /**
   * Keep the lab after this process exits (the CLI's `up`): no exit hooks, wireguard-go detached,
   * and `down --stale` leaves it alone. Remove it with `down --id` / `down --all`. @default false
   */
  persistent?: boolean
}

export interface LabHost {
  name: string
  ns: string
  wgIf: string
  tunnelIp: string
  underlayIp: string
  publicKey: string
  listenPort: number
  /** The host's global IPv6 address (clients of `ipv6` sites only). */
  ipv6?: string
}

export interface LabRouter {
  ns: string
  wanIf: string
  lanIf: string
  wanIp: string
}

export interface ExecOptions {
  /** @default DEFAULT_EXEC_TIMEOUT_MS */
  timeoutMs?: number
  /** Throw a LabError when the command fails (non-zero exit, signal, timeout). @default true */
  reject?: boolean
  env?: Record<string, string>
  /** Text written to the command's stdin. */
  input?: string
}

export interface ExecResult {
  /** -1 when the command was killed by a signal, timed out or could not start. */
  exitCode: number
  stdout: string
  stderr: string
}

export interface PingOptions {
  count?: number
  intervalS?: number
  timeoutS?: number
}

export interface PingResult {
  sent: number
  received: number
  rttMs: number[]
  /** TTL of each reply, in the order received. */
  ttls: number[]
}

export interface Lab {
  id: string
  hub: LabHost
  /** Keyed by client name. */
  clients: Record<string, LabHost>
  /** Keyed by site name. */
  routers: Record<string, LabRouter>
  /** Run a command in a namespace. host: 'hub' | 'inet' | client name | site name (the router) | 'router:<site>'. */
  exec (host: string, argv: string[], opts?: ExecOptions): Promise<ExecResult>
  /**
   * Start a long-running process in a namespace; destroy() kills it. Runs with reject: false, so the
   * promise resolves (never rejects) once the process ends, with its buffered stdout, stderr and all.
   */
  spawn (host: string, argv: string[], opts?: { env?: Record<string, string> }): SpawnedProcess
  ping (from: string, toIp: string, opts?: PingOptions): Promise<PingResult>
  /**
   * Shape egress traffic of `ifname` in `host`'s namespace with a netem spec ('delay 50ms 5ms loss 1%',
   * 'clear' to remove). Without sch_netem in the kernel, 'loss' and 'rate' are emulated with iptables
   * and tbf, and 'delay' throws NetemUnsupportedError.
   */
  netem (host: string, ifname: string, spec: string): Promise<void>
  /** Kill processes, delete namespaces, remove sockets and files. Idempotent, best-effort. */
  destroy (): Promise<void>
}
