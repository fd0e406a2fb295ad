import { UsageError, quote } from '../../shared/errors.js'
import { removeTableScript, replaceTableLines } from '../../shared/nft.js'
import { formatPublic, formatRange, type PortRange } from './expose-spec.js'
import type { ResolvedExpose } from './expose-resolve.js'

export type Family = 'ipv4' | 'ipv6'

export interface ExposeRulesetOptions {
  iface: string
  /** Leave the client's address as it is (no masquerade): the spoke must route its replies through the tunnel. */
  preserveSource: boolean
  /**
   * Families for which wgnat turned IP forwarding on: there, nothing but the exposes (and their ICMP errors) may
   * cross between the WireGuard interface and any other interface, as before forwarding was on.
   */
  guardFamilies: readonly Family[]
}

/** The role of a rule, at the start of its comment; `wgnat-server exposes` reads the counters by it. */
export type RuleRole = 'conn' | 'in' | 'out' | 'snat' | 'guard'

/** Interface names that are safe to write into an nftables script unquoted-inside-quotes. */
const IFACE_RE = /^[A-Za-z0-9_.-]{1,15}$/

/**
 * The table wgnat owns for `iface`'s exposes: `wgnat_expose_<iface>`, characters other than letters, digits and `_`
 * written as `_xx` (hex). One per interface, so a later run finds and replaces what a crashed run left.
 */
export function exposeTableName (iface: string): string {
  if (!IFACE_RE.test(iface)) throw new UsageError(`interface ${quote(iface)}: not a name --expose can use in an nftables rule`)
  return `wgnat_expose_${iface.replace(/[^A-Za-z0-9]/g, (c) => `_${c.charCodeAt(0).toString(16)}`)}`
}

/** `8080/tcp=100.64.0.2:80`: the expose as installed; the key of its counters. */
export function exposeKey (e: ResolvedExpose): string {
  const addr = e.family === 'ipv6' ? `[${e.address}]` : e.address
  return `${formatPublic(e)}=${addr}:${formatRange(e.targetPorts)}`
}

/**
 * Parse a rule comment written by renderExposeRuleset: `wgnat <role> <expose key>`, or `wgnat guard <family>`
 * (which also tells a later run that this one had turned forwarding on for that family).
 */
export function parseRuleComment (comment: string): { role: RuleRole, key: string } | undefined {
  const m = /^wgnat (conn|in|out|snat|guard)(?: (\S+))?$/.exec(comment)
  if (m === null) return undefined
  return { role: m[1] as RuleRole, key: m[2] ?? '' }
}

/**
 * Render the nftables script that makes the table hold exactly `exposes`. Run with `nft -f`, it is one
 * transaction: it creates the table if missing, deletes it (with whatever an earlier run left), and creates it
 * afresh, so the old rules stay until the new ones are all in. Pure.
 *
 * Per expose: DNAT in prerouting for the public port(s) on the hub's own addresses (not from the tunnel), counted
 * (a nat chain sees only the first packet of a connection, so its counter counts connections); a counted accept
 * in forward for each direction of exactly that connection (tunnel address, port, protocol, DNATed from that public
 * port); unless `preserveSource`, masquerade on the way into the tunnel, so the spoke sees the hub's tunnel address
 * and replies through the tunnel whatever its default route.
 */
export function renderExposeRuleset (exposes: readonly ResolvedExpose[], opts: ExposeRulesetOptions): string {
  const table = `inet ${exposeTableName(opts.iface)}`
  const wg = `"${opts.iface}"`
  const pre: string[] = []
  const fwd: string[] = []
  const post: string[] = []
  for (const e of exposes) {
    const key = exposeKey(e)
    const ipf = e.family === 'ipv4' ? 'ip' : 'ip6'
    const p = e.proto
    const addr = e.family === 'ipv6' ? `[${e.address}]` : e.address
    const conn = `ct status dnat meta l4proto ${p} ct original proto-dst ${ports(e.publicPorts)}`
    pre.push(`iifname != ${wg} fib daddr type local meta nfproto ${e.family} ${p} dport ${ports(e.publicPorts)} counter ${dnat(e, ipf, addr)} comment "wgnat conn ${key}"`)
    fwd.push(`oifname ${wg} meta nfproto ${e.family} ${conn} ${ipf} daddr ${e.address} ${p} dport ${ports(e.targetPorts)} counter accept comment "wgnat in ${key}"`)
    fwd.push(`iifname ${wg} meta nfproto ${e.family} ${conn} ${ipf} saddr ${e.address} ${p} sport ${ports(e.targetPorts)} counter accept comment "wgnat out ${key}"`)
    if (!opts.preserveSource) {
      post.push(`oifname ${wg} meta nfproto ${e.family} ${conn} ${ipf} daddr ${e.address} ${p} dport ${ports(e.targetPorts)} masquerade comment "wgnat snat ${key}"`)
    }
  }
  for (const family of opts.guardFamilies) {
    const icmp = family === 'ipv4' ? 'icmp' : 'ipv6-icmp'
    fwd.push(`meta nfproto ${family} meta l4proto ${icmp} ct state related accept comment "wgnat guard ${family}"`)
    fwd.push(`meta nfproto ${family} iifname ${wg} oifname != ${wg} counter drop comment "wgnat guard ${family}"`)
    fwd.push(`meta nfproto ${family} iifname != ${wg} oifname ${wg} counter drop comment "wgnat guard ${family}"`)
  }
  const chain = (name: string, head: string, rules: string[]): string =>
    [`  chain ${name} {`, `    ${head}`, ...rules.map((r) => `    ${r}`), '  }'].join('\n')
  return [
    ...replaceTableLines(exposeTableName(opts.iface)),
    `table ${table} {`,
    chain('prerouting', 'type nat hook prerouting priority dstnat; policy accept;', pre),
    chain('forward', 'type filter hook forward priority filter; policy accept;', fwd),
    chain('postrouting', 'type nat hook postrouting priority srcnat; policy accept;', post),
    '}',
    ''
  ].join('\n')
}

function ports (r: PortRange): string {
  return r.from === r.to ? String(r.from) : `${r.from}-${r.to}`
}

/** DNAT to the tunnel address: one port, a range kept as it is, or a shifted range (a map, port for port). */
function dnat (e: ResolvedExpose, ipf: string, addr: string): string {
  if (e.publicPorts.from === e.publicPorts.to) return `dnat ${ipf} to ${addr}:${e.targetPorts.from}`
  if (e.publicPorts.from === e.targetPorts.from) return `dnat ${ipf} to ${e.address}`
  const entries: string[] = []
  for (let port = e.publicPorts.from; port <= e.publicPorts.to; port++) {
    entries.push(`${port} : ${e.address} . ${port - e.publicPorts.from + e.targetPorts.from}`)
  }
  return `dnat ${ipf} addr . port to ${e.proto} dport map { ${entries.join(', ')} }`
}

/** The script that removes the table (`nft -f`); an absent table is not an error since the first line creates it. */
export function renderDeleteTable (iface: string): string {
  return removeTableScript(exposeTableName(iface))
}
