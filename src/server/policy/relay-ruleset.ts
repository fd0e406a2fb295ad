import { parsePrefix, prefixContains, type Prefix } from '../../shared/ip.js'
import { replaceTableLines } from '../../shared/nft.js'
import type { PolicyEvaluation, PolicyPeer } from './evaluate-policy.js'

/** Name of the hub's nftables table for an interface: `inet wgnat_policy_<if>` (characters nft rejects become `_`). */
export function relayTableName (iface: string): string {
  return `wgnat_policy_${iface.replace(/[^A-Za-z0-9_]/g, '_')}`
}

/** Name of the counter of relayed packets the policy dropped. */
export const DENIED_COUNTER = 'denied'

export interface RelayRuleset {
  /** An `nft -f` script replacing the whole table in one transaction. */
  script: string
  /** Rules in the relay chain, set elements in all sets: the size of what the kernel holds. */
  rules: number
  elements: number
}

/**
 * The hub's forward filter for a policy, as one nftables table that replaces its previous version atomically.
 * One address set per distinct set of peers the rules name (IPv4 and IPv6), and per allowed direction two rules:
 * new connections from the one set to the other, and replies back (`ct state established,related`). Its size grows
 * with the rules and the peers, never with peers squared. Everything else forwarded from the interface to itself
 * is counted and dropped. Pure.
 */
export function relayRuleset (iface: string, evaluation: PolicyEvaluation, peers: readonly PolicyPeer[], counter = { packets: 0, bytes: 0 }): RelayRuleset {
  const table = relayTableName(iface)
  const ips = new Map(peers.map((p) => [p.publicKey, p.allowedIps]))
  const lines = [...replaceTableLines(table), `table inet ${table} {`,
    `  counter ${DENIED_COUNTER} { packets ${counter.packets} bytes ${counter.bytes} }`]
  let elements = 0
  const used = new Set(evaluation.edges.flatMap((e) => [e.from, e.to]))
  const families = new Map<number, { v4: boolean, v6: boolean }>()
  evaluation.sets.forEach((set, i) => {
    if (!used.has(i)) return
    const prefixes = set.keys.flatMap((k) => ips.get(k) ?? []).map(parsePrefix)
    const v4 = collapse(prefixes.filter((p) => p.address.kind() === 'ipv4'))
    const v6 = collapse(prefixes.filter((p) => p.address.kind() === 'ipv6'))
    families.set(i, { v4: v4.length > 0, v6: v6.length > 0 })
    const comment = set.labels.join(' | ').replace(/["\\]/g, '').slice(0, 120)
    for (const [fam, type, list] of [['4', 'ipv4_addr', v4], ['6', 'ipv6_addr', v6]] as const) {
      if (list.length === 0) continue
      elements += list.length
      lines.push(`  set s${i}_v${fam} {`, `    type ${type}; flags interval; comment "${comment}"`,
        `    elements = { ${list.map(element).join(', ')} }`, '  }')
    }
  })
  lines.push('  chain forward {', '    type filter hook forward priority filter; policy accept;',
    `    iifname "${iface}" oifname "${iface}" jump relay`, '  }', '  chain relay {')
  let rules = 0
  const allowed = new Set(evaluation.edges.map((e) => `${e.from}>${e.to}`))
  for (const e of evaluation.edges) {
    // Replies need their own rule only where the reverse direction is not allowed anyway.
    const replies = !allowed.has(`${e.to}>${e.from}`)
    const from = families.get(e.from); const to = families.get(e.to)
    const comment = `rule ${e.rules.map((r) => r + 1).join(',')}`
    for (const [fam, match] of [['4', 'ip'], ['6', 'ip6']] as const) {
      if (from?.[`v${fam}`] !== true || to?.[`v${fam}`] !== true) continue
      lines.push(`    ${match} saddr @s${e.from}_v${fam} ${match} daddr @s${e.to}_v${fam} accept comment "${comment}"`)
      rules++
      if (!replies) continue
      lines.push(`    ct state established,related ${match} saddr @s${e.to}_v${fam} ${match} daddr @s${e.from}_v${fam} accept comment "${comment} replies"`)
      rules++
    }
  }
  lines.push(`    counter name ${DENIED_COUNTER} drop comment "not allowed by the policy"`, '  }', '}')
  return { script: lines.join('\n') + '\n', rules: rules + 1, elements }
}

/** Drop prefixes inside another of the list and duplicates: nft refuses overlapping intervals in a set. */
function collapse (prefixes: Prefix[]): Prefix[] {
  const hosts = new Map<string, Prefix>()
  const nets: Prefix[] = []
  for (const p of prefixes) {
    if (p.bits === (p.address.kind() === 'ipv4' ? 32 : 128)) hosts.set(p.text, p)
    else if (!nets.some((n) => n.text === p.text)) nets.push(p)
  }
  const keptNets = nets.filter((n) => !nets.some((m) => m !== n && m.bits < n.bits && prefixContains(m, n)))
  const keptHosts = [...hosts.values()].filter((h) => !keptNets.some((n) => prefixContains(n, h)))
  return [...keptNets, ...keptHosts]
}

function element (p: Prefix): string {
  return p.bits === (p.address.kind() === 'ipv4' ? 32 : 128) ? p.address.toString() : p.text
}
