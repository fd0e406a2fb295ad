import { NAT_PMP_PORT, NatPmpResult, decodeNatPmpResponse, encodeNatPmpExternalAddressRequest, encodeNatPmpMapRequest, natPmpResultName, type NatPmpResponse } from './nat-pmp-codec.js'
import { PortMapError, type MapRequest, type PortMapping } from './port-mapping.js'
import { udpExchange } from './udp-exchange.js'

/** First retransmission (RFC 6886 §3.1: 250 ms, doubling). */
export const NAT_PMP_FIRST_RETRY_MS = 250

async function ask (req: MapRequest, request: Buffer, match: (r: NatPmpResponse) => boolean): Promise<NatPmpResponse | null> {
  const { answer, refused } = await udpExchange({
    host: req.gateway,
    port: NAT_PMP_PORT,
    request,
    accept: (msg) => { const r = decodeNatPmpResponse(msg); return match(r) ? r : undefined },
    firstRetryMs: NAT_PMP_FIRST_RETRY_MS,
    timeoutMs: req.timeoutMs,
    signal: req.signal
  })
  if (answer === null && refused) throw new PortMapError(`NAT-PMP: nothing listens on ${req.gateway}:${NAT_PMP_PORT}`)
  return answer
}

/** Ask the gateway for a UDP mapping by NAT-PMP (RFC 6886 §3.3), and for its external address (§3.2). */
export async function natPmpMap (req: MapRequest, suggestedPort = req.internalPort): Promise<PortMapping> {
  const where = `${req.gateway}:${NAT_PMP_PORT}`
  const external = await ask(req, encodeNatPmpExternalAddressRequest(), (r) => r.kind === 'external' || (r.kind === 'error' && r.opcode === 0))
  if (external === null) throw new PortMapError(`NAT-PMP: no answer from ${where} within ${req.timeoutMs} ms`)
  if (external.kind !== 'external' || external.resultCode !== NatPmpResult.SUCCESS) throw new PortMapError(`NAT-PMP: ${where} gave no external address: ${natPmpResultName(external.resultCode)}`)
  if (external.externalAddress === '0.0.0.0') throw new PortMapError(`NAT-PMP: ${where} has no external address yet`)
  const mapped = await ask(req, encodeNatPmpMapRequest({ protocol: 'udp', internalPort: req.internalPort, suggestedExternalPort: suggestedPort, lifetimeS: req.lifetimeS }),
    (r) => (r.kind === 'map' && r.protocol === 'udp' && r.internalPort === req.internalPort) || (r.kind === 'error' && r.opcode === 1))
  if (mapped === null) throw new PortMapError(`NAT-PMP: no answer to the mapping request from ${where}`)
  if (mapped.kind !== 'map' || mapped.resultCode !== NatPmpResult.SUCCESS) throw new PortMapError(`NAT-PMP: ${where} refused the mapping: ${natPmpResultName(mapped.resultCode)}`)
  if (mapped.externalPort === 0 || mapped.lifetimeS === 0) throw new PortMapError(`NAT-PMP: ${where} granted an unusable mapping (port ${mapped.externalPort}, ${mapped.lifetimeS} s)`)
  return {
    protocol: 'nat-pmp',
    external: { address: external.externalAddress, port: mapped.externalPort },
    internalPort: req.internalPort,
    lifetimeS: mapped.lifetimeS,
    renew: async (timeoutMs, signal) => await natPmpMap({ ...req, timeoutMs, signal }, mapped.externalPort),
    remove: async (timeoutMs, signal) => {
      // Deletion: lifetime 0 and external port 0 for our internal port (RFC 6886 §3.4).
      const r = await ask({ ...req, timeoutMs, signal }, encodeNatPmpMapRequest({ protocol: 'udp', internalPort: req.internalPort, suggestedExternalPort: 0, lifetimeS: 0 }),
        (x) => x.kind === 'map' && x.internalPort === req.internalPort)
      if (r === null) throw new PortMapError(`NAT-PMP: no answer to the deletion from ${where}`)
    }
  }
}
