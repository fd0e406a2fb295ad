import { createSocket } from 'node:dgram'
import { messageOf, quote } from '../../shared/errors.js'
import type { IgdService } from './igd-xml.js'
import { IGD_MAX_BODY, SSDP_ADDRESS, SSDP_PORT, parseSsdpResponse, ssdpSearchRequest } from './ssdp.js'
import { PortMapError, type MapRequest, type PortMapping } from './port-mapping.js'
import { localAddressTowards } from './udp-exchange.js'

/** Resend the M-SEARCH after this (UDP may drop the first). */
const SSDP_RETRY_MS = 300
/** UPnP errors (UPnP IGD WANIPConnection:1 §2.4.16). */
const CONFLICT_IN_MAPPING_ENTRY = 718
const ONLY_PERMANENT_LEASES_SUPPORTED = 725
/** Ports to try when the router has our port mapped for someone else. */
const CONFLICT_RETRIES = 3
/** What the mappings are called in the router's list. */
export const UPNP_DESCRIPTION = 'wgnat'

/**
 * A UPnP IGD client: SSDP M-SEARCH on the LAN, the device description over HTTP, then SOAP
 * GetExternalIPAddress / AddPortMapping / DeletePortMapping. Only a device on the default gateway's own address
 * is used: an SSDP answer pointing anywhere else is ignored (any host on the LAN can answer an M-SEARCH).
 */
export async function upnpMap (req: MapRequest): Promise<PortMapping> {
  const deadline = Date.now() + req.timeoutMs
  const left = (): number => Math.max(1, deadline - Date.now())
  const location = await ssdpSearch(req.gateway, req.timeoutMs, req.signal)
  // The XML parser is loaded only once a gateway has answered the M-SEARCH.
  const { parseIgdDescription } = await import('./igd-xml.js')
  const service = parseIgdDescription(await httpText(location, undefined, left(), req.signal), location)
  if (new URL(service.controlUrl).hostname !== req.gateway) throw new PortMapError(`UPnP: control URL ${quote(service.controlUrl)} is not on the gateway ${req.gateway}`)
  const ext = await soap(service, 'GetExternalIPAddress', [], left(), req.signal)
  const externalAddress = ext.NewExternalIPAddress ?? ''
  if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(externalAddress) || externalAddress === '0.0.0.0') throw new PortMapError(`UPnP: the gateway has no usable external address (${quote(externalAddress)})`)
  const internalClient = await localAddressTowards(req.gateway, SSDP_PORT)
  return await addMapping(req, service, externalAddress, internalClient, req.internalPort, req.lifetimeS, CONFLICT_RETRIES, deadline)
}

async function addMapping (req: MapRequest, service: IgdService, externalAddress: string, internalClient: string, externalPort: number, leaseS: number, retries: number, deadline: number): Promise<PortMapping> {
  const left = Math.max(1, deadline - Date.now())
  if (req.signal?.aborted === true) throw new PortMapError('UPnP: cancelled')
  try {
    await soap(service, 'AddPortMapping', [
      ['NewRemoteHost', ''], ['NewExternalPort', externalPort], ['NewProtocol', 'UDP'], ['NewInternalPort', req.internalPort],
      ['NewInternalClient', internalClient], ['NewEnabled', 1], ['NewPortMappingDescription', UPNP_DESCRIPTION], ['NewLeaseDuration', leaseS]
    ], left, req.signal)
  } catch (err) {
    if (err instanceof UpnpFaultError && err.code === ONLY_PERMANENT_LEASES_SUPPORTED && leaseS !== 0) {
      return await addMapping(req, service, externalAddress, internalClient, externalPort, 0, retries, deadline)
    }
    if (err instanceof UpnpFaultError && err.code === CONFLICT_IN_MAPPING_ENTRY && retries > 0) {
      return await addMapping(req, service, externalAddress, internalClient, 49152 + Math.floor(Math.random() * 16383), leaseS, retries - 1, deadline)
    }
    throw err
  }
  return {
    protocol: 'upnp',
    external: { address: externalAddress, port: externalPort },
    internalPort: req.internalPort,
    lifetimeS: leaseS,
    renew: async (timeoutMs, signal) => await addMapping({ ...req, signal }, service, externalAddress, internalClient, externalPort, leaseS, 0, Date.now() + timeoutMs),
    remove: async (timeoutMs, signal) => {
      await soap(service, 'DeletePortMapping', [['NewRemoteHost', ''], ['NewExternalPort', externalPort], ['NewProtocol', 'UDP']], timeoutMs, signal)
    }
  }
}

