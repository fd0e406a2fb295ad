import { randomBytes } from 'node:crypto'
import { quote } from '../../src/shared/errors.js'
import { LabSpecError } from './lab-error.js'
import { ROUTER_KINDS, type LabSpec, type RouterKind } from './types.js'

/** Pure address and name plan of a lab: everything createLab builds, decided before anything is created. */

export const HUB_LISTEN_PORT = 51820
export const DEFAULT_CLIENT_LISTEN_PORT = 51820
export const PERSISTENT_KEEPALIVE_S = 25
export const TUNNEL_PREFIX_LEN = 24
export const TUNNEL_SUBNET = '100.64.0.0/24'
export const HUB_TUNNEL_IP = '100.64.0.1'
export const HUB_UNDERLAY_IP = '198.18.1.2'
export const HUB_GATEWAY_IP = '198.18.1.1'
/** Namespace names start with this, then the lab id and a dash. */
export const NS_PREFIX = 'wgn-'

const ID_PATTERN = /^[a-z0-9]{1,8}$/
const NAME_PATTERN = /^[a-z][a-z0-9]{0,9}$/
const RESERVED_NAMES = new Set(['hub', 'inet', 'router'])
const MAX_SITES = 200
const MAX_CLIENTS_PER_SITE = 250
const MAX_CLIENTS = 253
const ID_BYTES = 3
const ID_LENGTH = 5

export interface HostPlan {
  name: string
  ns: string
  /** Underlay interface in the host's namespace ('wan0' on the hub, 'eth0' on clients). */
  underlayIf: string
  underlayIp: string
  gateway: string
  wgIf: string
  tunnelIp: string
  listenPort: number
  /** Global IPv6 address on the underlay (clients of `ipv6` sites), prefix length IPV6_PREFIX_LEN. */
  underlayIp6?: string
  /** The router's LAN IPv6 address: the host's IPv6 default gateway. */
  gateway6?: string
}

/** IPv6 of a dual-stack site k: WAN link 2001:db8:0:<k>::/64 (inet ::1, router ::2), LAN 2001:db8:1:<k>::/64. */
export interface SiteIpv6Plan {
  wanIp: string
  wanGateway: string
  lanIp: string
  lanPrefix: string
}

export const IPV6_PREFIX_LEN = 64

/** Pure: the IPv6 plan of site number k (1-based). The group is k's decimal digits read as hex: distinct for k <= 9999. */
export function siteIpv6Plan (k: number): SiteIpv6Plan {
  return { wanIp: `2001:db8:0:${k}::2`, wanGateway: `2001:db8:0:${k}::1`, lanIp: `2001:db8:1:${k}::1`, lanPrefix: `2001:db8:1:${k}::/${IPV6_PREFIX_LEN}` }
}

export interface SitePlan {
  name: string
  kind: RouterKind
  /** 1-based site number k: WAN 198.18.(10+k).0/24, LAN 198.19.k.0/24. */
  index: number
  ns: string
  wanIf: string
  lanIf: string
  wanIp: string
  /** inet's address on the WAN link, the router's default gateway. */
  wanGateway: string
  /** inet's interface towards this router. */
  inetIf: string
  lanIp: string
  lanSubnet: string
  /** Not exactly one client: lanIf is a bridge with one veth port per client (one client: a plain veth). */
  bridged: boolean
  /** The router runs miniupnpd (see SiteSpec.portMapping). */
  portMapping: boolean
  /** Dual stack (see SiteSpec.ipv6); null: IPv4 only. */
  ipv6: SiteIpv6Plan | null
  clients: Array<HostPlan & { routerPort: string }>
}

export interface LabPlan {
  id: string
  inetNs: string
  hub: HostPlan
  sites: SitePlan[]
  clients: HostPlan[]
  /** Every namespace, inet first. */
  namespaces: string[]
  wgInterfaces: string[]
  hubForwarding: boolean
  hubAllowedIps: 'host' | 'subnet'
  persistent: boolean
  bare: boolean
}

export function randomLabId (): string {
  return randomBytes(ID_BYTES).toString('hex').slice(0, ID_LENGTH)
}

export function isLabId (id: string): boolean {
  return ID_PATTERN.test(id)
}

export function nsName (id: string, suffix: string): string {
  return `${NS_PREFIX}${id}-${suffix}`
}

/** WireGuard interface names are global (one socket dir for all namespaces): wg<id>-<n>, at most 14 chars. */
export function wgIfName (id: string, n: number): string {
  return `wg${id}-${n}`
}

