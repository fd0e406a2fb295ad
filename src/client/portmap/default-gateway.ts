import { readFile } from 'node:fs/promises'
import { endianness } from 'node:os'
import { ParseError, WgnatError, messageOf, quote } from '../../shared/errors.js'

/** The kernel's IPv4 routing table (main table) of this network namespace, as `ip route` shows it by default. */
export const PROC_NET_ROUTE = '/proc/net/route'

/** Route flags in /proc/net/route (linux/route.h). */
const RTF_UP = 0x1
const RTF_GATEWAY = 0x2

/** An address column of /proc/net/route: the 32-bit value in network order, printed as a host-order hex number. */
function hexAddress (hex: string, littleEndian: boolean): string {
  const n = Number.parseInt(hex, 16)
  const bytes = [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]
  return (littleEndian ? bytes.reverse() : bytes).join('.')
}

/**
 * The IPv4 default gateway from the text of /proc/net/route: the first up route to 0.0.0.0/0 through a gateway,
 * lowest metric first. Null when there is none (a host with only a point-to-point default route has nothing to
 * ask). Read from the file rather than from `ip -j route`, which cost a process at every start (issue 16).
 */
export function parseProcNetRoute (text: string, littleEndian = endianness() === 'LE'): string | null {
  const lines = text.split('\n').filter((l) => l.trim() !== '')
  const header = lines[0]?.trim().split(/\s+/) ?? []
  const col = (name: string): number => header.indexOf(name)
  const [dst, gw, flags, metric, mask] = [col('Destination'), col('Gateway'), col('Flags'), col('Metric'), col('Mask')]
  if ([dst, gw, flags, metric, mask].some((i) => i < 0)) throw new ParseError(`${PROC_NET_ROUTE}: unexpected header ${quote(lines[0] ?? '')}`)
  const routes: Array<{ gateway: string, metric: number }> = []
  for (const line of lines.slice(1)) {
    const f = line.trim().split(/\s+/)
    const [d, g, fl, m, mk] = [f[dst], f[gw], f[flags], f[metric], f[mask]]
    if (d === undefined || g === undefined || fl === undefined || m === undefined || mk === undefined ||
      ![d, g, fl, mk].every((x) => /^[0-9A-Fa-f]{1,8}$/.test(x)) || !/^\d{1,10}$/.test(m)) {
      throw new ParseError(`${PROC_NET_ROUTE}: unexpected line ${quote(line)}`)
    }
    const bits = Number.parseInt(fl, 16)
    if (Number.parseInt(d, 16) !== 0 || Number.parseInt(mk, 16) !== 0 || (bits & RTF_UP) === 0 || (bits & RTF_GATEWAY) === 0) continue
    routes.push({ gateway: hexAddress(g, littleEndian), metric: Number(m) })
  }
  return routes.sort((a, b) => a.metric - b.metric)[0]?.gateway ?? null
}

/** The default gateway of this network namespace, or null. Throws a WgnatError when the routing table cannot be read. */
export async function defaultGateway (signal?: AbortSignal): Promise<string | null> {
  let text: string
  try {
    text = await readFile(PROC_NET_ROUTE, { encoding: 'utf8', signal })
  } catch (err) {
    throw new WgnatError(`reading ${PROC_NET_ROUTE}: ${messageOf(err)}`, 69)
  }
  return parseProcNetRoute(text)
}