class UpnpFaultError extends PortMapError {
  constructor (message: string, readonly code: number) { super(message) }
}

async function soap (service: IgdService, action: string, args: Array<[string, string | number]>, timeoutMs: number, signal?: AbortSignal): Promise<Record<string, string>> {
  const { parseSoapResponse, soapRequest } = await import('./igd-xml.js')
  const body = soapRequest(service.serviceType, action, args)
  const text = await httpText(service.controlUrl, {
    method: 'POST',
    headers: { 'content-type': 'text/xml; charset="utf-8"', soapaction: `"${service.serviceType}#${action}"` },
    body
  }, timeoutMs, signal, true)
  const r = parseSoapResponse(text, action)
  if (!r.ok) throw new UpnpFaultError(`UPnP ${action}: error ${r.fault.errorCode} ${quote(r.fault.errorDescription)}`, r.fault.errorCode)
  return r.values
}

/** GET or POST, at most IGD_MAX_BODY bytes of answer; with `faultsOk`, a 500 (a SOAP fault) is read too. */
async function httpText (url: string, init: RequestInit | undefined, timeoutMs: number, signal?: AbortSignal, faultsOk = false): Promise<string> {
  const signals = [AbortSignal.timeout(timeoutMs), ...(signal === undefined ? [] : [signal])]
  try {
    const res = await fetch(url, { ...init, redirect: 'error', signal: AbortSignal.any(signals) })
    if (!res.ok && !(faultsOk && res.status === 500)) throw new PortMapError(`UPnP: ${quote(url)} answered HTTP ${res.status}`)
    const reader = res.body?.getReader()
    const chunks: Uint8Array[] = []
    let size = 0
    for (;;) {
      const chunk = await reader?.read()
      if (chunk === undefined || chunk.done) break
      size += chunk.value.length
      if (size > IGD_MAX_BODY) { await reader?.cancel(); throw new PortMapError(`UPnP: ${quote(url)} sent more than ${IGD_MAX_BODY} bytes`) }
      chunks.push(chunk.value)
    }
    return Buffer.concat(chunks).toString('utf8')
  } catch (err) {
    if (err instanceof PortMapError) throw err
    throw new PortMapError(`UPnP: ${quote(url)}: ${messageOf(err)}`)
  }
}

/** M-SEARCH for an InternetGatewayDevice; the LOCATION of the first answer from the gateway itself. */
async function ssdpSearch (gateway: string, timeoutMs: number, signal?: AbortSignal): Promise<string> {
  const socket = createSocket('udp4')
  const request = Buffer.from(ssdpSearchRequest(1))
  try {
    await new Promise<void>((resolve, reject) => { socket.once('error', reject); socket.bind(0, () => { socket.off('error', reject); resolve() }) })
    socket.on('error', () => {})
    const found = await new Promise<string | null>((resolve) => {
      const finish = (v: string | null): void => { clearTimeout(timer); clearTimeout(retry); signal?.removeEventListener('abort', onAbort); resolve(v) }
      const onAbort = (): void => finish(null)
      const timer = setTimeout(() => finish(null), timeoutMs)
      const send = (): void => socket.send(request, SSDP_PORT, SSDP_ADDRESS, () => {})
      const retry = setTimeout(send, SSDP_RETRY_MS)
      socket.on('message', (msg, rinfo) => {
        if (rinfo.address !== gateway) return
        try {
          const { location } = parseSsdpResponse(msg.toString('utf8'))
          if (new URL(location).hostname === gateway) finish(location)
        } catch { /* not an IGD answer */ }
      })
      if (signal?.aborted === true) { finish(null); return }
      signal?.addEventListener('abort', onAbort)
      send()
    })
    if (found === null) throw new PortMapError(`UPnP: no InternetGatewayDevice answered on ${gateway} within ${timeoutMs} ms`)
    return found
  } catch (err) {
    if (err instanceof PortMapError) throw err
    throw new PortMapError(`UPnP: SSDP search failed: ${messageOf(err)}`)
  } finally {
    socket.close()
  }
}
