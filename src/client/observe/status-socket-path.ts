/**
 * Where the daemon serves its status by default: root-only directory, one socket per interface. On its own, so the
 * CLI's options (`--help` included) load nothing of the socket code (node:net, node:fs/promises).
 */
export function defaultStatusSocket (iface: string): string {
  return `/run/wgnat/${iface}.sock`
}
