import { WgnatError } from '../../shared/errors.js'
import type { Endpoint } from '../../shared/ip.js'

/** How a mapping was obtained. */
export type MappingProtocol = 'pcp' | 'nat-pmp' | 'upnp'

export interface MapRequest {
  /** The default gateway's address. */
  gateway: string
  /** The local UDP port to map (WireGuard's listen port). */
  internalPort: number
  /** Lifetime to ask for, seconds. */
  lifetimeS: number
  /** Give up after this long without an answer. */
  timeoutMs: number
  signal?: AbortSignal
}

/** A mapping the gateway granted: traffic to `external` reaches our `internalPort`. */
export interface PortMapping {
  protocol: MappingProtocol
  external: Endpoint
  internalPort: number
  /** Seconds granted; 0: until deleted (UPnP permanent lease). */
  lifetimeS: number
  /** Ask for the same mapping again (before it expires); resolves with what the gateway granted. */
  renew: (timeoutMs: number, signal?: AbortSignal) => Promise<PortMapping>
  /** Delete it on the gateway (best effort). */
  remove: (timeoutMs: number, signal?: AbortSignal) => Promise<void>
}

/** The gateway did not grant a mapping: no answer, a refusal, or an answer that made no sense. */
export class PortMapError extends WgnatError {}

/** One way of asking a gateway for a mapping. */
export type MapFunction = (req: MapRequest) => Promise<PortMapping>
