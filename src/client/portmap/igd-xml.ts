/**
 * UPnP IGD messages, pure: the SSDP answer, the device description (which service to talk to, and where), and the
 * SOAP envelopes of the actions wgnat uses. The one file that imports the XML parser. Everything here parses text
 * from the LAN, which is untrusted: failures are ParseErrors quoting the bad value.
 */
import { XMLBuilder, XMLParser } from 'fast-xml-parser'
import { ParseError, quote } from '../../shared/errors.js'

/** Search targets, best first: WANIPConnection:2 and :1 (routers), WANPPPConnection:1 (DSL modems). */
export const IGD_SERVICE_TYPES = [
  'urn:schemas-upnp-org:service:WANIPConnection:2',
  'urn:schemas-upnp-org:service:WANIPConnection:1',
  'urn:schemas-upnp-org:service:WANPPPConnection:1'
] as const
export { IGD_DEVICE_TYPE, IGD_MAX_BODY, SSDP_ADDRESS, SSDP_PORT, parseSsdpResponse, ssdpSearchRequest } from './ssdp.js'

export interface IgdService {
  serviceType: string
  /** Absolute URL of the service's SOAP control point. */
  controlUrl: string
}

const parser = new XMLParser({
  removeNSPrefix: true,
  ignoreAttributes: true,
  parseTagValue: false,
  processEntities: true,
  isArray: (name) => name === 'service' || name === 'device'
})

function parseXml (xml: string, what: string): Record<string, unknown> {
  try {
    const doc = parser.parse(xml, true) as unknown
    if (typeof doc !== 'object' || doc === null) throw new Error('not a document')
    return doc as Record<string, unknown>
  } catch (err) {
    throw new ParseError(`${what}: not XML: ${err instanceof Error ? err.message.split('\n')[0] ?? '' : String(err)}`)
  }
}

const asRecord = (v: unknown): Record<string, unknown> | undefined => typeof v === 'object' && v !== null && !Array.isArray(v) ? v as Record<string, unknown> : undefined
const asArray = (v: unknown): unknown[] => Array.isArray(v) ? v : v === undefined ? [] : [v]
const asText = (v: unknown): string | undefined => typeof v === 'string' ? v.trim() : typeof v === 'number' ? String(v) : undefined

/**
 * The best WAN connection service of a device description (`rootDesc.xml`), with its control URL made absolute
 * against URLBase or the description's own URL. ParseError when there is none.
 */
export function parseIgdDescription (xml: string, descriptionUrl: string): IgdService {
  const root = asRecord(parseXml(xml, 'IGD description').root)
  if (root === undefined) throw new ParseError('IGD description: no <root> element')
  const base = asText(root.URLBase) ?? descriptionUrl
  const found: IgdService[] = []
  const visit = (device: unknown, depth: number): void => {
    const d = asRecord(device)
    if (d === undefined || depth > 8) return
    for (const s of asArray(asRecord(d.serviceList)?.service)) {
      const svc = asRecord(s)
      const type = asText(svc?.serviceType)
      const control = asText(svc?.controlURL)
      if (type === undefined || control === undefined || !(IGD_SERVICE_TYPES as readonly string[]).includes(type)) continue
      let url: URL
      try { url = new URL(control, base) } catch { throw new ParseError(`IGD description: controlURL ${quote(control)} is not a URL`) }
      if (url.protocol !== 'http:') throw new ParseError(`IGD description: controlURL ${quote(control)} is not http`)
      found.push({ serviceType: type, controlUrl: url.toString() })
    }
    for (const child of asArray(asRecord(d.deviceList)?.device)) visit(child, depth + 1)
  }
  for (const d of asArray(root.device)) visit(d, 0)
  found.sort((a, b) => IGD_SERVICE_TYPES.indexOf(a.serviceType as typeof IGD_SERVICE_TYPES[number]) - IGD_SERVICE_TYPES.indexOf(b.serviceType as typeof IGD_SERVICE_TYPES[number]))
  const best = found[0]
  if (best === undefined) throw new ParseError('IGD description: no WANIPConnection or WANPPPConnection service')
  return best
}

const builder = new XMLBuilder({ suppressEmptyNode: false, processEntities: true })

/** The SOAP envelope of one action call, arguments in the given order. */
export function soapRequest (serviceType: string, action: string, args: Array<[string, string | number]>): string {
  const body = builder.build({ [`u:${action}`]: Object.fromEntries(args.map(([k, v]) => [k, String(v)])) }) as string
  const open = `<u:${action}>`
  const withNs = body.replace(open, `<u:${action} xmlns:u="${serviceType}">`)
  return '<?xml version="1.0"?>\r\n' +
    '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">' +
    `<s:Body>${withNs}</s:Body></s:Envelope>\r\n`
}

/** A SOAP fault from the router: UPnP error code (e.g. 718 ConflictInMappingEntry) and description. */
export interface UpnpFault { errorCode: number, errorDescription: string }

export type SoapResult = { ok: true, values: Record<string, string> } | { ok: false, fault: UpnpFault }

/** The output arguments of `<actionResponse>`, or the UPnPError inside a fault. ParseError for anything else. */
export function parseSoapResponse (xml: string, action: string): SoapResult {
  const env = asRecord(parseXml(xml, `SOAP ${action} answer`).Envelope)
  const body = asRecord(env?.Body)
  if (body === undefined) throw new ParseError(`SOAP ${action} answer: no Envelope/Body`)
  const fault = asRecord(body.Fault)
  if (fault !== undefined) {
    const err = asRecord(asRecord(asRecord(fault.detail)?.UPnPError))
    const code = Number(asText(err?.errorCode))
    return { ok: false, fault: { errorCode: Number.isInteger(code) ? code : 0, errorDescription: (asText(err?.errorDescription) ?? asText(fault.faultstring) ?? 'SOAP fault').slice(0, 120) } }
  }
  const resp = body[`${action}Response`]
  if (resp === undefined) throw new ParseError(`SOAP ${action} answer: no ${action}Response`)
  const values: Record<string, string> = {}
  for (const [k, v] of Object.entries(asRecord(resp) ?? {})) {
    const t = asText(v)
    if (t !== undefined) values[k] = t
  }
  return { ok: true, values }
}
