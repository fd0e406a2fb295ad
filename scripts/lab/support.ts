import { existsSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { quote } from '../../src/shared/errors.js'
import { inNs, run } from './command.js'
import { NS_PREFIX } from './plan.js'

/** Can this machine run a lab? Checked once per process; the probe makes and deletes one namespace. */

export type LabSupport = { ok: true } | { ok: false, reason: string }

const TOOLS: Array<{ argv: string[], name: string }> = [
  { name: 'ip (iproute2)', argv: ['ip', '-V'] },
  { name: 'wg (wireguard-tools)', argv: ['wg', '--version'] },
  { name: 'wireguard-go', argv: ['wireguard-go', '--version'] },
  { name: 'iptables-restore', argv: ['iptables-restore', '--version'] },
  { name: 'sysctl', argv: ['sysctl', '--version'] },
  { name: 'ping (iputils)', argv: ['ping', '-V'] },
  { name: 'tc', argv: ['tc', '-V'] }
]

let cached: Promise<LabSupport> | undefined

export function labSupport (): Promise<LabSupport> {
  cached ??= probe()
  return cached
}

async function probe (): Promise<LabSupport> {
  if (process.platform !== 'linux') return { ok: false, reason: `needs Linux, this is ${process.platform}` }
  if (process.getuid?.() !== 0) return { ok: false, reason: 'needs root (network namespaces, iptables, /dev/net/tun)' }
  if (!existsSync('/dev/net/tun')) return { ok: false, reason: 'no /dev/net/tun (wireguard-go needs TUN devices)' }
  const missing: string[] = []
  await Promise.all(TOOLS.map(async tool => {
    const result = await run(tool.argv, { reject: false })
    if (result.exitCode !== 0) missing.push(tool.name)
  }))
  if (missing.length > 0) return { ok: false, reason: `missing or broken: ${missing.sort().join(', ')}` }

  const ns = `${NS_PREFIX}probe${randomBytes(2).toString('hex')}-x`
  const add = await run(['ip', 'netns', 'add', ns], { reject: false })
  if (add.exitCode !== 0) return { ok: false, reason: `ip netns add failed: ${quote(add.stderr.trim())}` }
  try {
    const ipt = await run(inNs(ns, ['iptables', '-w', '-t', 'nat', '-S']), { reject: false })
    if (ipt.exitCode !== 0) return { ok: false, reason: `iptables (nat table) in a namespace failed: ${quote(ipt.stderr.trim())}` }
    return { ok: true }
  } finally {
    await run(['ip', 'netns', 'del', ns], { reject: false })
  }
}
