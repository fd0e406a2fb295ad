/**
 * Ask STUN servers which public endpoint they see for WireGuard's listenPort, without taking the port from
 * WireGuard: requests leave through a raw socket with the port forged as source, replies are overheard on a raw
 * receive socket (WireGuard gets its own copy and drops it as an invalid message).
 *
 * IPv4 only (see raw-udp). The samples feed {@link classifyNat}.
 */
import { isIPv4 } from 'node:net'
import { messageOf } from '../../shared/errors.js'
import { formatEndpoint, type Endpoint } from '../../shared/ip.js'
import type { Logger } from '../../shared/log.js'
import {
  openUdpReceiver,
  openUdpSender,
  type RawUdpReceiver,
  type RawUdpReceiverInit,
  type RawUdpReceiverStats,
  type RawUdpSender,
  type RawUdpSenderInit
} from '../../shared/raw-udp.js'
import { StunClass, StunMethod, decodeStunMessage, encodeBindingRequest, isStunMessage, newTransactionId, type StunMessage } from '../../shared/stun.js'
import type { Ipv4UdpPacket } from '../../shared/udp-packet.js'
import type { MappingSample } from './nat-classifier.js'

/** How long one probe waits for all servers, retransmissions included. Short: a probe runs every few minutes anyway. */
export const STUN_PROBE_TIMEOUT_MS = 1_500
/**
 * Retransmissions after the first request. RFC 8489 doubles the interval from an RTO of 500 ms up to 7 sends;
 * we keep the doubling but fit `1 + retries` sends into the timeout (RTO = timeout / (2^(retries+1) - 1)).
 */
export const STUN_PROBE_RETRIES = 2
/**
 * Packet buffer of the probe's raw receive socket: a Binding response is a few dozen bytes (RFC 8489 keeps
 * messages under 576 bytes over IPv4 unless the path MTU is known), so 4 KB, not the 64 KB a raw receiver takes
 * by default, allocated afresh for every probe (every NAT check, 2 s apart).
 */
export const STUN_RECEIVE_PACKET_BYTES = 4096

export interface StunProbeInit {
  /** The port requests leave from and replies come back to: WireGuard's listenPort. */
  localPort: number
  /** STUN servers (IPv4 addresses; IPv6 ones are reported as failures). */
  servers: Endpoint[]
  /** @default STUN_PROBE_TIMEOUT_MS */
  timeoutMs?: number
  /** @default STUN_PROBE_RETRIES */
  retries?: number
  /** SOFTWARE attribute of the requests. Omitted when undefined. */
  software?: string
  /** Abort: stop waiting and return what arrived so far. */
  signal?: AbortSignal
}

export interface StunProbeFailure {
  /** 'host:port' of the server. */
  server: string
  reason: string
}

export interface StunProbeResult {
  /** One sample per server that answered, in the order of `servers`. */
  samples: MappingSample[]
  /** One entry per server that did not answer usefully. */
  failures: StunProbeFailure[]
  /** What the raw receive socket saw while the probe ran. */
  receiverStats: RawUdpReceiverStats
  /** Round trip of each answered request, ms, from its last send (a retransmission restarts the clock). */
  roundTripsMs?: number[]
}

/** Abort reason that tells a caller's abort from our own clean-up. */
const ABORTED_BY_CALLER = 'aborted by caller'

/** Injected I/O, so tests can stand in for raw sockets. */
export interface StunProbeComponents {
  openSender: (init?: RawUdpSenderInit) => RawUdpSender
  openReceiver: (init: RawUdpReceiverInit) => RawUdpReceiver
  logger?: Logger
}

const defaultComponents: StunProbeComponents = { openSender: openUdpSender, openReceiver: openUdpReceiver }

interface Pending {
  server: Endpoint
  key: string
  request: Buffer
  done: boolean
  sent: number
  /** When the last copy of the request went out (Date.now()). */
  sentAtMs?: number
  lastSendError?: string
}

/**
 * Send a Binding request (with FINGERPRINT) from `localPort` to every server, retransmitting unanswered ones,
 * and collect the mapped addresses of the responses that carry our transaction ID and come from that server.
 *
 * Never rejects for network trouble: failures are listed per server. Rejects only with RawSocketUnavailable
 * (no CAP_NET_RAW), before anything is sent, so the caller can turn raw features off.
 */
