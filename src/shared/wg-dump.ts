import { setImmediate } from 'node:timers/promises'
import { ParseError, quote } from './errors.js'
import { parseEndpoint, parsePrefix, type Endpoint } from './ip.js'

/** What wgnat knows of a WireGuard interface. Private and preshared keys are dropped while parsing. */
export interface WgDevice {
  publicKey: string | null
  listenPort: number
  peers: WgPeer[]
}

export interface WgPeer {
  publicKey: string
  /** True when the peer has a preshared key; the key itself is never kept. */
  hasPresharedKey: boolean
  endpoint: Endpoint | null
  /** Canonical prefixes, e.g. `100.64.0.2/32`. */
  allowedIps: string[]
  /** Unix seconds of the latest handshake; 0 means never. */
  latestHandshake: number
  transferRx: number
  transferTx: number
  /** Seconds, or 0 when off. */
  persistentKeepalive: number
}

const KEY_RE = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/

/** Is `text` a WireGuard key in base64 (32 bytes)? */
export function isWgKey (text: string): boolean {
  return KEY_RE.test(text)
}

/** Short, non-secret name for a peer in logs: the first 8 characters of its public key. */
export function shortKey (publicKey: string): string {
  return publicKey.slice(0, 8)
}

/**
 * Parse the output of `wg show <iface> dump`.
 * Errors name the line and field but never quote a key field, which may be a private or preshared key.
 */
export function parseWgDump (text: string): WgDevice {
  const { lines, device } = parseHead(text)
  device.peers = lines.slice(1).map((line, i) => parsePeerLine(line, i + 2))
  return device
}

/** Peer lines parsed between two turns of the event loop by `parseWgDumpAsync`: a few milliseconds' work. */
export const PARSE_SLICE_LINES = 500

/**
 * `parseWgDump` in slices of PARSE_SLICE_LINES peers, yielding to the event loop in between: a 10,000-peer dump
 * (1 MB, hundreds of milliseconds to parse on a busy machine) never holds up requests for more than one slice.
 */
export async function parseWgDumpAsync (text: string, sliceLines = PARSE_SLICE_LINES): Promise<WgDevice> {
  const { lines, device } = parseHead(text)
  for (let i = 1; i < lines.length; i++) {
    if (i % sliceLines === 0) await setImmediate()
    device.peers.push(parsePeerLine(lines[i] as string, i + 1))
  }
  return device
}

/** Split a dump into its lines and parse the interface line (the first). */
export function parseHead (text: string): { lines: string[], device: WgDevice } {
  const lines = text.split('\n').filter((line) => line.length > 0)
  const head = lines[0]
  if (head === undefined) throw new ParseError('wg dump: empty output')
  const iface = head.split('\t')
  if (iface.length !== 4) throw new ParseError(`wg dump: interface line has ${iface.length} fields, expected 4`)
  const publicKey = iface[1] === '(none)' ? null : key(iface[1], 'interface public key', 1)
  const listenPort = int(iface[2], 'listen port', 1, 0, 65535)
  return { lines, device: { publicKey, listenPort, peers: [] } }
}

/** Parse one peer line (`lineNo` counts from 1, the interface line). */
export function parsePeerLine (line: string, lineNo: number): WgPeer {
  const f = line.split('\t')
  if (f.length !== 8) throw new ParseError(`wg dump: line ${lineNo} has ${f.length} fields, expected 8`)
  const [publicKey, preshared, endpoint, allowedIps, handshake, rx, tx, keepalive] = f as [string, string, string, string, string, string, string, string]
  return {
    publicKey: key(publicKey, 'peer public key', lineNo),
    hasPresharedKey: preshared !== '(none)',
    endpoint: endpoint === '(none)' ? null : cached(endpointCache, endpoint, () => wrap(() => parseEndpoint(endpoint), lineNo)),
    allowedIps: allowedIps === '(none)' || allowedIps === '' ? [] : cached(allowedIpsCache, allowedIps, () => allowedIps.split(',').map((p) => wrap(() => parsePrefix(p.trim()).text, lineNo))).slice(),
    latestHandshake: int(handshake, 'latest handshake', lineNo),
    transferRx: int(rx, 'transfer rx', lineNo),
    transferTx: int(tx, 'transfer tx', lineNo),
    persistentKeepalive: keepalive === 'off' ? 0 : int(keepalive, 'persistent keepalive', lineNo, 0, 65535)
  }
}

/**
 * Parsed fields by their text. Reading a 10,000-peer interface once a second parses the same endpoints and allowed
 * IPs over and over, and IP parsing is most of the cost (about 40 µs a peer): a read that finds them unchanged is a
 * string split and map lookups. Only successful parses are kept; the caches are emptied when they grow past a bound.
 */
const CACHE_MAX = 200_000
const endpointCache = new Map<string, Endpoint>()
const allowedIpsCache = new Map<string, string[]>()

function cached<T> (cache: Map<string, T>, text: string, parse: () => T): T {
  const hit = cache.get(text)
  if (hit !== undefined) return hit
  const value = parse()
  if (cache.size >= CACHE_MAX) cache.clear()
  cache.set(own(text), value)
  return value
}

/**
 * A copy of `text` of its own. A string cut from a larger one (by split or slice) may keep the whole of it alive:
 * one field kept from each 1 MB dump of a 10,000-peer interface would keep every dump ever read.
 */
function own (text: string): string {
  return Buffer.from(text, 'utf8').toString('utf8')
}

function key (text: string | undefined, what: string, lineNo: number): string {
  // A public key is not secret, so quoting it is fine; but a malformed field may be a misplaced private key: say only its length.
  if (text === undefined || !isWgKey(text)) throw new ParseError(`wg dump: line ${lineNo}: invalid ${what} (${text?.length ?? 0} characters)`)
  return text
}

function int (text: string | undefined, what: string, lineNo: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (text === undefined || !/^\d{1,16}$/.test(text) || Number(text) < min || Number(text) > max) {
    throw new ParseError(`wg dump: line ${lineNo}: invalid ${what}: ${quote(text ?? '')}`)
  }
  return Number(text)
}

function wrap<T> (fn: () => T, lineNo: number): T {
  try {
    return fn()
  } catch (err) {
    if (err instanceof ParseError) throw new ParseError(`wg dump: line ${lineNo}: ${err.message}`)
    throw err
  }
}
