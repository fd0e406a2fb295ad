import { stat } from 'node:fs/promises'
import { messageOf } from '../../shared/errors.js'
import type { Logger } from '../../shared/log.js'
import { peerNamesPath, readPeerNames } from './peer-names.js'

/**
 * The hub's peer names for the registry, re-read only when the file changes (its mtime, size or inode): one `stat`
 * per poll. A missing file is no names; an unreadable one keeps the last good names and is told once.
 */
export function watchPeerNames (stateDir: string, iface: string, logger: Logger): () => Promise<ReadonlyMap<string, string>> {
  const path = peerNamesPath(stateDir, iface)
  let names: ReadonlyMap<string, string> = new Map()
  let seen = ''
  let failing = false
  return async () => {
    let stamp: string
    try {
      const s = await stat(path)
      stamp = `${s.ino}:${s.size}:${s.mtimeMs}`
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return names
      stamp = 'missing'
    }
    if (stamp === seen) return names
    try {
      names = await readPeerNames(stateDir, iface)
      seen = stamp
      if (failing) logger.info(`reading peer names works again (${names.size})`)
      failing = false
    } catch (err) {
      if (!failing) logger.warn(`peer names not reloaded, serving the last good ones: ${messageOf(err)}`)
      failing = true
    }
    return names
  }
}