export function planLab (spec: LabSpec, id: string): LabPlan {
  if (!isLabId(id)) throw new LabSpecError(`lab id ${quote(id)}: expected 1-8 of [a-z0-9]`)
  if (!Array.isArray(spec.sites)) throw new LabSpecError(`lab spec: sites must be an array, got ${quote(spec.sites)}`)
  if (spec.sites.length > MAX_SITES) throw new LabSpecError(`lab spec: at most ${MAX_SITES} sites, got ${spec.sites.length}`)
  const hubAllowedIps = spec.hubAllowedIps ?? 'subnet'
  if (hubAllowedIps !== 'host' && hubAllowedIps !== 'subnet') {
    throw new LabSpecError(`lab spec: hubAllowedIps ${quote(hubAllowedIps)}: expected 'host' or 'subnet'`)
  }

  const inetNs = nsName(id, 'inet')
  const hub: HostPlan = {
    name: 'hub',
    ns: nsName(id, 'hub'),
    underlayIf: 'wan0',
    underlayIp: HUB_UNDERLAY_IP,
    gateway: HUB_GATEWAY_IP,
    wgIf: wgIfName(id, 0),
    tunnelIp: HUB_TUNNEL_IP,
    listenPort: HUB_LISTEN_PORT
  }

  const siteNames = new Set<string>()
  const clientNames = new Set<string>()
  const sites: SitePlan[] = []
  const clients: HostPlan[] = []
  spec.sites.forEach((site, i) => {
    checkName('site', site.name)
    if (siteNames.has(site.name)) throw new LabSpecError(`lab spec: duplicate site name ${quote(site.name)}`)
    siteNames.add(site.name)
    if (!ROUTER_KINDS.includes(site.kind)) {
      throw new LabSpecError(`site ${quote(site.name)}: unknown router kind ${quote(site.kind)}, expected one of ${ROUTER_KINDS.join(', ')}`)
    }
    if (site.portMapping === true && site.kind !== 'easy' && site.kind !== 'hard') {
      throw new LabSpecError(`site ${quote(site.name)}: port mapping (miniupnpd) needs an easy or hard router, not ${quote(site.kind)}`)
    }
    if (site.clients.length > MAX_CLIENTS_PER_SITE) {
      throw new LabSpecError(`site ${quote(site.name)}: at most ${MAX_CLIENTS_PER_SITE} clients, got ${site.clients.length}`)
    }
    const k = i + 1
    const sitePlan: SitePlan = {
      name: site.name,
      kind: site.kind,
      index: k,
      ns: nsName(id, `rt-${site.name}`),
      wanIf: 'wan0',
      lanIf: 'lan0',
      wanIp: `198.18.${10 + k}.2`,
      wanGateway: `198.18.${10 + k}.1`,
      inetIf: `eth-${site.name}`,
      lanIp: `198.19.${k}.1`,
      lanSubnet: `198.19.${k}.0/24`,
      bridged: site.clients.length !== 1,
      portMapping: site.portMapping === true,
      ipv6: site.ipv6 === true ? siteIpv6Plan(k) : null,
      clients: []
    }
    site.clients.forEach((entry, j) => {
      const client = typeof entry === 'string' ? { name: entry } : entry
      checkName('client', client.name)
      if (clientNames.has(client.name)) throw new LabSpecError(`lab spec: duplicate client name ${quote(client.name)}`)
      clientNames.add(client.name)
      const listenPort = client.listenPort ?? DEFAULT_CLIENT_LISTEN_PORT
      if (!Number.isInteger(listenPort) || listenPort < 1 || listenPort > 65535) {
        throw new LabSpecError(`client ${quote(client.name)}: listenPort ${quote(listenPort)} is not a port number`)
      }
      const n = clients.length + 1
      if (n > MAX_CLIENTS) throw new LabSpecError(`lab spec: at most ${MAX_CLIENTS} clients in the 100.64.0.0/24 tunnel`)
      const host: HostPlan & { routerPort: string } = {
        name: client.name,
        ns: nsName(id, client.name),
        underlayIf: 'eth0',
        underlayIp: `198.19.${k}.${2 + j}`,
        gateway: sitePlan.lanIp,
        wgIf: wgIfName(id, n),
        tunnelIp: `100.64.0.${1 + n}`,
        listenPort,
        ...(sitePlan.ipv6 === null ? {} : { underlayIp6: `2001:db8:1:${k}::${2 + j}`, gateway6: sitePlan.ipv6.lanIp }),
        routerPort: sitePlan.bridged ? `p-${client.name}` : sitePlan.lanIf
      }
      sitePlan.clients.push(host)
      clients.push(host)
    })
    sites.push(sitePlan)
  })

  return {
    id,
    inetNs,
    hub,
    sites,
    clients,
    namespaces: [inetNs, hub.ns, ...sites.map(s => s.ns), ...clients.map(c => c.ns)],
    wgInterfaces: [hub.wgIf, ...clients.map(c => c.wgIf)],
    hubForwarding: spec.hubForwarding ?? false,
    hubAllowedIps,
    persistent: spec.persistent ?? false,
    bare: spec.bare ?? false
  }
}

function checkName (what: string, name: unknown): void {
  if (typeof name !== 'string' || !NAME_PATTERN.test(name)) {
    throw new LabSpecError(`${what} name ${quote(name)}: expected a lowercase letter then up to 9 of [a-z0-9]`)
  }
  if (RESERVED_NAMES.has(name)) throw new LabSpecError(`${what} name ${quote(name)} is reserved`)
}

/** AllowedIPs of the hub peer on each client. */
export function hubAllowedIpsOf (plan: LabPlan): string {
  return plan.hubAllowedIps === 'host' ? `${HUB_TUNNEL_IP}/32` : TUNNEL_SUBNET
}
