import { readFileSync } from 'node:fs'

/** How long one reading of the forwarding switches is reused: the registry may answer thousands of polls a second. */
export const FORWARDING_PROBE_TTL_MS = 1000

/** The kernel's forwarding switches of this network namespace, IPv4 and IPv6. */
const FORWARDING_FILES = ['/proc/sys/net/ipv4/ip_forward', '/proc/sys/net/ipv6/conf/all/forwarding']

/**
 * Whether the hub may forward between spokes, for the table's `relay`: true when `--relay` set it up, and also when
 * IP forwarding is on anyway (an admin's own FORWARD rules may pass spoke-to-spoke traffic). Clients keep relay-first
 * safety whenever this says true; only a hub that cannot forward lets them put a peer's routes on with the attempt.
 * A file that cannot be read counts as forwarding (the safe answer).
 */
export function forwardingProbe (opts: { relay: boolean, nowMs?: () => number, read?: (path: string) => string }): () => boolean {
  if (opts.relay) return () => true
  const nowMs = opts.nowMs ?? Date.now
  const read = opts.read ?? ((path: string) => readFileSync(path, 'utf8'))
  let cached: { value: boolean, atMs: number } | undefined
  return () => {
    const now = nowMs()
    if (cached === undefined || now - cached.atMs >= FORWARDING_PROBE_TTL_MS) {
      cached = { value: FORWARDING_FILES.some((path) => isOn(read, path)), atMs: now }
    }
    return cached.value
  }
}

function isOn (read: (path: string) => string, path: string): boolean {
  try {
    return read(path).trim() !== '0'
  } catch (err) {
    // No IPv6 in this kernel: no IPv6 forwarding either.
    return (err as NodeJS.ErrnoException).code !== 'ENOENT'
  }
}
