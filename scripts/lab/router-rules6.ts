import type { RouterKind } from './types.js'

/**
 * Pure: the nftables script that makes a dual-stack router's IPv6 side behave like a home router: it forwards
 * without NAT (every host has a global address) and is a stateful firewall: replies come back in, nothing new does.
 * - `public`: no firewall at all ('' : nothing to load).
 * - `easy`, `hard`, `clash`: inbound NEW dropped (there is no NAT to clash on IPv6; the firewall is the same).
 * - `udpblock`: also drops UDP from the LAN out over IPv6 (the hub, the one UDP destination allowed, is IPv4-only).
 * Neighbour discovery towards the router is accepted (without it inet cannot reach the router's WAN address).
 * Port-mapping routers (miniupnpd) get the same from their `inet filter` table (see miniupnpd.ts) and do not load this.
 */
export const IPV6_TABLE = 'wgnat_lab6'

export function routerRules6 (kind: RouterKind, { wanIf, lanIf }: { wanIf: string, lanIf: string }): string {
  if (kind === 'public') return ''
  const wan = `"${wanIf}"`
  const forward = [
    `    iifname ${wan} ct state established,related accept`,
    `    iifname ${wan} drop`
  ]
  if (kind === 'udpblock') forward.push(`    iifname "${lanIf}" oifname ${wan} meta l4proto udp drop`)
  return [
    `table ip6 ${IPV6_TABLE} {`,
    '  chain input {',
    '    type filter hook input priority 0; policy accept;',
    `    iifname ${wan} icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept`,
    `    iifname ${wan} ct state established,related accept`,
    `    iifname ${wan} drop`,
    '  }',
    '  chain forward {',
    '    type filter hook forward priority 0; policy accept;',
    ...forward,
    '  }',
    '}',
    ''
  ].join('\n')
}
