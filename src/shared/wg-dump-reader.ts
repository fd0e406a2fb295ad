import { setImmediate } from 'node:timers/promises'
import { PARSE_SLICE_LINES, parseHead, parsePeerLine, type WgDevice, type WgPeer } from './wg-dump.js'

/** Peer lines compared (not parsed) between two turns of the event loop: comparing is a fraction of parsing. */
export const COMPARE_SLICE_LINES = 5000

/**
 * Parses successive reads of one interface's `wg show <iface> dump`, parsing only the peer lines that changed
 * since the previous read: a peer whose line is byte for byte the same is the same (frozen) `WgPeer` object as
 * last time, and a read identical to the previous one parses nothing. A hub's 10,000-peer dump, read once a
 * second, mostly repeats itself (only handshakes and transfer counters move), so this turns a parse of every line
 * into string comparisons. Callers can tell an unchanged peer by identity (`===`).
 *
 * Lines kept for the comparison are copied out of the read's text, so no peer holds a whole dump (a megabyte at
 * 10,000 peers) alive. Returned peers and their allowed-IP lists are frozen: they are shared between reads.
 */
export class WgDumpReader {
  private lastText: string | undefined
  private last: WgDevice | undefined
  private lines = new Map<string, { line: string, peer: WgPeer }>()

  constructor (private readonly sliceLines = PARSE_SLICE_LINES, private readonly compareSliceLines = COMPARE_SLICE_LINES) {}

  /** Parse `text`; throws ParseError like `parseWgDump` and then keeps the previous state. */
  async parse (text: string): Promise<WgDevice> {
    const last = this.last
    if (last !== undefined && text === this.lastText) return { ...last }
    const { lines, device } = parseHead(text)
    const next = new Map<string, { line: string, peer: WgPeer }>()
    let parsed = 0
    for (let i = 1; i < lines.length; i++) {
      if (i % this.compareSliceLines === 0) await setImmediate()
      const line = lines[i] as string
      // The public key is the line's first field (44 characters); a malformed line never matches a kept one.
      const prev = this.lines.get(line.slice(0, 44))
      if (prev !== undefined && prev.line === line) {
        device.peers.push(prev.peer)
        next.set(prev.peer.publicKey, prev)
        continue
      }
      if (++parsed % this.sliceLines === 0) await setImmediate()
      const own = copyString(line)
      const peer = freezePeer(parsePeerLine(own, i + 1))
      device.peers.push(peer)
      next.set(peer.publicKey, { line: own, peer })
    }
    this.lines = next
    this.lastText = text
    this.last = device
    return { ...device }
  }
}

/** A string that shares no memory with `text` (V8 keeps substrings as slices of the whole). */
function copyString (text: string): string {
  return Buffer.from(text, 'utf8').toString('utf8')
}

function freezePeer (peer: WgPeer): WgPeer {
  Object.freeze(peer.allowedIps)
  if (peer.endpoint !== null) Object.freeze(peer.endpoint)
  return Object.freeze(peer)
}
