import * as z from 'zod/mini'
import en from 'zod/v4/locales/en.js'
import { isWgKey } from './wg-dump.js'
import { parseEndpoint, parsePrefix } from './ip.js'

// zod/mini: the same checks as zod's classic API, without the dozens of methods classic attaches to every schema it
// builds, which cost each client start about 10 ms of CPU for these schemas (issue 16). zod/mini has no default
// locale: English is set here, so an issue reads as with classic ("Too big: expected string to have <=64 characters").
// zod's JIT (`new Function` fast paths for objects) is no faster here, where refinements (keys, endpoints, prefixes)
// do the work, and its compile is paid at each start, outside the code cache: a 7-peer table parses in 5.7 ms
// instead of 7.8 the first time and 0.6 instead of 1.1 after; 10,000 peers in 463 ms instead of 562 the first time,
// 101 instead of 114 after (issue 16). No eval is also one thing less to trust.
z.config({ ...en(), jitless: true })

/**
 * Registry API v1 wire types (see docs/protocol.md). The schemas are the validation edge for the client:
 * everything a registry sends passes through them before it is used.
 */

/** Upper bounds that keep a hostile registry from making the client do unbounded work. */
export const PROTOCOL_LIMITS = {
  /** Peers in one response. */
  maxPeers: 65_536,
  /** Allowed IPs of one peer. */
  maxAllowedIps: 64,
  /** LAN candidates of one peer. */
  maxCandidates: 16,
  /** Peers one client announces it punched towards. */
  maxReady: 256,
  /** Global IPv6 endpoints of one peer. */
  maxIpv6Candidates: 8
} as const

const canParse = (fn: (text: string) => unknown) => (text: string): boolean => {
  try { fn(text); return true } catch { return false }
}

export const wgKeySchema = z.string().check(z.refine(isWgKey, { message: 'not a WireGuard public key' }))
export const endpointSchema = z.string().check(z.maxLength(64), z.refine(canParse(parseEndpoint), { message: 'not an endpoint (ip:port or [ipv6]:port)' }))
export const prefixSchema = z.string().check(z.maxLength(64), z.refine(canParse(parsePrefix), { message: 'not an IP prefix' }))

export const NAT_CLASSES = ['public', 'easy', 'hard', 'unknown'] as const

/** What a client tells the registry about itself (POST /v1/announce). */
export const announceSchema = z.object({
  natClass: z.enum(NAT_CLASSES),
  /** The endpoint a STUN server saw for the client's WireGuard port. */
  mappedEndpoint: z.nullable(endpointSchema),
  /** Endpoints on the client's own networks (same address behind one router). */
  lanEndpoints: z.array(endpointSchema).check(z.maxLength(PROTOCOL_LIMITS.maxCandidates)),
  /**
   * Peers this client has just punched towards (low-TTL datagrams from its WireGuard port) and is about to
   * handshake with: a peer that sees its own key here knows the far NAT is open for it.
   */
  ready: z._default(z.array(wgKeySchema).check(z.maxLength(PROTOCOL_LIMITS.maxReady)), []),
  /**
   * The endpoint the client's router maps to its WireGuard port on request (PCP, NAT-PMP or UPnP IGD), or null.
   * Reachable from anywhere, like a public endpoint, even behind a symmetric NAT. Optional: older clients omit it.
   */
  portMapping: z.optional(z.nullable(endpointSchema)),
  /**
   * The client's global IPv6 addresses with its WireGuard port (`[2001:db8::2]:51820`): reachable over IPv6 where
   * both sides have it, through stateful firewalls that simultaneous handshakes open. Optional: older clients omit
   * it, and older registries drop it (the pair then stays on IPv4). Receivers vet it (global unicast only).
   */
  ipv6Endpoints: z.optional(z.array(endpointSchema).check(z.maxLength(PROTOCOL_LIMITS.maxIpv6Candidates)))
})
export type Announce = z.infer<typeof announceSchema>

