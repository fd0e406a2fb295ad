import { mkdirSync, statSync } from 'node:fs'
import { dirname } from 'node:path'
import { quote } from './errors.js'

/**
 * `mkdir -p`: make `dir` and whatever parents it lacks, each with `mode` (less the umask); nothing when it is already
 * a directory.
 *
 * Not Node's `mkdir(dir, { recursive: true })`: that loops forever when a parent exists but the kernel still says
 * ENOENT for the child (a path under /proc or /sys). It steps back to the parent on ENOENT and forward again on
 * EEXIST: the synchronous call holds a core at 100 % and the event loop with it (no log line, no signal handled), the
 * promise never settles. Here a child still not found once its parent exists is the error it is. A path (or parent)
 * that exists as something else than a directory, a dangling symlink too, fails with ENOTDIR, naming it.
 */
export function makeDirSync (dir: string, mode: number): void {
  try {
    mkdirSync(dir, { mode })
    return
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EEXIST') { if (isDirectory(dir)) return; throw notADirectory(dir) }
    if (code !== 'ENOENT' || dirname(dir) === dir) throw err
  }
  makeDirSync(dirname(dir), mode)
  try {
    mkdirSync(dir, { mode })
  } catch (err) {
    // Made meanwhile by someone else: as good as made here.
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') { if (isDirectory(dir)) return; throw notADirectory(dir) }
    throw err
  }
}

/** Is `path` a directory (following symlinks)? A path that cannot be looked at is not. */
function isDirectory (path: string): boolean {
  try { return statSync(path).isDirectory() } catch { return false }
}

function notADirectory (dir: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${quote(dir)} exists and is not a directory`), { code: 'ENOTDIR' })
}
