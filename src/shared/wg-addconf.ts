import { WgError } from './errors.js'
import { formatEndpoint } from './ip.js'
import type { PeerChange } from './wg-set-batches.js'

/**
 * Pure: the `wg addconf` text of peer changes that set fields (allowed IPs, endpoint, keepalive), for a change
 * applied by an already running `wg` reading its stdin. Removals and kicks have no config form: refused.
 * `[Peer]` sections of addconf replace a peer's allowed IPs and leave what they do not name as it is.
 */
export function addconfText (changes: PeerChange[]): string {
  const lines: string[] = []
  for (const c of changes) {
    if (c.remove === true || c.kick === true) throw new WgError(`wg addconf: cannot stage a removal or a kick of peer ${c.publicKey.slice(0, 8)}`)
    const fields = [`PublicKey = ${c.publicKey}`]
    if (c.allowedIps !== undefined && c.allowedIps.length > 0) fields.push(`AllowedIPs = ${c.allowedIps.join(', ')}`)
    if (c.endpoint !== undefined) fields.push(`Endpoint = ${formatEndpoint(c.endpoint)}`)
    if (c.persistentKeepalive !== undefined) fields.push(`PersistentKeepalive = ${c.persistentKeepalive === 0 ? 'off' : String(c.persistentKeepalive)}`)
    if (c.allowedIps !== undefined && c.allowedIps.length === 0) throw new WgError(`wg addconf: cannot stage emptying the allowed IPs of peer ${c.publicKey.slice(0, 8)}`)
    // Vetted values never hold a newline; one that did would smuggle a line into the file.
    if (fields.some((f) => /[\r\n]/.test(f))) throw new WgError(`wg addconf: a value of peer ${c.publicKey.slice(0, 8)} holds a line break`)
    lines.push('[Peer]', ...fields, '')
  }
  return lines.join('\n')
}
