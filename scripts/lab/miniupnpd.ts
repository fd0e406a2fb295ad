import { randomUUID } from 'node:crypto'
import { existsSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ChildProcess } from 'node:child_process'
import { quote } from '../../src/shared/errors.js'
import { inNs, run, spawnDaemon } from './command.js'
import { LabError } from './lab-error.js'
import type { SitePlan } from './plan.js'
import { MINIUPNPD_START_TIMEOUT_MS, WG_START_POLL_MS } from './timings.js'

/**
 * A site router that grants port mappings: Debian's miniupnpd (nftables backend) serving UPnP IGD, NAT-PMP and
 * PCP (UDP 5351) on the LAN side. The router's rules are nftables, in the `inet filter` table where miniupnpd
 * expects its three chains, and otherwise behave like the site's kind (`easy` or `hard`): LAN traffic masqueraded
 * (fully random ports for `hard`), inbound NEW dropped unless miniupnpd's DNAT made it, the router's own traffic
 * not masqueraded (miniupnpd's STUN check must see its own address: no NAT above it). On a dual-stack site the same
 * `inet` rules are its IPv6 firewall (no NAT: the masquerade matches IPv4 sources only; inbound NEW dropped;
 * neighbour discovery from inet accepted).
 */

/** STUN server the routers' miniupnpd asks (on the internet router's hub-side address). */
export const LAB_STUN_PORT = 3478

export function portMappingRouterRules (site: Pick<SitePlan, 'kind' | 'wanIf' | 'lanSubnet'>): string {
  if (site.kind !== 'easy' && site.kind !== 'hard') throw new LabError(`site kind ${quote(site.kind)}: port mapping is for easy and hard routers`)
  const wan = `"${site.wanIf}"`
  const masquerade = site.kind === 'hard' ? 'masquerade fully-random' : 'masquerade'
  return `table inet filter {
  chain input {
    type filter hook input priority 0; policy accept;
    iifname ${wan} icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept
    iifname ${wan} ct state established,related accept
    iifname ${wan} drop
  }
  chain forward {
    type filter hook forward priority 0; policy accept;
    iifname ${wan} ct state established,related accept
    iifname ${wan} jump miniupnpd
    iifname ${wan} ct state new ct status dnat accept
    iifname ${wan} drop
  }
  chain miniupnpd {
  }
  chain prerouting {
    type nat hook prerouting priority -100; policy accept;
    jump prerouting_miniupnpd
  }
  chain postrouting {
    type nat hook postrouting priority 100; policy accept;
    jump postrouting_miniupnpd
    oifname ${wan} ip saddr ${site.lanSubnet} ${masquerade}
  }
  chain prerouting_miniupnpd {
  }
  chain postrouting_miniupnpd {
  }
}
`
}

export function miniupnpdConfig (site: Pick<SitePlan, 'wanIf' | 'lanIf' | 'lanSubnet'>, stun: { host: string, port: number }, uuid = randomUUID()): string {
  return [
    `ext_ifname=${site.wanIf}`,
    `listening_ip=${site.lanIf}`,
    'http_port=0',
    'enable_natpmp=yes',
    'enable_upnp=yes',
    // The lab's WAN addresses are in 198.18.0.0/15 (reserved): miniupnpd maps only after STUN shows no NAT above.
    'ext_perform_stun=yes',
    `ext_stun_host=${stun.host}`,
    `ext_stun_port=${stun.port}`,
    'secure_mode=yes',
    'system_uptime=yes',
    `uuid=${uuid}`,
    'min_lifetime=120',
    'max_lifetime=86400',
    'upnp_table_name=filter',
    'upnp_nat_table_name=filter',
    'upnp_forward_chain=miniupnpd',
    'upnp_nat_chain=prerouting_miniupnpd',
    'upnp_nat_postrouting_chain=postrouting_miniupnpd',
    `allow 1024-65535 ${site.lanSubnet} 1024-65535`,
    'deny 0-65535 0.0.0.0/0 0-65535',
    ''
  ].join('\n')
}

/** Load the router's nftables rules, start miniupnpd in the foreground (-d), wait until it listens on UDP 5351. */
export async function startMiniupnpd (site: SitePlan, stun: { host: string, port: number }, dir: string): Promise<ChildProcess> {
  await run(inNs(site.ns, ['nft', '-f', '-']), { input: portMappingRouterRules(site) })
  const conf = join(dir, `miniupnpd-${site.name}.conf`)
  writeFileSync(conf, miniupnpdConfig(site, stun), { mode: 0o600 })
  const logPath = join(dir, `miniupnpd-${site.name}.log`)
  const child = spawnDaemon(inNs(site.ns, ['miniupnpd', '-d', '-f', conf, '-P', join(dir, `miniupnpd-${site.name}.pid`)]), logPath, {})
  let exited: string | undefined
  child.once('exit', (code, signal) => { exited = signal ?? `exit code ${code}` })
  child.once('error', err => { exited = err.message })
  await waitForUdpListener(site.ns, 5351, () => exited, `miniupnpd on site ${quote(site.name)} (log: ${logPath})`, () => child.kill('SIGKILL'))
  return child
}

/** Poll `ss` until something listens on UDP `port` in `ns`; throws when the process exited or after the timeout. */
async function waitForUdpListener (ns: string, port: number, exited: () => string | undefined, what: string, kill: () => void): Promise<void> {
  const deadline = Date.now() + MINIUPNPD_START_TIMEOUT_MS
  for (;;) {
    const ss = await run(inNs(ns, ['ss', '-Hlun', `sport = :${port}`]), { reject: false })
    if (ss.stdout.trim() !== '') return
    const gone = exited()
    if (gone !== undefined || Date.now() > deadline) {
      if (gone === undefined) kill()
      throw new LabError(`${what}: ${gone ?? `not listening on UDP ${port} after ${MINIUPNPD_START_TIMEOUT_MS} ms`}`)
    }
    await new Promise(resolve => setTimeout(resolve, WG_START_POLL_MS * 5))
  }
}

/** The built stun-responder (dist/scripts/lab/stun-responder.js), also when this module runs from source (vitest). */
function stunResponderScript (): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir)
    if (up === dir) throw new LabError('wgnat repository root not found')
    dir = up
  }
  const script = join(dir, 'dist/scripts/lab/stun-responder.js')
  if (!existsSync(script)) throw new LabError(`${quote(script)} missing: run npm run build`)
  return script
}

/**
 * A STUN server on `host`:LAB_STUN_PORT in namespace `ns` (see stun-responder.ts for why not coturn); resolves once
 * it listens.
 */
export async function startStunServer (ns: string, host: string, dir: string): Promise<ChildProcess> {
  const logPath = join(dir, 'stun.log')
  const script = stunResponderScript()
  const child = spawnDaemon(inNs(ns, [process.execPath, script, host, String(LAB_STUN_PORT)]), logPath, {})
  let exited: string | undefined
  child.once('exit', (code, signal) => { exited = signal ?? `exit code ${code}` })
  child.once('error', err => { exited = err.message })
  await waitForUdpListener(ns, LAB_STUN_PORT, () => exited, `STUN server in ${quote(ns)} (log: ${logPath})`, () => child.kill('SIGKILL'))
  return child
}
