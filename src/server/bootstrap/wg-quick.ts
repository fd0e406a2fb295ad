import { execa, type ExecaError } from 'execa'
import { WgnatError, quote } from '../../shared/errors.js'

/** Upper bound for one `wg-quick up` (it may start wireguard-go and run PostUp hooks). */
const WG_QUICK_TIMEOUT_MS = 30_000

/**
 * `wg-quick up <config path>`: kernel WireGuard when the module is there, otherwise wg-quick's own fallback to
 * userspace `wireguard-go` (or $WG_QUICK_USERSPACE_IMPLEMENTATION). The environment is passed through unchanged.
 */
export async function wgQuickUp (path: string, signal?: AbortSignal): Promise<void> {
  try {
    await execa('wg-quick', ['up', path], { timeout: WG_QUICK_TIMEOUT_MS, cancelSignal: signal })
  } catch (err) {
    const e = err as ExecaError
    if ((e as { code?: string }).code === 'ENOENT') throw new WgnatError('wg-quick not found: install wireguard-tools', 69)
    const lines = String(e.stderr ?? '').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('[#]') && !/^[\u2502\u250c\u2514]/.test(l))
    const why = lines.at(-1) ?? `exit code ${String(e.exitCode)}`
    const hint = /Unknown device type|Protocol not supported/i.test(why) ? ' (no WireGuard kernel module and no wireguard-go to fall back to)' : ''
    throw new WgnatError(`wg-quick up ${quote(path)} failed: ${quote(why)}${hint}`, 69)
  }
}
