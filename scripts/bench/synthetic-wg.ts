import { createHash } from 'node:crypto'
import type { PeerChange, WgControl } from '../../src/shared/wg.js'
import type { WgDevice } from '../../src/shared/wg-dump.js'

/** Loopback address of synthetic peer i: 127.1.0.0/16 gives 65,536 distinct sources on one machine. */
export function peerAddress (i: number): string {
  return `127.1.${Math.floor(i / 256)}.${i % 256}`
}

export function peerKey (i: number): string {
  return createHash('sha256').update(`bench-peer-${i}`).digest('base64')
}

/**
 * A WireGuard device with `n` peers that exists only in memory: the registry benchmark needs no real WireGuard.
 * Each peer's allowed IP is a loopback address, so a benchmark client binding that address is that peer.
 */
export function syntheticWg (n: number): WgControl & { moveEndpoint: (i: number) => void } {
  const nowS = Math.floor(Date.now() / 1000)
  const device: WgDevice = {
    publicKey: createHash('sha256').update('bench-hub').digest('base64'),
    listenPort: 51820,
    peers: Array.from({ length: n }, (_, i) => ({
      publicKey: peerKey(i),
      hasPresharedKey: false,
      endpoint: { address: `198.18.${Math.floor(i / 250) % 256}.${(i % 250) + 2}`, port: 40000 + (i % 20000) },
      allowedIps: [`${peerAddress(i)}/32`],
      latestHandshake: nowS,
      transferRx: 0,
      transferTx: 0,
      persistentKeepalive: 0
    }))
  }
  return {
    async show () {
      // What parsing `wg show dump` produces: fresh objects each read, handshakes kept fresh.
      const now = Math.floor(Date.now() / 1000)
      return { ...device, peers: device.peers.map((p) => ({ ...p, latestHandshake: now - 5 })) }
    },
    async set (_iface: string, _changes: PeerChange[]) {},
    moveEndpoint (i: number) {
      const p = device.peers[i]
      if (p?.endpoint != null) p.endpoint = { ...p.endpoint, port: p.endpoint.port === 65000 ? 64999 : 65000 }
    }
  }
}
