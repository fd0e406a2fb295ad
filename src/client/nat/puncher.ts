/**
 * Hole punching: send a few small datagrams from WireGuard's listenPort to a peer's candidate endpoints, so our
 * NAT opens (or refreshes) the mapping the peer's packets will come back through. Sent through a raw socket with
 * the port forged as source (see raw-udp), so WireGuard keeps its port. IPv4 only.
 *
 * The payload is {@link PUNCH_PAYLOAD}: WireGuard reads the first 4 bytes as a little-endian message type and
 * accepts only 1-4 (handshake initiation, response, cookie reply, transport data); anything else is dropped
 * silently by both wireguard-go and the kernel module, so a punch that reaches the peer's WireGuard is harmless.
 */
import { messageOf } from '../../shared/errors.js'
import { formatEndpoint, type Endpoint } from '../../shared/ip.js'
import type { Logger } from '../../shared/log.js'
import { RawSocketUnavailable, openUdpSender, type RawUdpSender, type RawUdpSenderInit } from '../../shared/raw-udp.js'
import { sleep } from '../../shared/sleep.js'

/**
 * Punch payload: `0x00 'w' 'g' 'n'`. Message type 0x6e677700 (little-endian) is not a WireGuard message,
 * and the ASCII marks the datagram as ours in a packet capture.
 */
export const PUNCH_PAYLOAD: Buffer = Buffer.from([0x00, 0x77, 0x67, 0x6e])
/** Datagrams per target in one punch. A few, since the first ones may cross the peer's punches in flight. */
export const PUNCH_COUNT = 3
/** Pause between rounds of a punch. */
export const PUNCH_INTERVAL_MS = 200

export interface PunchInit {
  /** WireGuard's listenPort: the source port of the punches. */
  localPort: number
  /** The peer's candidate endpoints (IPv6 ones are skipped). */
  targets: Endpoint[]
  /** @default PUNCH_COUNT */
  count?: number
  /** @default PUNCH_INTERVAL_MS */
  intervalMs?: number
  /**
   * IPv4 TTL. Low enough to expire before the far router, it opens our own NAT without the far NAT seeing
   * (and perhaps blacklisting) an unsolicited packet. Default: the system default (64).
   */
  ttl?: number
  signal?: AbortSignal
}

export interface PunchResult {
  /** Datagrams handed to the kernel. */
  sent: number
  /** One line per failed send (or a single line when raw sockets are unavailable). */
  errors: string[]
}

export interface PuncherComponents {
  openSender: (init?: RawUdpSenderInit) => RawUdpSender
  logger?: Logger
}

const defaultComponents: PuncherComponents = { openSender: openUdpSender }

/**
 * Send `count` rounds of one datagram to each target, `intervalMs` apart. Never throws: failures (raw sockets
 * unavailable included) are returned. Abort stops between datagrams.
 */
export async function punch (init: PunchInit, components: Partial<PuncherComponents> = {}): Promise<PunchResult> {
  const { openSender, logger } = { ...defaultComponents, ...components }
  const { localPort, signal, ttl } = init
  // The raw socket speaks IPv4 only. An IPv6 target needs no punch: its stateful firewall opens to the handshakes
  // WireGuard sends from its own port, and there is no NAT mapping to keep.
  const targets = init.targets.filter((t) => !t.address.includes(':'))
  const count = init.count ?? PUNCH_COUNT
  const intervalMs = init.intervalMs ?? PUNCH_INTERVAL_MS
  const result: PunchResult = { sent: 0, errors: [] }
  const aborted = (): boolean => signal?.aborted === true
  if (targets.length === 0 || count < 1 || aborted()) return result

  let sender: RawUdpSender
  try {
    sender = openSender()
  } catch (err) {
    result.errors.push(messageOf(err))
    logger?.debug({ localPort, err: messageOf(err) }, 'punch: no raw socket')
    return result
  }
  try {
    for (let round = 0; round < count && !aborted(); round++) {
      if (round > 0) await sleep(intervalMs, signal)
      for (const target of targets) {
        if (aborted()) break
        try {
          await sender.send({ srcPort: localPort, dst: target, payload: PUNCH_PAYLOAD, ...(ttl === undefined ? {} : { ttl }) }, signal === undefined ? {} : { signal })
          result.sent++
        } catch (err) {
          if (aborted()) break
          result.errors.push(`punch ${formatEndpoint(target)}: ${messageOf(err)}`)
          if (err instanceof RawSocketUnavailable) return result
        }
      }
    }
  } finally {
    sender.close()
  }
  logger?.debug({ localPort, targets: targets.map(formatEndpoint), ttl, sent: result.sent, errors: result.errors.length }, 'punch sent')
  return result
}
