import { readFile, writeFile } from 'node:fs/promises'
import { execa } from 'execa'
import { WgnatError, messageOf, quote } from '../shared/errors.js'
import type { Logger } from '../shared/log.js'

/** What `--relay` changed, so that stop() puts back exactly that. */
export interface RelayHandle {
  stop (): Promise<void>
}

const FORWARD_SYSCTLS = ['/proc/sys/net/ipv4/ip_forward', '/proc/sys/net/ipv6/conf/all/forwarding']

/**
 * Let the hub relay between spokes: IP forwarding on, and a FORWARD accept rule from the WireGuard interface to
 * itself (iptables and ip6tables). Idempotent: a rule already present is left as it is and not removed on stop;
 * forwarding that was already on stays on. Throws a WgnatError saying what failed.
 */
export async function enableRelay (iface: string, logger: Logger): Promise<RelayHandle> {
  const restore: Array<() => Promise<void>> = []
  try {
    for (const path of FORWARD_SYSCTLS) {
      let before: string
      try { before = (await readFile(path, 'utf8')).trim() } catch { continue } // no IPv6 in this kernel
      if (before !== '1') {
        await writeFile(path, '1\n')
        restore.push(async () => { await writeFile(path, `${before}\n`) })
      }
    }
    for (const tool of ['iptables', 'ip6tables']) {
      const rule = ['FORWARD', '-i', iface, '-o', iface, '-j', 'ACCEPT', '-m', 'comment', '--comment', 'wgnat relay']
      const present = await execa(tool, ['-w', '-C', ...rule], { reject: false })
      if (present.exitCode === 0) continue
      if ((present as { code?: string }).code === 'ENOENT') {
        if (tool === 'iptables') throw new WgnatError('--relay needs iptables: install it or enable forwarding yourself', 69)
        continue
      }
      const added = await execa(tool, ['-w', '-I', ...rule], { reject: false })
      if (added.exitCode !== 0) {
        if (tool === 'ip6tables') { logger.warn(`relay: no IPv6 forward rule: ${quote(String(added.stderr).split('\n')[0] ?? '')}`); continue }
        throw new WgnatError(`--relay: cannot add the forward rule: ${quote(String(added.stderr).split('\n')[0] ?? '')}`, 77)
      }
      restore.push(async () => { await execa(tool, ['-w', '-D', ...rule], { reject: false }) })
    }
  } catch (err) {
    for (const undo of restore.reverse()) await undo().catch(() => {})
    if (err instanceof WgnatError) throw err
    throw new WgnatError(`--relay: cannot enable forwarding: ${messageOf(err)} (run as root)`, 77)
  }
  logger.info(`relaying between peers of ${iface}`)
  return {
    async stop () {
      for (const undo of restore.reverse()) await undo().catch(() => {})
    }
  }
}

/** Packets and bytes forwarded by the relay rule (the FORWARD accept from the interface to itself). */
export interface RelayCounters { packets: number, bytes: number }

/**
 * Sum the counters of the relay rule in `iptables -L FORWARD -v -x -n` output (one tool's): the rule with the
 * `wgnat relay` comment whose in and out interfaces are `iface`. Pure; null when there is no such rule.
 */
export function parseRelayCounters (listing: string, iface: string): RelayCounters | null {
  const sum: RelayCounters = { packets: 0, bytes: 0 }
  let found = false
  for (const line of listing.split('\n')) {
    if (!line.includes('/* wgnat relay */')) continue
    // pkts bytes target prot opt in out source destination ...
    const f = line.trim().split(/\s+/)
    if (f.length < 7 || f[2] !== 'ACCEPT' || f[5] !== iface || f[6] !== iface || !/^\d+$/.test(f[0] ?? '') || !/^\d+$/.test(f[1] ?? '')) continue
    sum.packets += Number(f[0])
    sum.bytes += Number(f[1])
    found = true
  }
  return found ? sum : null
}

/** Read the relay rule's counters from iptables and ip6tables (summed); null when neither has the rule. */
export async function readRelayCounters (iface: string): Promise<RelayCounters | null> {
  const total: RelayCounters = { packets: 0, bytes: 0 }
  let found = false
  for (const tool of ['iptables', 'ip6tables']) {
    const r = await execa(tool, ['-w', '-L', 'FORWARD', '-v', '-x', '-n'], { reject: false })
    if (r.exitCode !== 0) continue
    const c = parseRelayCounters(String(r.stdout), iface)
    if (c === null) continue
    total.packets += c.packets
    total.bytes += c.bytes
    found = true
  }
  return found ? total : null
}
