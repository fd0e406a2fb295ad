import { ParseError, quote } from './errors.js'
import { parsePrefix } from './ip.js'
import { isWgKey } from './wg-dump.js'

/**
 * One model of a wg-quick config file (`wg-quick(8)`, `wg(8)` CONFIGURATION FILE FORMAT): parse, query, edit, render.
 *
 * The file is kept as a list of sections, each a list of lines (entries, comments, blank lines), so that rendering a
 * parsed file gives the same entries, comments and order back: repeated `[Peer]` sections, repeated keys (`Address`,
 * `AllowedIPs`, `DNS`, `PostUp` ...), comments before and inside sections. Entries are rendered as `Key = value`
 * (whitespace normalised); keys keep the case they were written in and are matched case-insensitively, as wg-quick
 * and wg do. Values of key fields are never quoted in errors (a misplaced private key must not reach a log).
 */

export type SectionKind = 'Interface' | 'Peer'

export type ConfigLine =
  | { kind: 'entry', key: string, value: string, /** inline `# ...` after the value, without the `#` */ comment?: string }
  /** A comment line (text after `#`) or a blank line (`text` undefined). */
  | { kind: 'comment', text?: string }

export interface ConfigSection {
  kind: SectionKind
  lines: ConfigLine[]
}

export interface WgQuickConfig {
  /** Comment and blank lines before the first section. */
  head: ConfigLine[]
  sections: ConfigSection[]
}

/** Keys wg-quick reads in [Interface] besides those `wg setconf` takes. */
const WG_QUICK_INTERFACE_KEYS = ['Address', 'DNS', 'MTU', 'Table', 'PreUp', 'PostUp', 'PreDown', 'PostDown', 'SaveConfig'] as const
const WG_INTERFACE_KEYS = ['PrivateKey', 'ListenPort', 'FwMark'] as const
const PEER_KEYS = ['PublicKey', 'PresharedKey', 'AllowedIPs', 'Endpoint', 'PersistentKeepalive'] as const
/** Keys that may appear more than once (their values add up). */
const REPEATABLE = new Set(['address', 'dns', 'allowedips', 'preup', 'postup', 'predown', 'postdown'])
const KNOWN: Record<SectionKind, Map<string, string>> = {
  Interface: new Map([...WG_QUICK_INTERFACE_KEYS, ...WG_INTERFACE_KEYS].map((k) => [k.toLowerCase(), k])),
  Peer: new Map(PEER_KEYS.map((k) => [k.toLowerCase(), k]))
}
/** Values that hold secrets: never quoted in an error. */
const SECRET = new Set(['privatekey', 'presharedkey'])
/**
 * A key or section name quoted in an error, with anything that looks like key material cut out: a damaged
 * `PrivateKey = ...` line (say, a NUL for its space) is an unknown key that holds the key itself.
 */
function redacted (text: string): string {
  return text.replace(/[A-Za-z0-9+/]{16,}={0,2}/g, '<redacted>')
}

