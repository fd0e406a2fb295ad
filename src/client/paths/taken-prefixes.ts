import { prefixContains, prefixesOverlap, type Prefix } from '../../shared/ip.js'

/**
 * The prefixes already given to peers while a table is vetted, asked "does this one overlap any of them?" once per
 * allowed IP. A plain list makes that a scan of every earlier peer: 1.5 s of CPU for a 10,000-peer table, and a
 * table is vetted again on every change the registry pushes. Host prefixes (a /32 or /128: nearly every peer's)
 * are kept in a set: a host overlaps another host only when they are equal. Networks stay in a list (few);
 * a network against the hosts is a scan of the hosts, rare enough.
 */
export class TakenPrefixes {
  private readonly hosts = new Map<string, Prefix>()
  private readonly nets: Prefix[] = []

  add (p: Prefix): void {
    if (isHost(p)) this.hosts.set(p.text, p)
    else this.nets.push(p)
  }

  overlaps (p: Prefix): boolean {
    if (this.nets.some((n) => prefixesOverlap(n, p))) return true
    if (isHost(p)) return this.hosts.has(p.text)
    for (const h of this.hosts.values()) if (prefixContains(p, h)) return true
    return false
  }
}

function isHost (p: Prefix): boolean {
  return p.bits === (p.address.kind() === 'ipv4' ? 32 : 128)
}
