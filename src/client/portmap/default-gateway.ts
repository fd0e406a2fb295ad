import { execa } from 'execa'
import { ParseError, WgnatError, messageOf, quote } from '../../shared/errors.js'

/** Upper bound for one `ip route` call. */
const IP_ROUTE_TIMEOUT_MS = 3000

/**
 * The IPv4 default gateway from `ip -4 -j route show default` (iproute2's JSON): the first route with a gateway,
 * lowest metric first. Null when there is none (a host with only a point-to-point default route has nothing to ask).
 */
export function parseDefaultRoutes (json: string): string | null {
  let routes: unknown
  try { routes = JSON.parse(json) } catch { throw new ParseError(`ip route: not JSON: ${quote(json)}`) }
  if (!Array.isArray(routes)) throw new ParseError(`ip route: expected a list, got ${quote(json)}`)
  const usable = routes
    .filter((r): r is { gateway: string, metric?: number } => typeof r === 'object' && r !== null && typeof (r as { gateway?: unknown }).gateway === 'string')
    .filter((r) => /^\d{1,3}(\.\d{1,3}){3}$/.test(r.gateway))
    .sort((a, b) => (a.metric ?? 0) - (b.metric ?? 0))
  return usable[0]?.gateway ?? null
}

/** The default gateway of this network namespace, or null. Throws a WgnatError when `ip` cannot be run. */
export async function defaultGateway (signal?: AbortSignal): Promise<string | null> {
  try {
    const r = await execa('ip', ['-4', '-j', 'route', 'show', 'default'], { timeout: IP_ROUTE_TIMEOUT_MS, cancelSignal: signal })
    return parseDefaultRoutes(r.stdout === '' ? '[]' : r.stdout)
  } catch (err) {
    if (err instanceof ParseError) throw err
    throw new WgnatError(`ip route show default: ${messageOf(err)}`, 69)
  }
}
