// zod/mini: the same validation as classic zod in a twentieth of the code (the client loads it at every start).
import * as z from 'zod/mini'
import { isWgKey } from './wg-dump.js'
import { parseEndpoint, parsePrefix } from './ip.js'

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
  maxReady: 256
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
  ready: z._default(z.array(wgKeySchema).check(z.maxLength(PROTOCOL_LIMITS.maxReady)), [])
})
export type Announce = z.infer<typeof announceSchema>

export const tablePeerSchema = z.object({
  publicKey: wgKeySchema,
  /** The endpoint the hub's WireGuard sees for this peer (its public address through its NAT). */
  endpoint: z.nullable(endpointSchema),
  allowedIps: z.array(prefixSchema).check(z.maxLength(PROTOCOL_LIMITS.maxAllowedIps)),
  /** Hub's clock, unix seconds; 0 = never. Compare with the response's `now`. */
  latestHandshake: z.number().check(z.int(), z.nonnegative()),
  /** Handshake with the hub within the last 180 s. */
  online: z.boolean(),
  /** What the peer announced, if anything. */
  announce: z._default(z.nullable(announceSchema), null)
})
export type TablePeer = z.infer<typeof tablePeerSchema>

export const tableResponseSchema = z.object({
  /** Identifies one run of the registry: versions are only comparable within an epoch. */
  epoch: z._default(z.string().check(z.maxLength(64)), ''),
  version: z.number().check(z.int(), z.nonnegative()),
  /** Unix seconds on the hub when the snapshot was read. */
  now: z.number().check(z.int(), z.nonnegative()),
  /** The hub forwards between peers (`wgnat-server --relay`): a pair without a direct path still works through it. */
  relay: z._default(z.boolean(), false),
  /** True: `peers` is the whole table. False: only what changed since the requested version. */
  full: z.boolean(),
  self: tablePeerSchema,
  peers: z.array(tablePeerSchema).check(z.maxLength(PROTOCOL_LIMITS.maxPeers)),
  removed: z.array(wgKeySchema).check(z.maxLength(PROTOCOL_LIMITS.maxPeers))
})
export type TableResponse = z.infer<typeof tableResponseSchema>

/** Paths of API v1. */
export const API = {
  table: '/v1/table',
  announce: '/v1/announce',
  /** wg-nat compatibility. */
  wgnatKeepalive: '/keepalive'
} as const

/** Longest long-poll the registry holds a request open, in seconds. */
export const MAX_WAIT_S = 60
