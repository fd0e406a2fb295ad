import ipaddr from 'ipaddr.js'
import { UsageError, quote } from '../../shared/errors.js'

/** A DNS name: labels of letters, digits and inner hyphens. */
const HOSTNAME_RE = /^(?=.{1,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/

/** ipaddr.js ranges of addresses no spoke elsewhere can reach the hub at. */
const UNREACHABLE = ['unspecified', 'loopback', 'linkLocal', 'multicast', 'broadcast']

/**
 * Parse `--endpoint <host>[:port]` into the `host:port` spokes put in their config: host is an IPv4 address, a DNS
 * name, or an IPv6 address (in brackets when a port follows). The port defaults to the hub's listen port.
 */
export function parseHubEndpoint (text: string, defaultPort: number, what = '--endpoint'): string {
  let host = text
  let port: string | undefined
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(text)
  if (v6 !== null) {
    host = v6[1] ?? ''
    port = v6[2]
    if (!ipaddr.IPv6.isValid(host)) throw new UsageError(`${what} ${quote(text)}: ${quote(host)} is not an IPv6 address`)
  } else if ((text.match(/:/g) ?? []).length > 1) {
    if (!ipaddr.IPv6.isValid(text)) throw new UsageError(`${what} ${quote(text)}: not host[:port]`)
  } else {
    const colon = text.lastIndexOf(':')
    if (colon >= 0) { host = text.slice(0, colon); port = text.slice(colon + 1) }
    if (!HOSTNAME_RE.test(host)) throw new UsageError(`${what} ${quote(text)}: ${quote(host)} is not an IP address or host name`)
    if (/^[\d.]+$/.test(host) && !ipaddr.IPv4.isValidFourPartDecimal(host)) throw new UsageError(`${what} ${quote(text)}: ${quote(host)} is not an IPv4 address`)
  }
  if (port !== undefined && (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535)) {
    throw new UsageError(`${what} ${quote(text)}: port ${quote(port)} is not 1-65535`)
  }
  if (host.includes('%')) throw new UsageError(`${what} ${quote(text)}: an address with a zone (%) is only reachable on one link; give the hub's public address`)
  if (ipaddr.isValid(host)) {
    const range = ipaddr.parse(host).range()
    if (UNREACHABLE.includes(range)) throw new UsageError(`${what} ${quote(text)}: a ${range} address is not one spokes can reach; give the hub's public address`)
  }
  const p = port === undefined ? defaultPort : Number(port)
  return host.includes(':') ? `[${ipaddr.parse(host).toString()}]:${p}` : `${host}:${p}`
}
