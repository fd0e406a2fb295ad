import { execa } from 'execa'
import { WgnatError, quote } from './errors.js'

/** The `nft` command: apply a script atomically (`nft -f -`), list as JSON. */
export interface NftControl {
  apply (script: string, signal?: AbortSignal): Promise<void>
  /** `nft -j <args>` parsed; undefined when nft says the object does not exist. */
  listJson (args: string[], signal?: AbortSignal): Promise<unknown>
  /**
   * Remove a table left behind (a run killed before it could clean up). Never throws: true when one was removed,
   * false when there was none or nft is missing or refused.
   */
  removeStale (family: string, table: string): Promise<boolean>
}

/** The real `nft`: missing binary exit 69, refused (not root) exit 77, anything else exit 1, one line each. */
export function nftCli (): NftControl {
  const run = async (args: string[], input: string | undefined, signal?: AbortSignal): Promise<{ ok: boolean, stdout: string, stderr: string }> => {
    const r = await execa('nft', args, { input, reject: false, cancelSignal: signal })
    if ((r as { code?: string }).code === 'ENOENT') throw new WgnatError('nft not found: install nftables (the policy is enforced with it)', 69)
    const stderr = String(r.stderr)
    if (r.exitCode !== 0 && /Operation not permitted/i.test(stderr)) throw new WgnatError('nft: not permitted (run as root, or with CAP_NET_ADMIN)', 77)
    return { ok: r.exitCode === 0, stdout: String(r.stdout), stderr }
  }
  return {
    async apply (script, signal) {
      const r = await run(['-f', '-'], script, signal)
      if (!r.ok) throw new WgnatError(`nft -f: ${quote(firstError(r.stderr))}`)
    },
    async listJson (args, signal) {
      const r = await run(['-j', ...args], undefined, signal)
      if (!r.ok) {
        if (/No such file or directory|does not exist/i.test(r.stderr)) return undefined
        throw new WgnatError(`nft ${args.join(' ')}: ${quote(firstError(r.stderr))}`)
      }
      return JSON.parse(r.stdout) as unknown
    },
    async removeStale (family, table) {
      try { return (await run(['delete', 'table', family, table], undefined)).ok } catch { return false }
    }
  }
}

function firstError (stderr: string): string {
  return stderr.split('\n').find((l) => /Error/i.test(l)) ?? stderr.split('\n')[0] ?? ''
}
