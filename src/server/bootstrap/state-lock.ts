import { open, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { EXIT_CANTCREAT, WgnatError, messageOf, quote } from '../../shared/errors.js'
import { sleep } from '../../shared/sleep.js'
import { makeDirSync } from '../../shared/make-dir.js'

/** How long a command waits for another one holding the lock before giving up. */
export const LOCK_WAIT_MS = 30_000
/** How often a waiting command retries. */
const LOCK_RETRY_MS = 50

export interface StateLock {
  release (): Promise<void>
}

/**
 * Take the hub's lock, `<state-dir>/<interface>.lock`, created with O_EXCL and holding the owner's pid. Every command
 * that reads and changes the hub's peers holds it, so two `add-peer` at once never pick one address. A lock whose
 * owner is gone (killed) is taken over.
 */
export async function lockState (stateDir: string, iface: string, opts: { waitMs?: number, signal?: AbortSignal } = {}): Promise<StateLock> {
  const path = join(stateDir, `${iface}.lock`)
  makeDirSync(stateDir, 0o700)
  const deadline = Date.now() + (opts.waitMs ?? LOCK_WAIT_MS)
  for (;;) {
    try {
      const fh = await open(path, 'wx', 0o600)
      await fh.writeFile(`${process.pid}\n`)
      await fh.close()
      return { async release () { await rm(path, { force: true }) } }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new WgnatError(`cannot create lock ${quote(path)}: ${messageOf(err)}`, EXIT_CANTCREAT)
    }
    const owner = Number((await readFile(path, 'utf8').catch(() => '')).trim())
    if (Number.isInteger(owner) && owner > 0 && !alive(owner)) {
      // The holder died without releasing: remove its lock (only if it is still that one) and try again.
      const again = Number((await readFile(path, 'utf8').catch(() => '')).trim())
      if (again === owner) await rm(path, { force: true })
      continue
    }
    if (Date.now() > deadline) throw new WgnatError(`${quote(path)} is held by pid ${owner}: another wgnat-server command is changing ${quote(iface)}`, EXIT_CANTCREAT)
    await sleep(LOCK_RETRY_MS, opts.signal)
  }
}

function alive (pid: number): boolean {
  try { process.kill(pid, 0); return true } catch (err) { return (err as NodeJS.ErrnoException).code === 'EPERM' }
}
