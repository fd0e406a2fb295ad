import { randomBytes } from 'node:crypto'
import type { Announce, TablePeer } from '../../shared/protocol.js'
import { formatEndpoint } from '../../shared/ip.js'
import type { WgDevice, WgPeer } from '../../shared/wg-dump.js'

/** A handshake older than this (WireGuard's REJECT_AFTER_TIME) means the peer is offline. */
export const ONLINE_AFTER_HANDSHAKE_S = 180

const NO_NAMES: ReadonlyMap<string, string> = new Map()

/** How many versions of change history the table keeps for delta answers; older clients get the full table. */
export const DEFAULT_HISTORY_VERSIONS = 1024

interface Entry {
  peer: TablePeer
  /** `peer` serialised once per change, so a full answer for 10,000 peers is a join, not 10,000 stringify calls. */
  json: string
  /** Fields whose change bumps the version (endpoint, allowed IPs, online, announce). */
  signature: string
  /** The device's peer this entry was last compared with: the same object again (WgDumpReader) is unchanged. */
  source?: WgPeer
  /** The `update()` that last saw this peer on the device. */
  seen: number
}

/** What one caller may see under an access policy (see src/server/policy): undefined means everything. */
export interface TableView {
  /** Peers the caller may reach in either direction. */
  visible: ReadonlySet<string>
  /** Of those, the ones that may open connections to the caller. */
  inbound: ReadonlySet<string>
}

export interface TableDelta {
  version: number
  full: boolean
  /** The peers to send, as the bytes between `[` and `]` of a JSON array, in pieces (the caller left out). */
  peers: Buffer[]
  removed: string[]
}

/** The whole table serialised once per version: full answers are two slices of it, not a new 1.8 MB string each. */
interface FullCache {
  version: number
  buf: Buffer
  /** Byte range of each peer's JSON in `buf`, and whether a comma follows it. */
  spans: Map<string, { start: number, end: number, last: boolean }>
}

/**
 * The registry's versioned view of the hub's peers. Each `update()` that changes something that matters to clients
 * bumps the version by one and records which keys changed, so `since(v)` answers with just those.
 * Pure: no I/O, no clock of its own (callers pass `nowS`).
 */
export class RegistryTable {
  /** Changes with every start of the registry: versions from another run mean nothing here. */
  readonly epoch = randomBytes(6).toString('hex')
  private readonly entries = new Map<string, Entry>()
  private readonly announces = new Map<string, Announce>()
  /** history[i] = keys changed by version (firstHistoryVersion + i). */
  private history: string[][] = []
  private firstHistoryVersion = 1
  private _version = 0
  private _now = 0
  private readonly historyVersions: number
  private fullCache: FullCache | undefined
  private updates = 0
  private _addressVersion = 0

  constructor (opts: { historyVersions?: number } = {}) {
    this.historyVersions = opts.historyVersions ?? DEFAULT_HISTORY_VERSIONS
  }

  get version (): number { return this._version }
  get now (): number { return this._now }
  get size (): number { return this.entries.size }
  /** Changes whenever a peer comes, goes or gets other allowed IPs (not on endpoint or online changes). */
  get addressVersion (): number { return this._addressVersion }

  /**
   * Take in a fresh read of the device, and the hub's peer names (public key -> name; peers without one are served
   * without a name). Returns the keys whose change bumped the version (none: unchanged).
   */
  update (device: WgDevice, nowS: number, names: ReadonlyMap<string, string> = NO_NAMES): string[] {
    this._now = nowS
    const changed: string[] = []
    const update = ++this.updates
    // forEach, not for-of: at each read, in code too cold to be optimised, a for-of allocates per peer (an iterator
    // result; a [key, value] pair over a Map) and costs several times the CPU (see WgDumpReader.parse).
    device.peers.forEach((wgPeer) => {
      if (this.put(wgPeer, nowS, names.get(wgPeer.publicKey), update)) changed.push(wgPeer.publicKey)
    })
    this.entries.forEach((entry, key) => {
      if (entry.seen !== update) {
        this.entries.delete(key)
        this.announces.delete(key)
        changed.push(key)
        this._addressVersion++
      }
    })
    this.record(changed)
    return changed
  }

  /** A peer told the registry about itself. Returns true when the version changed. */
  announce (publicKey: string, announce: Announce): boolean {
    const entry = this.entries.get(publicKey)
    if (entry === undefined) return false
    this.announces.set(publicKey, announce)
    const peer = { ...entry.peer, announce }
    const signature = signatureOf(peer)
    if (signature === entry.signature) return false
    this.entries.set(publicKey, { ...entry, peer, json: JSON.stringify(peer), signature })
    return this.record([publicKey])
  }

  get (publicKey: string): TablePeer | undefined {
    return this.entries.get(publicKey)?.peer
  }

  peers (): IterableIterator<TablePeer> {
    const it = this.entries.values()
    return (function * () { for (const e of it) yield e.peer })()
  }

  /** Would `since(since)` answer with the whole table (a new client, another epoch, a version past the history)? */
  answersInFull (since: number): boolean {
    return since <= 0 || since > this._version || since < this.firstHistoryVersion - 1
  }

  /**
   * Count every peer as changed (one new version): the access policy changed, so each caller's view may have.
   * Every delta after it lists every peer, as an entry or as removed.
   */
  touchAll (): void {
    this.record([...this.entries.keys()])
  }

