import { open, rename, rm } from 'node:fs/promises'
import { dirname } from 'node:path'
import { makeDirSync } from './make-dir.js'

/**
 * Write a file atomically: a temporary file next to it (mode `mode`), fsync, rename over the target, fsync the
 * directory. A reader sees the old or the new content, never half of it; a crash leaves at most a `.tmp` file.
 */
export async function writeFileAtomic (path: string, text: string, mode = 0o600, dirMode = 0o700): Promise<void> {
  makeDirSync(dirname(path), dirMode)
  const tmp = `${path}.${process.pid}.tmp`
  const fh = await open(tmp, 'w', mode)
  try {
    await fh.chmod(mode)
    await fh.writeFile(text)
    await fh.sync()
  } catch (err) {
    await fh.close()
    await rm(tmp, { force: true })
    throw err
  }
  await fh.close()
  await rename(tmp, path)
  const dir = await open(dirname(path), 'r')
  try { await dir.sync() } catch { /* some filesystems cannot fsync a directory */ } finally { await dir.close() }
}
