import { parsePrefix } from '../../shared/ip.js'
import { replaceTableLines } from '../../shared/nft.js'

/** Name of the client's nftables table for an interface: `inet wgnat_client_<if>`. */
export function clientTableName (iface: string): string {
  return `wgnat_client_${iface.replace(/[^A-Za-z0-9_]/g, '_')}`
}

/** A peer the client manages, as the filter needs it. */
export interface FilterPeer {
  allowedIps: readonly string[]
  /** The hub's policy lets it open connections to us. */
  mayInitiate: boolean
}

/**
 * The spoke's filter for one-way policy rules: new connections arriving on the interface from the addresses of
 * managed peers that may not open connections to us are dropped (input and forward, for a spoke routing a LAN);
 * replies to connections we opened (`ct state established,related`) and all other traffic pass. Undefined when no
 * peer needs it. An `nft -f` script replacing the whole table in one transaction. Pure.
 */
export function clientFilterRuleset (iface: string, peers: Iterable<FilterPeer>): string | undefined {
  const v4 = new Set<string>()
  const v6 = new Set<string>()
  for (const p of peers) {
    if (p.mayInitiate) continue
    for (const text of p.allowedIps) {
      const prefix = parsePrefix(text)
      const max = prefix.address.kind() === 'ipv4' ? 32 : 128
      ;(max === 32 ? v4 : v6).add(prefix.bits === max ? prefix.address.toString() : prefix.text)
    }
  }
  if (v4.size === 0 && v6.size === 0) return undefined
  const table = clientTableName(iface)
  const lines = [...replaceTableLines(table), `table inet ${table} {`]
  const matches: string[] = []
  for (const [fam, type, set, match] of [['4', 'ipv4_addr', v4, 'ip'], ['6', 'ipv6_addr', v6, 'ip6']] as const) {
    if (set.size === 0) continue
    // Vetted allowed IPs never overlap each other, so the interval set needs no merging.
    lines.push(`  set no_initiate_v${fam} {`, `    type ${type}; flags interval; comment "peers that may not open connections to us"`,
      `    elements = { ${[...set].sort().join(', ')} }`, '  }')
    matches.push(`${match} saddr @no_initiate_v${fam}`)
  }
  for (const hook of ['input', 'forward']) {
    lines.push(`  chain ${hook} {`, `    type filter hook ${hook} priority filter; policy accept;`)
    for (const m of matches) lines.push(`    iifname "${iface}" ct state new ${m} counter drop comment "wgnat policy: one way"`)
    lines.push('  }')
  }
  lines.push('}')
  return lines.join('\n') + '\n'
}
