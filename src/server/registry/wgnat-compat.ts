import ipaddr from 'ipaddr.js'
import { parseEndpoint, parsePrefix } from '../../shared/ip.js'
import type { TablePeer } from '../../shared/protocol.js'

/** Keepalive handed to wg-nat clients, in seconds: wg-nat set none, so its clients' NAT holes closed. */
export const WGNAT_KEEPALIVE_S = 25

/** Go's `wgtypes.PeerConfig`, as `encoding/json` writes it (see test/fixtures/wg-nat-keepalive-response.json). */
export interface GoPeerConfig {
  PublicKey: number[]
  Remove: boolean
  UpdateOnly: boolean
  /** Always null ("leave unchanged"): wg-nat copied the hub's preshared key here, leaking it to every client. */
  PresharedKey: null
  Endpoint: { IP: string, Port: number, Zone: string } | null
  /** Nanoseconds (Go time.Duration). */
  PersistentKeepaliveInterval: number
  ReplaceAllowedIPs: boolean
  AllowedIPs: Array<{ IP: string, Mask: string }>
}

/**
 * The answer of wg-nat's `POST /keepalive`: the caller's view of the other peers, in the original's format.
 * Peers without a known endpoint are left out: a wg-nat client would route their addresses into the void.
 */
export function wgnatKeepaliveResponse (peers: Iterable<TablePeer>, callerKey: string): GoPeerConfig[] {
  const out: GoPeerConfig[] = []
  for (const peer of peers) {
    if (peer.publicKey === callerKey || peer.endpoint === null) continue
    const endpoint = parseEndpoint(peer.endpoint)
    out.push({
      PublicKey: [...Buffer.from(peer.publicKey, 'base64')],
      Remove: false,
      UpdateOnly: false,
      PresharedKey: null,
      Endpoint: { IP: endpoint.address, Port: endpoint.port, Zone: '' },
      PersistentKeepaliveInterval: WGNAT_KEEPALIVE_S * 1e9,
      // Replace, so a peer whose allowed IPs shrink on the hub does not keep stale routes on wg-nat clients.
      ReplaceAllowedIPs: true,
      AllowedIPs: peer.allowedIps.map(goIpNet)
    })
  }
  return out
}

function goIpNet (text: string): { IP: string, Mask: string } {
  const prefix = parsePrefix(text)
  const mask = prefix.address.kind() === 'ipv4'
    ? ipaddr.IPv4.subnetMaskFromPrefixLength(prefix.bits)
    : ipaddr.IPv6.subnetMaskFromPrefixLength(prefix.bits)
  const bytes = mask.toByteArray()
  return { IP: prefix.address.toString(), Mask: Buffer.from(bytes).toString('base64') }
}