  /**
   * What a client at version `since` needs, without the caller's own entry. A `since` of 0, in the future
   * (registry restarted) or older than the kept history gets the full table. With a `view` (an access policy),
   * only the peers it makes visible, each with `mayInitiate`; a changed peer the caller may not see is listed
   * as removed, so a client drops a peer the moment the policy forbids it.
   */
  since (since: number, caller: string, view?: TableView): TableDelta {
    const full = this.answersInFull(since)
    if (full && view === undefined) {
      return { version: this._version, full: true, peers: this.fullWithout(caller), removed: [] }
    }
    if (full) {
      const peersJson: string[] = []
      this.entries.forEach((e, key) => { if (key !== caller && view?.visible.has(key) === true) peersJson.push(withInitiate(e.json, view.inbound.has(key))) })
      return { version: this._version, full: true, peers: [Buffer.from(peersJson.join(','))], removed: [] }
    }
    const keys = new Set<string>()
    for (let v = since + 1; v <= this._version; v++) {
      for (const key of this.history[v - this.firstHistoryVersion] ?? []) keys.add(key)
    }
    const peersJson: string[] = []
    const removed: string[] = []
    for (const key of keys) {
      if (key === caller) continue
      const e = this.entries.get(key)
      if (e === undefined || (view !== undefined && !view.visible.has(key))) removed.push(key)
      else peersJson.push(view === undefined ? e.json : withInitiate(e.json, view.inbound.has(key)))
    }
    return { version: this._version, full: false, peers: [Buffer.from(peersJson.join(','))], removed }
  }

  /** The full table without the caller's entry: slices of one buffer shared by every full answer of this version. */
  private fullWithout (caller: string): Buffer[] {
    if (this.fullCache?.version !== this._version) {
      const spans = new Map<string, { start: number, end: number, last: boolean }>()
      const parts: string[] = []
      let offset = 0
      let i = 0
      this.entries.forEach((e, key) => {
        const len = Buffer.byteLength(e.json)
        spans.set(key, { start: offset, end: offset + len, last: i === this.entries.size - 1 })
        parts.push(e.json)
        offset += len + 1
        i++
      })
      this.fullCache = { version: this._version, buf: Buffer.from(parts.join(',')), spans }
    }
    const { buf, spans } = this.fullCache
    const span = spans.get(caller)
    if (span === undefined) return [buf]
    // Drop the caller's entry and one comma next to it (the one after it, or before it when it is last).
    return span.last
      ? [buf.subarray(0, Math.max(0, span.start - 1))]
      : [buf.subarray(0, span.start), buf.subarray(span.end + 1)]
  }

  private put (wgPeer: WgPeer, nowS: number, name: string | undefined, update: number): boolean {
    const old = this.entries.get(wgPeer.publicKey)
    const online = wgPeer.latestHandshake > 0 && nowS - wgPeer.latestHandshake < ONLINE_AFTER_HANDSHAKE_S
    if (old !== undefined) old.seen = update
    // The common case, every poll for every peer: nothing changed. The very same device object (a reader that
    // reuses unchanged peers) needs no look at its fields; otherwise compare fields before building anything.
    if (old !== undefined && old.source === wgPeer && old.peer.online === online && old.peer.name === name) return false
    const endpoint = wgPeer.endpoint === null ? null : formatEndpoint(wgPeer.endpoint)
    if (old !== undefined && old.peer.latestHandshake === wgPeer.latestHandshake && old.peer.online === online &&
        old.peer.endpoint === endpoint && old.peer.name === name && sameList(old.peer.allowedIps, wgPeer.allowedIps)) {
      old.source = wgPeer
      return false
    }
    if (old === undefined || !sameList(old.peer.allowedIps, wgPeer.allowedIps)) this._addressVersion++
    const peer: TablePeer = {
      // The old entry's key string: the device's may be a slice of a whole dump, which it would keep alive.
      publicKey: old?.peer.publicKey ?? wgPeer.publicKey,
      endpoint,
      allowedIps: wgPeer.allowedIps,
      latestHandshake: wgPeer.latestHandshake,
      online,
      announce: this.announces.get(wgPeer.publicKey) ?? null,
      ...(name === undefined ? {} : { name })
    }
    const signature = signatureOf(peer)
    this.entries.set(peer.publicKey, { peer, json: JSON.stringify(peer), signature, source: wgPeer, seen: update })
    return old === undefined || old.signature !== signature
  }

  private record (changed: string[]): boolean {
    if (changed.length === 0) return false
    this._version++
    this.history.push(changed)
    if (this.history.length > this.historyVersions) {
      const drop = this.history.length - this.historyVersions
      this.history = this.history.slice(drop)
      this.firstHistoryVersion += drop
    }
    return true
  }
}

/** A peer's cached JSON with the per-caller `mayInitiate` flag added (the JSON ends in `}`). */
function withInitiate (json: string, mayInitiate: boolean): string {
  return `${json.slice(0, -1)},"mayInitiate":${String(mayInitiate)}}`
}

function signatureOf (peer: TablePeer): string {
  return JSON.stringify([peer.endpoint, peer.allowedIps, peer.online, peer.announce, peer.name ?? null])
}

function sameList (a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i])
}
