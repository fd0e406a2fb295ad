import { readFile, writeFile } from 'node:fs/promises'
import type { Family } from './expose-ruleset.js'

/** The kernel's IP forwarding switch per family. */
export interface ForwardingControl {
  /** True when on; undefined when the family does not exist in this kernel. */
  get (family: Family): Promise<boolean | undefined>
  set (family: Family, on: boolean): Promise<void>
}

const SYSCTL: Record<Family, string> = {
  ipv4: '/proc/sys/net/ipv4/ip_forward',
  ipv6: '/proc/sys/net/ipv6/conf/all/forwarding'
}

/** Forwarding through /proc/sys (of the network namespace the process runs in). */
export function procForwarding (): ForwardingControl {
  return {
    async get (family) {
      try { return (await readFile(SYSCTL[family], 'utf8')).trim() !== '0' } catch { return undefined }
    },
    async set (family, on) {
      await writeFile(SYSCTL[family], on ? '1\n' : '0\n')
    }
  }
}
