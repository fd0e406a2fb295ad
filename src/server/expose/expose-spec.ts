import { isIP } from 'node:net'
import { UsageError, quote } from '../../shared/errors.js'

export type ExposeProto = 'tcp' | 'udp'

/** An inclusive port range; a single port has `from === to`. */
export interface PortRange {
  readonly from: number
  readonly to: number
}

/**
 * One `--expose` as written: `<public-port>[-<end>]/<tcp|udp>=<peer>:<port>[-<end>]`. `peer` is still a name, a
 * public key or a tunnel address; `expose-resolve` turns it into an address. A public range maps port for port
 * onto a target range of the same length starting at `target.from`.
 */
export interface ExposeSpec {
  /** The spec as given (trimmed), for messages. */
  readonly text: string
  readonly publicPorts: PortRange
  readonly proto: ExposeProto
  readonly peer: string
  readonly targetPorts: PortRange
}

/** The most ports one spec may cover (a range renders one map entry per port when it shifts ports). */
export const MAX_RANGE_PORTS = 4096

/** An expose spec or file that does not parse, or does not fit with the others (exit 64). */
export class ExposeSpecError extends UsageError {}

const SPEC_RE = /^(\d+)(?:-(\d+))?\/([a-z]+)=(.+)$/
const PORTS_RE = /^(\d+)(?:-(\d+))?$/

/** Parse one spec; throws ExposeSpecError quoting it, saying what is wrong. */
export function parseExposeSpec (input: string): ExposeSpec {
  const text = input.trim()
  const bad = (why: string): ExposeSpecError => new ExposeSpecError(`expose ${quote(text)}: ${why} (expected <public-port>[-<end>]/<tcp|udp>=<peer>:<port>)`)
  const m = SPEC_RE.exec(text)
  if (m === null) throw bad('not a spec')
  const [, pubFrom, pubTo, proto, rest] = m as unknown as [string, string, string | undefined, string, string]
  if (proto !== 'tcp' && proto !== 'udp') throw bad(`protocol ${quote(proto)} is neither tcp nor udp`)
  const publicPorts = range(pubFrom, pubTo, 'public port', bad)

  let peer: string
  let portText: string
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']')
    if (close < 0 || rest[close + 1] !== ':') throw bad('an IPv6 peer is written [address]:port')
    peer = rest.slice(1, close)
    if (isIP(peer) !== 6) throw bad(`${quote(peer)} is not an IPv6 address`)
    portText = rest.slice(close + 2)
  } else {
    const colon = rest.lastIndexOf(':')
    if (colon <= 0) throw bad('no :<port> after the peer')
    peer = rest.slice(0, colon)
    portText = rest.slice(colon + 1)
    if (peer.includes(':')) throw bad('an IPv6 peer is written [address]:port')
  }
  if (/\s/.test(peer)) throw bad('the peer contains blanks')
  const pm = PORTS_RE.exec(portText)
  if (pm === null) throw bad(`target port ${quote(portText)} is not a port number`)
  const targetPorts = range(pm[1] as string, pm[2], 'target port', bad)
  const span = publicPorts.to - publicPorts.from
  if (pm[2] === undefined) {
    if (targetPorts.from + span > 65535) throw bad(`the range runs past port 65535 on the peer (${targetPorts.from} + ${span})`)
  } else if (targetPorts.to - targetPorts.from !== span) {
    throw bad('the public and target ranges differ in length')
  }
  return { text, publicPorts, proto, peer, targetPorts: { from: targetPorts.from, to: targetPorts.from + span } }
}

function range (fromText: string, toText: string | undefined, what: string, bad: (why: string) => ExposeSpecError): PortRange {
  const from = port(fromText, what, bad)
  const to = toText === undefined ? from : port(toText, what, bad)
  if (to < from) throw bad(`${what} range ${from}-${to} runs backwards`)
  if (to - from + 1 > MAX_RANGE_PORTS) throw bad(`${what} range ${from}-${to} is longer than ${MAX_RANGE_PORTS} ports`)
  return { from, to }
}

function port (text: string, what: string, bad: (why: string) => ExposeSpecError): number {
  if (/^0\d/.test(text)) throw bad(`${what} ${quote(text)} has a leading zero`)
  if (text.length > 5 || Number(text) < 1 || Number(text) > 65535) throw bad(`${what} ${quote(text)} is not from 1 to 65535`)
  return Number(text)
}

/**
 * Parse an expose file: one spec per line, blank lines and `#` comments (whole lines or after a spec) ignored.
 * Throws ExposeSpecError naming the file and line.
 */
export function parseExposeFile (text: string, path: string): ExposeSpec[] {
  const specs: ExposeSpec[] = []
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*$/, '').trim()
    if (line === '') return
    try {
      specs.push(parseExposeSpec(line))
    } catch (err) {
      throw new ExposeSpecError(`expose file ${quote(path)} line ${i + 1}: ${(err as Error).message}`)
    }
  })
  return specs
}

/** `8000-8010/tcp` or `443/tcp`. */
export function formatPublic (spec: Pick<ExposeSpec, 'publicPorts' | 'proto'>): string {
  return `${formatRange(spec.publicPorts)}/${spec.proto}`
}

export function formatRange (r: PortRange): string {
  return r.from === r.to ? String(r.from) : `${r.from}-${r.to}`
}

/** Do two ranges share a port? */
export function rangesOverlap (a: PortRange, b: PortRange): boolean {
  return a.from <= b.to && b.from <= a.to
}