/** Parse and validate a wg-quick config. `source` names the file in errors (`wg0.conf line 7: ...`). */
export function parseWgQuickConfig (text: string, source = 'config'): WgQuickConfig {
  const config: WgQuickConfig = { head: [], sections: [] }
  let current: ConfigSection | undefined
  const lines = text.split(/\r?\n/)
  if (lines.at(-1) === '') lines.pop()
  lines.forEach((raw, i) => {
    const where = `${source} line ${i + 1}`
    const line = raw.trim()
    const target = current?.lines ?? config.head
    if (line === '') { target.push({ kind: 'comment' }); return }
    if (line.startsWith('#')) { target.push({ kind: 'comment', text: line.slice(1) }); return }
    const hash = line.indexOf('#')
    const body = (hash < 0 ? line : line.slice(0, hash)).trim()
    const comment = hash < 0 ? undefined : line.slice(hash + 1)
    const section = /^\[\s*([A-Za-z]+)\s*\]$/.exec(body)
    if (section !== null) {
      const name = (section[1] ?? '').toLowerCase()
      if (name !== 'interface' && name !== 'peer') throw new ParseError(`${where}: unknown section ${quote(redacted(body))}`)
      current = { kind: name === 'interface' ? 'Interface' : 'Peer', lines: [] }
      if (comment !== undefined) current.lines.push({ kind: 'comment', text: comment })
      config.sections.push(current)
      return
    }
    const eq = body.indexOf('=')
    if (eq <= 0) throw new ParseError(`${where}: not a 'Key = value' line`)
    const key = body.slice(0, eq).trim()
    const value = body.slice(eq + 1).trim()
    if (current === undefined) throw new ParseError(`${where}: ${quote(redacted(key))} before any [Interface] or [Peer] section`)
    const canonical = KNOWN[current.kind].get(key.toLowerCase())
    if (canonical === undefined) throw new ParseError(`${where}: unknown key ${quote(redacted(key))} in [${current.kind}]`)
    const problem = checkValue(canonical, value)
    if (problem !== undefined) throw new ParseError(`${where}: ${canonical} ${SECRET.has(key.toLowerCase()) ? '' : `${quote(value)} `}${problem}`)
    if (!REPEATABLE.has(canonical.toLowerCase()) && current.lines.some((l) => l.kind === 'entry' && l.key.toLowerCase() === canonical.toLowerCase())) {
      throw new ParseError(`${where}: ${canonical} given twice in one [${current.kind}] section`)
    }
    current.lines.push(comment === undefined ? { kind: 'entry', key, value } : { kind: 'entry', key, value, comment })
  })
  checkStructure(config, source)
  return config
}

/** Render a config as wg-quick reads it. `render(parse(render(c)))` equals `render(c)`. */
export function renderWgQuickConfig (config: WgQuickConfig): string {
  const out: string[] = config.head.map(renderLine)
  for (const s of config.sections) {
    out.push(`[${s.kind}]`)
    for (const l of s.lines) out.push(renderLine(l))
  }
  return out.join('\n') + '\n'
}

function renderLine (l: ConfigLine): string {
  if (l.kind === 'comment') return l.text === undefined ? '' : `#${l.text}`
  return `${l.key} = ${l.value}${l.comment === undefined ? '' : ` #${l.comment}`}`
}

function checkValue (key: string, value: string): string | undefined {
  const list = (): string[] => value.split(',').map((v) => v.trim()).filter((v) => v !== '')
  switch (key) {
    case 'PrivateKey': case 'PublicKey': case 'PresharedKey':
      return isWgKey(value) ? undefined : 'is not a WireGuard key (44 characters of base64)'
    case 'ListenPort':
      return /^\d{1,5}$/.test(value) && Number(value) <= 65535 ? undefined : 'is not a port (0-65535)'
    case 'PersistentKeepalive':
      return value === 'off' || (/^\d{1,5}$/.test(value) && Number(value) <= 65535) ? undefined : 'is not a number of seconds (0-65535) or off'
    case 'MTU':
      return /^\d{3,5}$/.test(value) ? undefined : 'is not an MTU'
    case 'SaveConfig':
      return value === 'true' || value === 'false' ? undefined : 'is neither true nor false'
    case 'Address': case 'AllowedIPs':
      for (const p of list()) {
        try { parsePrefix(p) } catch { return `holds ${quote(p)}, not an IP prefix` }
      }
      return undefined
    case 'Endpoint':
      return /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(value) ? undefined : 'is not host:port'
    default:
      return value === '' && key !== 'DNS' ? 'is empty' : undefined
  }
}

function checkStructure (config: WgQuickConfig, source: string): void {
  const interfaces = config.sections.filter((s) => s.kind === 'Interface')
  if (interfaces.length !== 1) throw new ParseError(`${source}: ${interfaces.length === 0 ? 'no [Interface] section' : 'more than one [Interface] section'}`)
  const seen = new Set<string>()
  config.sections.forEach((s, i) => {
    if (s.kind !== 'Peer') return
    const key = valuesOf(s, 'PublicKey')[0]
    if (key === undefined) throw new ParseError(`${source}: [Peer] section ${i} has no PublicKey`)
    if (seen.has(key)) throw new ParseError(`${source}: peer ${quote(key)} appears twice`)
    seen.add(key)
  })
}

