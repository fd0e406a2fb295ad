import { quote } from '../../src/shared/errors.js'
import { LabSpecError } from './lab-error.js'
import { ROUTER_KINDS, type ClientSpec, type RouterKind, type SiteSpec } from './types.js'

/**
 * Pure: parse the CLI's --sites value. Comma-separated sites, each `name:kind[:clients]`, where clients
 * is `+`-separated `name[@listenPort]`. Without clients a site has one client named like the site. A kind with
 * `+upnp` (`easy+upnp`, `hard+upnp`) runs miniupnpd on the router (port mapping by UPnP IGD, NAT-PMP, PCP); with
 * `+ipv6` (`hard+ipv6`, `hard+upnp+ipv6`) the site is dual stack (see SiteSpec.ipv6).
 * Example: `a:easy,b:hard:b1+b2@51821,c:public,d:hard+upnp,e:hard+ipv6`.
 */
export function parseSiteList (text: string): SiteSpec[] {
  const entries = text.split(',').map(s => s.trim()).filter(s => s !== '')
  if (entries.length === 0) throw new LabSpecError(`--sites ${quote(text)}: expected name:kind[,name:kind...]`)
  return entries.map(entry => {
    const [name, kindText, clients, extra] = entry.split(':')
    const ipv6 = kindText?.endsWith('+ipv6') === true
    const baseText = ipv6 ? kindText?.slice(0, -'+ipv6'.length) : kindText
    const portMapping = baseText?.endsWith('+upnp') === true
    const kind = portMapping ? baseText?.slice(0, -'+upnp'.length) : baseText
    if (name === undefined || name === '' || kind === undefined || extra !== undefined) {
      throw new LabSpecError(`--sites entry ${quote(entry)}: expected name:kind[:client+client@port]`)
    }
    if (!(ROUTER_KINDS as readonly string[]).includes(kind)) {
      throw new LabSpecError(`--sites entry ${quote(entry)}: unknown router kind ${quote(kind)}, expected one of ${ROUTER_KINDS.join(', ')}`)
    }
    const clientSpecs: ClientSpec[] = clients === undefined
      ? [{ name }]
      : clients.split('+').filter(c => c !== '').map(c => parseClient(c, entry))
    return { name, kind: kind as RouterKind, clients: clientSpecs, ...(portMapping ? { portMapping } : {}), ...(ipv6 ? { ipv6 } : {}) }
  })
}

function parseClient (text: string, entry: string): ClientSpec {
  const [name = '', port, extra] = text.split('@')
  if (extra !== undefined) throw new LabSpecError(`--sites entry ${quote(entry)}: bad client ${quote(text)}`)
  if (port === undefined) return { name }
  if (!/^\d+$/.test(port)) throw new LabSpecError(`--sites entry ${quote(entry)}: client ${quote(text)}: port ${quote(port)} is not a number`)
  return { name, listenPort: Number(port) }
}
