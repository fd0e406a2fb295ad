import { nodeCrypto } from '../../shared/lazy-crypto.js'
import { quote } from '../../shared/errors.js'
import { PCP_NONCE_LENGTH, PCP_PORT, PcpResult, decodePcpResponse, encodePcpMapRequest, pcpResultName, type PcpResponse } from './pcp-codec.js'
import { PortMapError, type MapRequest, type PortMapping } from './port-mapping.js'
import { localAddressTowards, udpExchange } from './udp-exchange.js'

/** First retransmission of a PCP request. RFC 6887 §8.1.1 says 3 s; a LAN gateway answers in a millisecond. */
export const PCP_FIRST_RETRY_MS = 250

/** The gateway speaks only NAT-PMP (it answered a PCP request in NAT-PMP's format, or with UNSUPP_VERSION). */
export class PcpUnsupported extends PortMapError {}

/** Ask the gateway for a UDP mapping by PCP MAP (RFC 6887 §11). */
export async function pcpMap (req: MapRequest): Promise<PortMapping> {
  return await mapWith(req, nodeCrypto().randomBytes(PCP_NONCE_LENGTH), req.internalPort, undefined)
}

async function exchange (req: MapRequest, nonce: Buffer, lifetimeS: number, suggestedPort: number, suggestedAddress: string | undefined, clientAddress: string | undefined): Promise<{ answer: PcpResponse | null, localAddress: string, refused: boolean }> {
  // The client-address field must be our source address towards the gateway (else ADDRESS_MISMATCH).
  const build = (addr: string): Buffer => encodePcpMapRequest({ nonce, protocol: 'udp', internalPort: req.internalPort, suggestedExternalPort: suggestedPort, suggestedExternalAddress: suggestedAddress, lifetimeS, clientAddress: addr })
  const addr = clientAddress ?? await localAddressTowards(req.gateway, PCP_PORT)
  return await udpExchange({
    host: req.gateway,
    port: PCP_PORT,
    request: build(addr),
    accept: (msg) => {
      const r = decodePcpResponse(msg)
      if (r.kind === 'map' && (!r.nonce.equals(nonce) || r.internalPort !== req.internalPort)) return undefined
      return r
    },
    firstRetryMs: PCP_FIRST_RETRY_MS,
    timeoutMs: req.timeoutMs,
    signal: req.signal
  })
}

async function mapWith (req: MapRequest, nonce: Buffer, suggestedPort: number, suggestedAddress: string | undefined): Promise<PortMapping> {
  const clientAddress = await localAddressTowards(req.gateway, PCP_PORT)
  const { answer, refused } = await exchange(req, nonce, req.lifetimeS, suggestedPort, suggestedAddress, clientAddress)
  if (answer === null) throw new PortMapError(refused ? `PCP: nothing listens on ${req.gateway}:${PCP_PORT}` : `PCP: no answer from ${req.gateway}:${PCP_PORT} within ${req.timeoutMs} ms`)
  if (answer.kind === 'nat-pmp' || answer.resultCode === PcpResult.UNSUPP_VERSION) throw new PcpUnsupported(`PCP: ${req.gateway} speaks NAT-PMP only`)
  if (answer.kind !== 'map') throw new PortMapError(`PCP: ${req.gateway} answered opcode ${answer.opcode} with ${pcpResultName(answer.resultCode)}`)
  if (answer.resultCode !== PcpResult.SUCCESS) throw new PortMapError(`PCP: ${req.gateway} refused the mapping: ${pcpResultName(answer.resultCode)}`)
  if (answer.externalPort === 0 || answer.lifetimeS === 0 || answer.externalAddress === '0.0.0.0' || answer.externalAddress.includes(':')) {
    throw new PortMapError(`PCP: ${req.gateway} granted an unusable mapping ${quote(`${answer.externalAddress}:${answer.externalPort}`)} for ${answer.lifetimeS} s`)
  }
  const mapping: PortMapping = {
    protocol: 'pcp',
    external: { address: answer.externalAddress, port: answer.externalPort },
    internalPort: req.internalPort,
    lifetimeS: answer.lifetimeS,
    // Renewal repeats the request with the same nonce, suggesting what we got (RFC 6887 §11.2.1).
    renew: async (timeoutMs, signal) => await mapWith({ ...req, timeoutMs, signal }, nonce, answer.externalPort, answer.externalAddress),
    remove: async (timeoutMs, signal) => {
      const r = await exchange({ ...req, timeoutMs, signal }, nonce, 0, 0, undefined, clientAddress)
      if (r.answer === null) throw new PortMapError(`PCP: no answer to the deletion from ${req.gateway}`)
    }
  }
  return mapping
}
