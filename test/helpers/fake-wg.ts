import type { Endpoint } from '../../src/shared/ip.js'
import type { PeerChange, WgControl } from '../../src/shared/wg.js'
import { argBytes } from '../../src/shared/wg-set-batches.js'
import type { WgDevice, WgPeer } from '../../src/shared/wg-dump.js'

/** Linux's ARG_MAX with an 8 MiB stack: execve fails with E2BIG past it. */
export const FAKE_ARG_MAX = 2 * 1024 * 1024

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
    const byKey = new Map(d.peers.map((p) => [p.publicKey, p]))
    // WireGuard's allowed IPs are unique across peers: taking one moves it.
    const owner = new Map<string, WgPeer>()
    for (const p of d.peers) for (const a of p.allowedIps) owner.set(a, p)
    for (const c of changes) {
      let p = byKey.get(c.publicKey)
      if (c.remove === true) {
        if (p !== undefined) { d.peers = d.peers.filter((x) => x !== p); byKey.delete(c.publicKey); for (const a of p.allowedIps) owner.delete(a) }
        continue
      }
      if (p === undefined) {
        p = newPeer(c.publicKey)
        d.peers.push(p)
        byKey.set(c.publicKey, p)
      }
      if (c.endpoint !== undefined) p.endpoint = { ...c.endpoint }
      if (c.persistentKeepalive !== undefined) p.persistentKeepalive = c.persistentKeepalive
      if (c.allowedIps !== undefined) {
        for (const a of p.allowedIps) owner.delete(a)
        for (const a of c.allowedIps) {
          const other = owner.get(a)
          if (other !== undefined && other !== p) other.allowedIps = other.allowedIps.filter((x) => x !== a)
          owner.set(a, p)
        }
        p.allowedIps = [...c.allowedIps]
      }
    }
  }

  /**
   * Emulate the `wg` binary for `wgCli({}, { run })`: `set` and `show <iface> dump`. An argument list over ARG_MAX
   * fails as execve does (E2BIG); `failWhen` makes chosen calls fail as `wg` does (exit 1, a line on stderr).
   */
  failWhen: ((args: string[]) => string | undefined) | undefined
  readonly runCalls: string[][] = []

  readonly run = async (args: string[]): Promise<string> => {
    this.runCalls.push(args)
    if (argBytes(args) > FAKE_ARG_MAX) throw Object.assign(new Error('spawn wg E2BIG'), { code: 'E2BIG' })
    const stderr = this.failWhen?.(args)
    if (stderr !== undefined) throw Object.assign(new Error('Command failed with exit code 1'), { exitCode: 1, stderr })
    if (args[0] === 'show' && args[2] === 'dump') return dumpOf(this.devices.get(args[1] ?? '') as WgDevice)
    if (args[0] !== 'set') throw new Error(`fake wg: unsupported ${args[0] ?? ''}`)
    await this.set(args[1] ?? '', parseSetArgs(args.slice(2)))
    return ''
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

/** The changes a `wg set` argument list (after `set <iface>`) makes, one per `peer` clause. */
function parseSetArgs (args: string[]): PeerChange[] {
  const changes: PeerChange[] = []
  let c: PeerChange | undefined
  for (let i = 0; i < args.length; i++) {
    const word = args[i]
    if (word === 'peer') { c = { publicKey: args[++i] ?? '' }; changes.push(c); continue }
    if (c === undefined) throw new Error(`fake wg: ${word ?? ''} before any peer`)
    if (word === 'remove') c.remove = true
    else if (word === 'endpoint') c.endpoint = ep(args[++i] ?? '')
    else if (word === 'persistent-keepalive') { const v = args[++i]; c.persistentKeepalive = v === 'off' ? 0 : Number(v) }
    else if (word === 'allowed-ips') { const v = args[++i] ?? ''; c.allowedIps = v === '' ? [] : v.split(',') }
    else throw new Error(`fake wg: unknown word ${word ?? ''}`)
  }
  return changes
}

function dumpOf (d: WgDevice): string {
  const lines = [`(hidden)\t${d.publicKey ?? '(none)'}\t${d.listenPort}\toff`]
  for (const p of d.peers) {
    const endpoint = p.endpoint === null ? '(none)' : p.endpoint.address.includes(':') ? `[${p.endpoint.address}]:${p.endpoint.port}` : `${p.endpoint.address}:${p.endpoint.port}`
    lines.push([p.publicKey, p.hasPresharedKey ? '(hidden)' : '(none)', endpoint, p.allowedIps.length === 0 ? '(none)' : p.allowedIps.join(','), p.latestHandshake, p.transferRx, p.transferTx, p.persistentKeepalive === 0 ? 'off' : p.persistentKeepalive].join('\t'))
  }
  return lines.join('\n') + '\n'
}