/** Every value of `key` in a section, comma lists split (`AllowedIPs = a, b` twice gives four values for lists). */
export function valuesOf (section: ConfigSection, key: string): string[] {
  const lower = key.toLowerCase()
  const values: string[] = []
  for (const l of section.lines) {
    if (l.kind !== 'entry' || l.key.toLowerCase() !== lower) continue
    if (LIST_KEYS.has(lower)) values.push(...l.value.split(',').map((v) => v.trim()).filter((v) => v !== ''))
    else values.push(l.value)
  }
  return values
}
const LIST_KEYS = new Set(['address', 'dns', 'allowedips'])

/** The [Interface] section (parse guarantees there is exactly one). */
export function interfaceSection (config: WgQuickConfig): ConfigSection {
  const s = config.sections.find((x) => x.kind === 'Interface')
  if (s === undefined) throw new ParseError('config: no [Interface] section')
  return s
}

/** What wgnat reads of one [Peer] section. */
export interface ConfigPeer {
  publicKey: string
  allowedIps: string[]
  endpoint: string | null
  persistentKeepalive: number
  hasPresharedKey: boolean
  /** The section itself, for edits. */
  section: ConfigSection
}

export function peersOf (config: WgQuickConfig): ConfigPeer[] {
  return config.sections.filter((s) => s.kind === 'Peer').map((section) => {
    const keepalive = valuesOf(section, 'PersistentKeepalive')[0]
    return {
      publicKey: valuesOf(section, 'PublicKey')[0] ?? '',
      allowedIps: valuesOf(section, 'AllowedIPs'),
      endpoint: valuesOf(section, 'Endpoint')[0] ?? null,
      persistentKeepalive: keepalive === undefined || keepalive === 'off' ? 0 : Number(keepalive),
      hasPresharedKey: valuesOf(section, 'PresharedKey').length > 0,
      section
    }
  })
}

/** A new section from `[key, value]` pairs (a value list gives one line per value), with optional comment lines first. */
export function makeSection (kind: SectionKind, entries: Array<[string, string | number | undefined]>, comments: string[] = []): ConfigSection {
  const lines: ConfigLine[] = comments.map((text) => ({ kind: 'comment', text: ` ${text}` }))
  for (const [key, value] of entries) {
    if (value !== undefined) lines.push({ kind: 'entry', key, value: String(value) })
  }
  return { kind, lines }
}

/** Append a [Peer] section (a blank line before it, as people write them). */
export function addPeerSection (config: WgQuickConfig, section: ConfigSection): void {
  const last = config.sections.at(-1)
  if (last !== undefined && last.lines.at(-1)?.kind !== 'comment') last.lines.push({ kind: 'comment' })
  config.sections.push(section)
}

/** Remove the [Peer] section of `publicKey`, and the blank line that separated it. Returns whether it was there. */
export function removePeerSection (config: WgQuickConfig, publicKey: string): boolean {
  const i = config.sections.findIndex((s) => s.kind === 'Peer' && valuesOf(s, 'PublicKey')[0] === publicKey)
  if (i < 0) return false
  config.sections.splice(i, 1)
  const prev = config.sections[i - 1]
  const tail = prev?.lines.at(-1)
  if (i === config.sections.length && tail?.kind === 'comment' && tail.text === undefined) prev?.lines.pop()
  return true
}

/** Add an entry to the [Interface] section, after the last entry of the same key (or at the end of its entries). */
export function addInterfaceEntry (config: WgQuickConfig, key: string, value: string): void {
  const s = interfaceSection(config)
  const lower = key.toLowerCase()
  let at = -1
  s.lines.forEach((l, i) => { if (l.kind === 'entry' && l.key.toLowerCase() === lower) at = i })
  if (at < 0) s.lines.forEach((l, i) => { if (l.kind === 'entry') at = i })
  s.lines.splice(at + 1, 0, { kind: 'entry', key, value })
}

/** Remove the [Interface] entries of `key` whose value is exactly `value`. Returns how many went. */
export function removeInterfaceEntry (config: WgQuickConfig, key: string, value: string): number {
  const s = interfaceSection(config)
  const before = s.lines.length
  s.lines = s.lines.filter((l) => !(l.kind === 'entry' && l.key.toLowerCase() === key.toLowerCase() && l.value === value))
  return before - s.lines.length
}
