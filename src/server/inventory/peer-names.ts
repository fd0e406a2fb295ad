import { open, readFile, rename } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import * as z from 'zod'
import { WgnatError, messageOf, quote } from '../../shared/errors.js'
import { wgKeySchema } from '../../shared/protocol.js'

import { PEER_NAME_RE } from '../../shared/peer-name.js'
import { makeDirSync } from '../../shared/make-dir.js'

export { PEER_NAME_RE }

export const peerNameSchema = z.string().regex(PEER_NAME_RE)

const namesFileSchema = z.object({
  version: z.literal(1),
  interface: z.string(),
  /** Public key -> name. Public keys only: no key material is ever stored here. */
  peers: z.record(wgKeySchema, z.object({ name: peerNameSchema }))
})

/** Where the hub keeps its peers' names: `<state-dir>/<interface>.names.json`. */
export function peerNamesPath (stateDir: string, iface: string): string {
  return join(stateDir, `${iface}.names.json`)
}

/**
 * The hub's peer names (public key -> name), kept in wgnat's own state rather than as comments in wg0.conf, which
 * `wg-quick` with `SaveConfig = true` rewrites. A missing file is an empty map: peers added by hand have no name.
 */
export async function readPeerNames (stateDir: string, iface: string): Promise<Map<string, string>> {
  const path = peerNamesPath(stateDir, iface)
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map()
    throw new WgnatError(`cannot read peer names ${quote(path)}: ${messageOf(err)}`, 65)
  }
  let json: unknown
  try { json = JSON.parse(text) } catch { throw new WgnatError(`peer names ${quote(path)}: not JSON`, 65) }
  const parsed = namesFileSchema.safeParse(json)
  if (!parsed.success || parsed.data.interface !== iface) throw new WgnatError(`peer names ${quote(path)}: not a wgnat names file for ${quote(iface)}`, 65)
  return new Map(Object.entries(parsed.data.peers).map(([key, v]) => [key, v.name]))
}

/** Write the names atomically: temporary file, fsync, rename. */
export async function writePeerNames (stateDir: string, iface: string, names: ReadonlyMap<string, string>): Promise<void> {
  const path = peerNamesPath(stateDir, iface)
  makeDirSync(dirname(path), 0o700)
  const peers = Object.fromEntries([...names].sort(([a], [b]) => a < b ? -1 : 1).map(([key, name]) => [key, { name }]))
  const tmp = `${path}.${process.pid}.tmp`
  const fh = await open(tmp, 'w', 0o600)
  try {
    await fh.writeFile(JSON.stringify({ version: 1, interface: iface, peers }, null, 2) + '\n')
    await fh.sync()
  } finally {
    await fh.close()
  }
  await rename(tmp, path)
}