export async function stunProbe (init: StunProbeInit, components: Partial<StunProbeComponents> = {}): Promise<StunProbeResult> {
  const { openSender, openReceiver, logger } = { ...defaultComponents, ...components }
  const { localPort, signal } = init
  const timeoutMs = init.timeoutMs ?? STUN_PROBE_TIMEOUT_MS
  const retries = Math.max(0, init.retries ?? STUN_PROBE_RETRIES)
  const samples = new Map<string, MappingSample>()
  const failures = new Map<string, StunProbeFailure>()
  const pending = new Map<string, Pending>() // transaction ID (hex) -> request
  const roundTripsMs: number[] = []

  for (const server of init.servers) {
    const key = formatEndpoint(server)
    if (samples.has(key) || failures.has(key) || [...pending.values()].some(p => p.key === key)) continue
    if (!isIPv4(server.address)) {
      failures.set(key, { server: key, reason: 'raw STUN probes support IPv4 servers only' })
      continue
    }
    const transactionId = newTransactionId()
    const request = encodeBindingRequest(transactionId, init.software === undefined ? {} : { software: init.software })
    pending.set(transactionId.toString('hex'), { server, key, request, done: false, sent: 0 })
  }
  const emptyStats: RawUdpReceiverStats = { seen: 0, otherPort: 0, malformed: 0, delivered: 0, handlerErrors: 0, socketErrors: 0 }
  if (pending.size === 0 || signal?.aborted === true) {
    for (const p of pending.values()) failures.set(p.key, { server: p.key, reason: 'aborted before sending' })
    return finish(init.servers, samples, failures, emptyStats)
  }

  let wake: () => void = () => {}
  const remaining = (): number => [...pending.values()].filter(p => !p.done).length
  const onResponse = (packet: Ipv4UdpPacket): void => {
    if (!isStunMessage(packet.payload)) return
    let message: StunMessage
    try {
      message = decodeStunMessage(packet.payload)
    } catch {
      return
    }
    if (message.method !== StunMethod.BINDING || (message.class !== StunClass.SUCCESS && message.class !== StunClass.ERROR)) return
    const p = pending.get(message.transactionId.toString('hex'))
    if (p === undefined || p.done || packet.srcIp !== p.server.address || packet.srcPort !== p.server.port) return
    p.done = true
    if (p.sentAtMs !== undefined) roundTripsMs.push(Date.now() - p.sentAtMs)
    const mapped = message.xorMappedAddress ?? message.mappedAddress
    if (message.class === StunClass.ERROR) {
      const code = message.errorCode
      failures.set(p.key, { server: p.key, reason: `error response${code === undefined ? '' : ` ${code.code} ${code.reason}`}` })
    } else if (mapped === undefined) {
      failures.set(p.key, { server: p.key, reason: 'success response without a mapped address' })
    } else {
      samples.set(p.key, { server: p.key, mapped: { address: mapped.address, port: mapped.port } })
    }
    if (remaining() === 0) wake()
  }

  const inner = new AbortController()
  const onAbort = (): void => { inner.abort(ABORTED_BY_CALLER); wake() }
  signal?.addEventListener('abort', onAbort)
  // Open the receiver first: a reply can come back before the send callback runs.
  let receiver: RawUdpReceiver | undefined
  let sender: RawUdpSender | undefined
  try {
    receiver = openReceiver({ dstPort: localPort, onPacket: onResponse, signal: inner.signal, packetBytes: STUN_RECEIVE_PACKET_BYTES })
    sender = openSender()
    const rtoMs = timeoutMs / (2 ** (retries + 1) - 1)
    const deadline = Date.now() + timeoutMs
    for (let attempt = 0; attempt <= retries && remaining() > 0 && !inner.signal.aborted; attempt++) {
      await Promise.all([...pending.values()].filter(p => !p.done).map(async (p) => {
        try {
          const at = Date.now()
          await sender!.send({ srcPort: localPort, dst: p.server, payload: p.request }, { signal: inner.signal })
          p.sent++
          p.sentAtMs = at
        } catch (err) {
          p.lastSendError = messageOf(err)
        }
      }))
      const waitMs = attempt === retries ? deadline - Date.now() : rtoMs * 2 ** attempt
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => { wake = () => {}; resolve() }, Math.max(0, waitMs))
        wake = () => { clearTimeout(timer); wake = () => {}; resolve() }
        if (remaining() === 0 || inner.signal.aborted) wake()
      })
    }
  } finally {
    signal?.removeEventListener('abort', onAbort)
    inner.abort()
    receiver?.close()
    sender?.close()
  }

  for (const p of pending.values()) {
    if (p.done) continue
    const reason = p.sent === 0
      ? `not sent: ${p.lastSendError ?? 'aborted'}`
      : inner.signal.reason === ABORTED_BY_CALLER
        ? `aborted after ${p.sent} request${p.sent === 1 ? '' : 's'}`
        : `no response within ${timeoutMs} ms (${p.sent} request${p.sent === 1 ? '' : 's'})`
    failures.set(p.key, { server: p.key, reason })
  }
  const receiverStats = { ...(receiver?.stats ?? emptyStats) }
  logger?.debug({ localPort, samples: samples.size, failures: failures.size, receiverStats }, 'stun probe finished')
  return { ...finish(init.servers, samples, failures, receiverStats), roundTripsMs }
}

/** Results in the order of the servers given. */
function finish (servers: Endpoint[], samples: Map<string, MappingSample>, failures: Map<string, StunProbeFailure>, receiverStats: RawUdpReceiverStats): StunProbeResult {
  const keys = [...new Set(servers.map(formatEndpoint))]
  return {
    samples: keys.flatMap(k => samples.get(k) ?? []),
    failures: keys.flatMap(k => failures.get(k) ?? []),
    receiverStats
  }
}