export const tablePeerSchema = z.object({
  publicKey: wgKeySchema,
  /** The endpoint the hub's WireGuard sees for this peer (its public address through its NAT). */
  endpoint: z.nullable(endpointSchema),
  allowedIps: z.array(prefixSchema).check(z.maxLength(PROTOCOL_LIMITS.maxAllowedIps)),
  /** Hub's clock, unix seconds; 0 = never. Compare with the response's `now`. */
  latestHandshake: z.int().check(z.nonnegative()),
  /** Handshake with the hub within the last 180 s. */
  online: z.boolean(),
  /** What the peer announced, if anything. */
  announce: z._default(z.nullable(announceSchema), null),
  /**
   * The peer's name on the hub (`wgnat-server add-peer`), absent for peers added by hand and from older registries.
   * Loosely bounded here so one bad name cannot reject a whole table; clients vet it against PEER_NAME_RE.
   */
  name: z.optional(z.string().check(z.maxLength(64))),
  /**
   * Only under an access policy (`wgnat-server --policy`): may this peer open connections to the caller? False: the
   * caller may open connections to it and gets the replies, but must drop new connections from it. Absent: yes.
   */
  mayInitiate: z.optional(z.boolean())
})
export type TablePeer = z.infer<typeof tablePeerSchema>

export const tableResponseSchema = z.object({
  /** Identifies one run of the registry: versions are only comparable within an epoch. */
  epoch: z._default(z.string().check(z.maxLength(64)), ''),
  version: z.int().check(z.nonnegative()),
  /** Unix seconds on the hub when the snapshot was read. */
  now: z.int().check(z.nonnegative()),
  /** The hub forwards between peers (`wgnat-server --relay`): a pair without a direct path still works through it. */
  relay: z._default(z.boolean(), false),
  /** An access policy is in force (`wgnat-server --policy`): `peers` holds only the peers the caller may reach. */
  policy: z._default(z.boolean(), false),
  /** True: `peers` is the whole table. False: only what changed since the requested version. */
  full: z.boolean(),
  self: tablePeerSchema,
  peers: z.array(tablePeerSchema).check(z.maxLength(PROTOCOL_LIMITS.maxPeers)),
  removed: z.array(wgKeySchema).check(z.maxLength(PROTOCOL_LIMITS.maxPeers))
})
export type TableResponse = z.infer<typeof tableResponseSchema>

/** The paths a client reports for its peers (POST /v1/report), as `wgnat-client status` shows them. */
export const REPORT_PATHS = ['direct', 'hub', 'trying', 'unreachable'] as const
export type ReportPath = typeof REPORT_PATHS[number]

/** Upper bounds of one path report. */
export const REPORT_LIMITS = {
  /** Peers in one report. */
  maxPeers: 4096,
  /** Largest request body the registry reads for a report (4096 peers at about 110 bytes each, and some room). */
  maxBytes: 512 * 1024
} as const

/** What a client tells the registry about its paths to the other peers (POST /v1/report). */
export const reportSchema = z.strictObject({
  peers: z.array(z.strictObject({
    publicKey: wgKeySchema,
    path: z.enum(REPORT_PATHS),
    /** The endpoint the client uses for the peer (direct or trying), or null. */
    endpoint: z.nullable(endpointSchema)
  })).check(z.maxLength(REPORT_LIMITS.maxPeers))
})
export type PathReport = z.infer<typeof reportSchema>

/** Paths of API v1. */
export const API = {
  table: '/v1/table',
  announce: '/v1/announce',
  report: '/v1/report',
  /** wg-nat compatibility. */
  wgnatKeepalive: '/keepalive'
} as const

/**
 * Longest long-poll the registry holds a request open, in seconds. 60 until issue 16, then 300, 900 since its
 * registry round 6 (a renewal costs the registry a request and its garbage; a held poll costs it nothing); clients ask
 * up to this and registries cap what they are asked at their own value, so either side may be older (docs/protocol.md).
 */
export const MAX_WAIT_S = 900
