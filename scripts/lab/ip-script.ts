import { HUB_GATEWAY_IP, IPV6_PREFIX_LEN, TUNNEL_PREFIX_LEN, type HostPlan, type LabPlan } from './plan.js'

/** Pure: `ip -batch` lines and sysctls for each namespace of a lab plan. */

const UNDERLAY_PREFIX_LEN = 24

/** Phase 1: veth pairs (and LAN bridges), created from inet and from each router straight into the peer namespace. */
export function linkScripts (plan: LabPlan): Map<string, string[]> {
  const scripts = new Map<string, string[]>()
  scripts.set(plan.inetNs, [
    `link add eth-hub type veth peer name ${plan.hub.underlayIf} netns ${plan.hub.ns}`,
    ...plan.sites.map(site => `link add ${site.inetIf} type veth peer name ${site.wanIf} netns ${site.ns}`)
  ])
  for (const site of plan.sites) {
    const lines: string[] = []
    if (site.bridged) {
      lines.push(`link add ${site.lanIf} type bridge`)
      for (const client of site.clients) {
        lines.push(
          `link add ${client.routerPort} type veth peer name ${client.underlayIf} netns ${client.ns}`,
          `link set ${client.routerPort} master ${site.lanIf}`,
          `link set ${client.routerPort} up`
        )
      }
    } else {
      for (const client of site.clients) {
        lines.push(`link add ${site.lanIf} type veth peer name ${client.underlayIf} netns ${client.ns}`)
      }
    }
    scripts.set(site.ns, lines)
  }
  return scripts
}

/** Phase 2: addresses, links up, routes. */
export function configScripts (plan: LabPlan): Map<string, string[]> {
  const scripts = new Map<string, string[]>()
  const inet = ['link set lo up', ...up('eth-hub', `${HUB_GATEWAY_IP}/${UNDERLAY_PREFIX_LEN}`)]
  for (const site of plan.sites) inet.push(...up(site.inetIf, `${site.wanGateway}/${UNDERLAY_PREFIX_LEN}`))
  for (const site of plan.sites) {
    // Only public sites are reachable from the internet: inet routes their LAN to the router.
    if (site.kind === 'public') inet.push(`route add ${site.lanSubnet} via ${site.wanIp} dev ${site.inetIf}`)
    // Dual-stack sites: no NAT on IPv6, inet routes every site's prefix (the routers' firewalls decide what gets in).
    if (site.ipv6 !== null) {
      inet.push(
        addr6(site.inetIf, `${site.ipv6.wanGateway}/${IPV6_PREFIX_LEN}`),
        `route add ${site.ipv6.lanPrefix} via ${site.ipv6.wanIp} dev ${site.inetIf}`
      )
    }
  }
  scripts.set(plan.inetNs, inet)
  scripts.set(plan.hub.ns, hostLines(plan.hub))
  for (const site of plan.sites) {
    scripts.set(site.ns, [
      'link set lo up',
      ...up(site.wanIf, `${site.wanIp}/${UNDERLAY_PREFIX_LEN}`),
      ...up(site.lanIf, `${site.lanIp}/${UNDERLAY_PREFIX_LEN}`),
      `route add default via ${site.wanGateway} dev ${site.wanIf}`,
      ...(site.ipv6 === null
        ? []
        : [
            addr6(site.wanIf, `${site.ipv6.wanIp}/${IPV6_PREFIX_LEN}`),
            addr6(site.lanIf, `${site.ipv6.lanIp}/${IPV6_PREFIX_LEN}`),
            `route add ::/0 via ${site.ipv6.wanGateway} dev ${site.wanIf}`
          ])
    ])
  }
  for (const client of plan.clients) scripts.set(client.ns, hostLines(client))
  return scripts
}

/** Phase 3, once wireguard-go has created the interface: tunnel address and link up. */
export function wgLines (host: HostPlan): string[] {
  return up(host.wgIf, `${host.tunnelIp}/${TUNNEL_PREFIX_LEN}`)
}

/** `sysctl -w` assignments per namespace. */
export function sysctls (plan: LabPlan): Map<string, string[]> {
  const map = new Map<string, string[]>()
  const anyIpv6 = plan.sites.some(s => s.ipv6 !== null)
  map.set(plan.inetNs, anyIpv6 ? ['net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1'] : ['net.ipv4.ip_forward=1'])
  map.set(plan.hub.ns, [`net.ipv4.ip_forward=${plan.hubForwarding ? 1 : 0}`])
  for (const site of plan.sites) {
    // Bridged LAN traffic between two clients is switched, not routed: keep it out of the router's iptables.
    const v4 = site.bridged
      ? ['net.ipv4.ip_forward=1', 'net.bridge.bridge-nf-call-iptables=0']
      : ['net.ipv4.ip_forward=1']
    const v6 = site.ipv6 === null ? [] : ['net.ipv6.conf.all.forwarding=1', ...(site.bridged ? ['net.bridge.bridge-nf-call-ip6tables=0'] : [])]
    map.set(site.ns, [...v4, ...v6])
  }
  return map
}

function hostLines (host: HostPlan): string[] {
  return [
    'link set lo up',
    ...up(host.underlayIf, `${host.underlayIp}/${UNDERLAY_PREFIX_LEN}`),
    `route add default via ${host.gateway} dev ${host.underlayIf}`,
    ...(host.underlayIp6 === undefined || host.gateway6 === undefined
      ? []
      : [addr6(host.underlayIf, `${host.underlayIp6}/${IPV6_PREFIX_LEN}`), `route add ::/0 via ${host.gateway6} dev ${host.underlayIf}`])
  ]
}

/** An IPv6 address usable at once: no duplicate address detection (the lab plans every address; nothing to detect). */
function addr6 (ifname: string, cidr: string): string {
  return `addr add ${cidr} dev ${ifname} nodad`
}

function up (ifname: string, cidr: string): string[] {
  return [`addr add ${cidr} dev ${ifname}`, `link set ${ifname} up`]
}
