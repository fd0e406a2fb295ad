import { link, readFile, rm, stat, writeFile } from 'node:fs/promises'
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

/** Tells apart the files of locks taken at once in one process. */
let taken = 0
/** A lock file with no pid in it older than this was left by a command that died while creating it: taken over. */
const EMPTY_LOCK_STALE_MS = 5000

/**
 * Take the hub's lock, `<state-dir>/<interface>.lock`, holding the owner's pid. Every command that reads and changes
 * the hub's peers holds it, so two `add-peer` at once never pick one address. The lock appears with its pid already in
 * it (written to a file of our own, then hard-linked to the lock's name, which fails if the lock exists), so a
 * command killed at any moment never leaves an empty lock. A lock whose owner is gone (killed) is taken over, and so
 * is one with no pid in it after {@link EMPTY_LOCK_STALE_MS} (left by an older wgnat).
 */
export async function lockState (stateDir: string, iface: string, opts: { waitMs?: number, signal?: AbortSignal } = {}): Promise<StateLock> {
  const path = join(stateDir, `${iface}.lock`)
  makeDirSync(stateDir, 0o700)
  const deadline = Date.now() + (opts.waitMs ?? LOCK_WAIT_MS)
  let mine: string
  try {
    mine = await pidFile(path)
  } catch (err) {
    throw new WgnatError(`cannot create lock ${quote(path)}: ${messageOf(err)}`, EXIT_CANTCREAT)
  }
  try {
    for (;;) {
      try {
        await link(mine, path)
        return { async release () { await rm(path, { force: true }) } }
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new WgnatError(`cannot create lock ${quote(path)}: ${messageOf(err)}`, EXIT_CANTCREAT)
      }
      // The lock as it is now; gone meanwhile (released): try again at once.
      const seen = await stat(path).catch(() => undefined)
      const text = seen === undefined ? undefined : await readFile(path, 'utf8').catch(() => undefined)
      if (seen === undefined || text === undefined) continue
      const owner = Number(text.trim())
      const hasPid = /^\d+$/.test(text.trim()) && owner > 0
      if (hasPid ? !alive(owner) : Date.now() - seen.mtimeMs > EMPTY_LOCK_STALE_MS) {
        await takeOver(path, { ino: seen.ino, mtimeMs: seen.mtimeMs, text })
        continue
      }
      const holder = hasPid ? `pid ${owner}` : 'a command that has not written a pid in it'
      if (Date.now() > deadline) throw new WgnatError(`${quote(path)} is held by ${holder}: another wgnat-server command is changing ${quote(iface)}`, EXIT_CANTCREAT)
      await sleep(LOCK_RETRY_MS, opts.signal)
    }
  } finally {
    await rm(mine, { force: true })
  }
}

/** A file of our own beside `path` holding our pid, to be hard-linked to a lock's name: its name. */
async function pidFile (path: string): Promise<string> {
  const name = `${path}.${process.pid}.${++taken}.tmp`
  await writeFile(name, `${process.pid}\n`, { mode: 0o600 })
  return name
}

/**
 * Remove a stale lock, the one we judged (its inode, time and text) and no other. Commands taking over hold a guard
 * file (`<lock>.takeover`, made like the lock) while they look again and remove: the lock may have been taken over
 * and taken anew meanwhile (an inode is soon reused), and without the guard two commands could each remove the
 * other's. A guard left by a command that died is removed after {@link EMPTY_LOCK_STALE_MS}.
 */
async function takeOver (path: string, judged: { ino: number, mtimeMs: number, text: string }): Promise<void> {
  const guard = `${path}.takeover`
  const mine = await pidFile(path)
  try {
    try {
      await link(mine, guard)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const st = await stat(guard).catch(() => undefined)
      if (st !== undefined && Date.now() - st.mtimeMs > EMPTY_LOCK_STALE_MS) await rm(guard, { force: true })
      return
    }
    try {
      const now = await stat(path).catch(() => undefined)
      const text = now === undefined ? undefined : await readFile(path, 'utf8').catch(() => undefined)
      if (now !== undefined && now.ino === judged.ino && now.mtimeMs === judged.mtimeMs && text === judged.text) await rm(path, { force: true })
    } finally {
      await rm(guard, { force: true })
    }
  } finally {
    await rm(mine, { force: true })
  }
}

function alive (pid: number): boolean {
  try { process.kill(pid, 0); return true } catch (err) { return (err as NodeJS.ErrnoException).code === 'EPERM' }
}
