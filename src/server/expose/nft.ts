import { execa } from 'execa'
import { WgnatError, quote } from '../../shared/errors.js'

/** What wgnat needs from nftables: apply a script as one transaction, read a table as JSON. */
export interface NftControl {
  /** `nft -f -`: all of the script or nothing. */
  apply (script: string, opts?: { signal?: AbortSignal }): Promise<void>
  /** `nft -j list table <family> <name>`; undefined when the table does not exist. */
  listTable (family: string, name: string, opts?: { signal?: AbortSignal }): Promise<unknown>
}

export interface NftCliInit {
  /** @default 'nft' */
  nftPath?: string
  /** Upper bound for one `nft` run. @default 10000 */
  timeoutMs?: number
}

/** nftables through the `nft` binary. */
export function nftCli (init: NftCliInit = {}): NftControl {
  const nftPath = init.nftPath ?? 'nft'
  const timeoutMs = init.timeoutMs ?? 10_000
  const run = async (args: string[], input: string | undefined, signal?: AbortSignal): Promise<{ ok: boolean, stdout: string, stderr: string }> => {
    const r = await execa(nftPath, args, { input, timeout: timeoutMs, cancelSignal: signal, reject: false })
    if ((r as { code?: string }).code === 'ENOENT') throw new WgnatError(`nft not found: --expose needs nftables (tried ${quote(nftPath)})`, 69)
    if (r.timedOut) throw new WgnatError(`nft ${args.join(' ')} timed out`)
    return { ok: r.exitCode === 0, stdout: String(r.stdout), stderr: String(r.stderr) }
  }
  return {
    async apply (script, opts = {}) {
      const r = await run(['-f', '-'], script, opts.signal)
      if (r.ok) return
      const line = r.stderr.split('\n').find((l) => l.trim() !== '') ?? ''
      if (/Operation not permitted|Permission denied/i.test(r.stderr)) throw new WgnatError('nft: not permitted to change the firewall: run as root or with CAP_NET_ADMIN', 77)
      throw new WgnatError(`nft refused the expose rules: ${quote(line)}`)
    },
    async listTable (family, name, opts = {}) {
      const r = await run(['-j', 'list', 'table', family, name], undefined, opts.signal)
      if (r.ok) return JSON.parse(r.stdout) as unknown
      if (/No such file or directory/.test(r.stderr)) return undefined
      if (/Operation not permitted|Permission denied/i.test(r.stderr)) throw new WgnatError('nft: not permitted to read the firewall: run as root or with CAP_NET_ADMIN', 77)
      throw new WgnatError(`nft list table ${family} ${name} failed: ${quote(r.stderr.split('\n')[0] ?? '')}`)
    }
  }
}
