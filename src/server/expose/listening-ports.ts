import { readFile } from 'node:fs/promises'
import { endianness } from 'node:os'
import ipaddr from 'ipaddr.js'
import type { ReservedPort } from './expose-resolve.js'
import type { ExposeProto } from './expose-spec.js'

/** One socket from /proc/net/{tcp,udp}[6] that takes new traffic: a TCP listener, or an unconnected UDP socket. */
export interface ListeningSocket {
  proto: ExposeProto
  address: string
  port: number
}

const TCP_LISTEN = '0A'
const UDP_UNCONNECTED = '07'

/**
 * Parse one /proc/net/tcp, tcp6, udp or udp6 file (addresses are 32-bit words in host byte order). Pure; lines that
 * do not parse are skipped.
 */
export function parseProcNet (text: string, proto: ExposeProto, littleEndian = endianness() === 'LE'): ListeningSocket[] {
  const out: ListeningSocket[] = []
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/)
    const [local, remote, state] = [f[1], f[2], f[3]]
    if (local === undefined || remote === undefined || state === undefined) continue
    if (state !== (proto === 'tcp' ? TCP_LISTEN : UDP_UNCONNECTED)) continue
    if (proto === 'udp' && !/^0+:0000$/.test(remote)) continue
    const [hex, portHex] = local.split(':')
    if (hex === undefined || portHex === undefined || !/^[0-9A-Fa-f]+$/.test(hex + portHex) || (hex.length !== 8 && hex.length !== 32)) continue
    const bytes: number[] = []
    for (let w = 0; w < hex.length; w += 8) {
      const word = [0, 2, 4, 6].map((i) => parseInt(hex.slice(w + i, w + i + 2), 16))
      bytes.push(...(littleEndian ? word.reverse() : word))
    }
    let ip: ipaddr.IPv4 | ipaddr.IPv6 = ipaddr.fromByteArray(bytes)
    if (ip.kind() === 'ipv6' && (ip as ipaddr.IPv6).isIPv4MappedAddress()) ip = (ip as ipaddr.IPv6).toIPv4Address()
    out.push({ proto, address: ip.toString(), port: parseInt(portHex, 16) })
  }
  return out
}

/**
 * Ports that an expose would take away from the hub's own services: sockets reachable from outside the tunnel
 * (bound to all addresses or to an address other than loopback and the tunnel's own). Pure.
 */
export function shadowedPorts (sockets: readonly ListeningSocket[], tunnelAddresses: readonly string[]): ReservedPort[] {
  const seen = new Set<string>()
  const out: ReservedPort[] = []
  for (const s of sockets) {
    const ip = ipaddr.parse(s.address)
    if (ip.range() === 'loopback' || tunnelAddresses.includes(s.address)) continue
    const key = `${s.port}/${s.proto}`
    if (seen.has(key)) continue
    seen.add(key)
    const where = s.address.includes(':') ? `[${s.address}]:${s.port}` : `${s.address}:${s.port}`
    out.push({ port: s.port, proto: s.proto, what: `in use on the hub (a socket on ${where})` })
  }
  return out
}

/** The sockets of this network namespace, from /proc/net. Files that cannot be read (no IPv6) count as empty. */
export async function readListeningSockets (): Promise<ListeningSocket[]> {
  const files: Array<[string, ExposeProto]> = [['tcp', 'tcp'], ['tcp6', 'tcp'], ['udp', 'udp'], ['udp6', 'udp']]
  const all = await Promise.all(files.map(async ([file, proto]) => {
    try { return parseProcNet(await readFile(`/proc/net/${file}`, 'utf8'), proto) } catch { return [] }
  }))
  return all.flat()
}
