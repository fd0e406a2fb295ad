import type { Endpoint } from '../../src/shared/ip.js'
import type { PeerChange, WgControl } from '../../src/shared/wg.js'
import type { WgDevice, WgPeer } from '../../src/shared/wg-dump.js'

/** An in-memory WireGuard interface with `wg set` semantics, for unit tests and benchmarks. */
export class FakeWg implements WgControl {
  readonly devices = new Map<string, WgDevice>()
  readonly setCalls: Array<{ iface: string, changes: PeerChange[] }> = []
  showCalls = 0
  failNext: Error | undefined

  addDevice (iface: string, device: WgDevice): void {
    this.devices.set(iface, structuredClone(device))
  }

  peer (iface: string, publicKey: string): WgPeer | undefined {
    return this.devices.get(iface)?.peers.find((p) => p.publicKey === publicKey)
  }

  async show (iface: string): Promise<WgDevice> {
    this.showCalls++
    this.throwIfFailing()
    const d = this.devices.get(iface)
    if (d === undefined) throw new Error(`interface '${iface}' not found or not a WireGuard interface`)
    return structuredClone(d)
  }

  async set (iface: string, changes: PeerChange[]): Promise<void> {
    this.throwIfFailing()
    const d = this.devices.get(iface)
    if (d === undefined) throw new Error(`interface '${iface}' not found`)
    this.setCalls.push({ iface, changes: structuredClone(changes) })
    for (const c of changes) {
      let p = d.peers.find((x) => x.publicKey === c.publicKey)
      if (c.remove === true) { d.peers = d.peers.filter((x) => x !== p); continue }
      if (p === undefined) {
        p = newPeer(c.publicKey)
        d.peers.push(p)
      }
      if (c.endpoint !== undefined) p.endpoint = { ...c.endpoint }
      if (c.persistentKeepalive !== undefined) p.persistentKeepalive = c.persistentKeepalive
      if (c.allowedIps !== undefined) {
        // WireGuard's allowed IPs are unique across peers: taking one moves it.
        for (const other of d.peers) if (other !== p) other.allowedIps = other.allowedIps.filter((a) => !c.allowedIps?.includes(a))
        p.allowedIps = [...c.allowedIps]
      }
    }
  }

  private throwIfFailing (): void {
    const err = this.failNext
    this.failNext = undefined
    if (err !== undefined) throw err
  }
}

export function newPeer (publicKey: string, init: Partial<WgPeer> = {}): WgPeer {
  return { publicKey, hasPresharedKey: false, endpoint: null, allowedIps: [], latestHandshake: 0, transferRx: 0, transferTx: 0, persistentKeepalive: 0, ...init }
}

export function ep (text: string): Endpoint {
  const i = text.lastIndexOf(':')
  return { address: text.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(text.slice(i + 1)) }
}
