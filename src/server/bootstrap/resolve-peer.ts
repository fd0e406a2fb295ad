import ipaddr from 'ipaddr.js'
import { EXIT_DATAERR, UsageError, WgnatError, quote } from '../../shared/errors.js'
import { parsePrefix } from '../../shared/ip.js'
import { isWgKey } from '../../shared/wg-dump.js'
import type { ConfigPeer } from '../../shared/wg-quick-config.js'
import { PEER_NAME_RE } from '../inventory/peer-names.js'

/**
 * A peer named by a user: its name (through the names store), its public key, or its tunnel address. Malformed:
 * exit 64; well-formed but no such peer in the saved config: exit 65.
 */
export function resolvePeer (spec: string, peers: ConfigPeer[], names: ReadonlyMap<string, string>, iface: string): ConfigPeer {
  let found: ConfigPeer | undefined
  if (isWgKey(spec)) {
    found = peers.find((p) => p.publicKey === spec)
  } else if (ipaddr.isValid(spec)) {
    const ip = ipaddr.parse(spec)
    found = peers.find((p) => p.allowedIps.some((a) => {
      const prefix = parsePrefix(a)
      return prefix.bits === (prefix.address.kind() === 'ipv4' ? 32 : 128) && prefix.address.kind() === ip.kind() && prefix.address.toString() === ip.toString()
    }))
  } else if (PEER_NAME_RE.test(spec)) {
    found = peers.find((p) => names.get(p.publicKey) === spec)
  } else {
    throw new UsageError(`peer ${quote(spec)}: not a name, a public key or a tunnel address`)
  }
  if (found === undefined) throw new WgnatError(`no peer ${quote(spec)} on ${iface}`, EXIT_DATAERR)
  return found
}
