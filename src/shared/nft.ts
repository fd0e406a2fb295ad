import { execa } from 'execa'
import { WgnatError, quote } from './errors.js'

/** What wgnat needs from nftables: apply a script as one transaction, read as JSON, remove a stale table. */
export interface NftControl {
  /** `nft -f -`: all of the script or nothing. */
  apply (script: string, opts?: { signal?: AbortSignal }): Promise<void>
  /** `nft -j <args>` parsed; undefined when nft says the object does not exist. */
  listJson (args: string[], opts?: { signal?: AbortSignal }): Promise<unknown>
  /** `nft -j list table <family> <name>`; undefined when the table does not exist. */
  listTable (family: string, name: string, opts?: { signal?: AbortSignal }): Promise<unknown>
  /**
   * Remove a table left behind (a run killed before it could clean up). Never throws: true when one was removed,
   * false when there was none or nft is missing or refused.
   */
  removeStale (family: string, table: string): Promise<boolean>
}

export interface NftCliInit {
  /** @default 'nft' */
  nftPath?: string
  /** Upper bound for one `nft` run. @default 10000 */
  timeoutMs?: number
}

const NOT_PERMITTED = /Operation not permitted|Permission denied/i
const MISSING = /No such file or directory|does not exist/i

/** nftables through the `nft` binary: missing binary exit 69, refused (not root) exit 77, anything else 1; one line each. */
export function nftCli (init: NftCliInit = {}): NftControl {
  const nftPath = init.nftPath ?? 'nft'
  const timeoutMs = init.timeoutMs ?? 10_000
  const run = async (args: string[], input: string | undefined, signal?: AbortSignal): Promise<{ ok: boolean, stdout: string, stderr: string }> => {
    const r = await execa(nftPath, args, { input, timeout: timeoutMs, cancelSignal: signal, reject: false })
    if ((r as { code?: string }).code === 'ENOENT') throw new WgnatError(`nft not found: install nftables (tried ${quote(nftPath)})`, 69)
    if (r.timedOut) throw new WgnatError(`nft ${args.join(' ')}: timed out after ${timeoutMs} ms`)
    const stderr = String(r.stderr)
    if (r.exitCode !== 0 && NOT_PERMITTED.test(stderr)) throw new WgnatError('nft: not permitted to change the firewall: run as root or with CAP_NET_ADMIN', 77)
    return { ok: r.exitCode === 0, stdout: String(r.stdout), stderr }
  }
  const listJson = async (args: string[], opts: { signal?: AbortSignal } = {}): Promise<unknown> => {
    const r = await run(['-j', ...args], undefined, opts.signal)
    if (r.ok) return JSON.parse(r.stdout) as unknown
    if (MISSING.test(r.stderr)) return undefined
    throw new WgnatError(`nft ${args.join(' ')}: ${quote(firstError(r.stderr))}`)
  }
  return {
    async apply (script, opts = {}) {
      const r = await run(['-f', '-'], script, opts.signal)
      if (!r.ok) throw new WgnatError(`nft -f: ${quote(firstError(r.stderr))}`)
    },
    listJson,
    async listTable (family, name, opts = {}) {
      return await listJson(['list', 'table', family, name], opts)
    },
    async removeStale (family, table) {
      try { return (await run(['delete', 'table', family, table], undefined)).ok } catch { return false }
    }
  }
}

function firstError (stderr: string): string {
  return stderr.split('\n').find((l) => /Error/i.test(l)) ?? stderr.split('\n').find((l) => l.trim() !== '') ?? ''
}

/**
 * The first lines of a script that replaces the table `inet <table>` whole in one transaction: declare it (so the
 * delete cannot fail when it is missing, say after a crash), delete it; the rest of the script declares it anew.
 */
export function replaceTableLines (table: string): string[] {
  return [`table inet ${table} {}`, `delete table inet ${table}`]
}

/** A script that removes the table `inet <table>`, whether it exists or not. */
export function removeTableScript (table: string): string {
  return replaceTableLines(table).join('\n') + '\n'
}
