/**
 * SSDP, the discovery half of UPnP IGD, pure: the M-SEARCH datagram and the answer's LOCATION. Apart from igd-xml.ts
 * (the XML half) so that a client whose gateway answers no M-SEARCH never loads the XML parser.
 */
import { ParseError, quote } from '../../shared/errors.js'

/** What the M-SEARCH asks for. */
export const IGD_DEVICE_TYPE = 'urn:schemas-upnp-org:device:InternetGatewayDevice:1'
export const SSDP_ADDRESS = '239.255.255.250'
export const SSDP_PORT = 1900
/** Longest description or SOAP answer read (a real one is a few KiB). */
export const IGD_MAX_BODY = 64 * 1024

/** The M-SEARCH datagram (UPnP Device Architecture 1.1 §1.3.2). */
export function ssdpSearchRequest (mxS = 1): string {
  return [
    'M-SEARCH * HTTP/1.1',
    `HOST: ${SSDP_ADDRESS}:${SSDP_PORT}`,
    'MAN: "ssdp:discover"',
    `MX: ${mxS}`,
    `ST: ${IGD_DEVICE_TYPE}`,
    '', ''
  ].join('\r\n')
}

/** The LOCATION of an SSDP answer (`HTTP/1.1 200 OK` with headers), or a ParseError. */
export function parseSsdpResponse (text: string): { location: string, st: string } {
  const lines = text.split(/\r?\n/)
  if (!/^HTTP\/1\.[01] 200\b/i.test(lines[0] ?? '')) throw new ParseError(`SSDP answer: status line ${quote(lines[0] ?? '')}`)
  const headers = new Map<string, string>()
  for (const line of lines.slice(1)) {
    const i = line.indexOf(':')
    if (i > 0) headers.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim())
  }
  const location = headers.get('location')
  if (location === undefined) throw new ParseError('SSDP answer: no LOCATION header')
  let url: URL
  try { url = new URL(location) } catch { throw new ParseError(`SSDP answer: LOCATION ${quote(location)} is not a URL`) }
  if (url.protocol !== 'http:') throw new ParseError(`SSDP answer: LOCATION ${quote(location)} is not http`)
  return { location: url.toString(), st: headers.get('st') ?? '' }
}

