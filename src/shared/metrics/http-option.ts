import { InvalidArgumentError } from 'commander'
import { quote } from '../errors.js'
import { parseIp } from '../ip.js'

/** Where `--http` listens. */
export interface HttpAddress { host: string, port: number }

/** The `--http` help text: what it serves and who can reach it. */
export const HTTP_OPTION_HELP = 'serve Prometheus metrics at http://<addr:port>/metrics (off by default); anyone who can reach addr:port can read them: ' +
  'bind it to loopback (127.0.0.1:9586) or an address only your monitoring reaches'

/** commander parser for `--http`: `ip:port` or `[ipv6]:port`; an address, never a name. */
export function httpAddressArg (value: string): HttpAddress {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value)
  const host = m?.[1] ?? m?.[2]
  const port = Number(m?.[3])
  if (m === null || host === undefined || port < 1 || port > 65535) throw new InvalidArgumentError(`${quote(value)} is not addr:port (e.g. 127.0.0.1:9586)`)
  try { parseIp(host) } catch { throw new InvalidArgumentError(`${quote(value)}: ${quote(host)} is not an IP address`) }
  return { host, port }
}

export function formatHttpAddress (at: HttpAddress): string {
  return at.host.includes(':') ? `[${at.host}]:${at.port}` : `${at.host}:${at.port}`
}
