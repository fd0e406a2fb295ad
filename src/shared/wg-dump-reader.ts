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
  /**
   * Kept lines by public key, updated in place (issue 16): a new 10,000-entry map per read, and the read's 10,000
   * line strings, lived through the young generation's collections of the read and ended in the old one, about
   * 2 MB a read at 10,000 peers, which brought the registry's next mark-compact forward.
   */
  private readonly lines = new Map<string, { line: string, peer: WgPeer, seen: number }>()
  /** Counts reads: an entry whose `seen` is not the last read's was not in it. */
  private reads = 0

  constructor (private readonly sliceLines = PARSE_SLICE_LINES, private readonly compareSliceLines = COMPARE_SLICE_LINES) {}

  /** Parse `text`; throws ParseError like `parseWgDump` and then keeps the previous result for the same text. */
  async parse (text: string): Promise<WgDevice> {
    const last = this.last
    if (last !== undefined && text === this.lastText) return { ...last }
    // The text is walked line by line in place: no array of lines, no string per line that is compared only.
    let pos = skipEmptyLines(text, 0)
    let end = lineEnd(text, pos)
    const { device } = parseHead(text.slice(pos, end))
    const read = ++this.reads
    let lineNo = 1
    let parsed = 0
    for (pos = skipEmptyLines(text, end); pos < text.length; pos = skipEmptyLines(text, end)) {
      end = lineEnd(text, pos)
      if (++lineNo % this.compareSliceLines === 0) await setImmediate()
      // The public key is the line's first field (44 characters); a malformed line never matches a kept one.
      const prev = this.lines.get(text.slice(pos, Math.min(end, pos + 44)))
      if (prev !== undefined && prev.line.length === end - pos && text.startsWith(prev.line, pos)) {
        prev.seen = read
        device.peers.push(prev.peer)
        continue
      }
      if (++parsed % this.sliceLines === 0) await setImmediate()
      const own = copyString(text.slice(pos, end))
      const peer = freezePeer(parsePeerLine(own, lineNo))
      device.peers.push(peer)
      // A kept line stays true to its peer whatever happens next: a read that throws leaves no wrong entry behind.
      this.lines.set(peer.publicKey, { line: own, peer, seen: read })
    }
    // forEach, not `for (const [key, entry] of ...)`: the destructured loop makes an array per entry (1 MB a read at
    // 10,000 peers, in code that runs too seldom to be optimised) and costs 20 times the CPU.
    this.lines.forEach((entry, key) => { if (entry.seen !== read) this.lines.delete(key) })
    this.lastText = text
    this.last = device
    return { ...device }
  }
}

/** The index of the first character at or after `pos` that does not start an empty line. */
function skipEmptyLines (text: string, pos: number): number {
  while (pos < text.length && text.charCodeAt(pos) === 10) pos++
  return pos
}

/** The index of the newline that ends the line starting at `pos` (the text's length for an unended last line). */
function lineEnd (text: string, pos: number): number {
  const nl = text.indexOf('\n', pos)
  return nl < 0 ? text.length : nl
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
