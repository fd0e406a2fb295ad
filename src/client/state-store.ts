import { mkdir, open, readFile, rename } from 'node:fs/promises'
import { join } from 'node:path'
import * as z from 'zod'
import { WgnatError, messageOf, quote } from '../shared/errors.js'
import { wgKeySchema } from '../shared/protocol.js'

const stateSchema = z.object({
  version: z.literal(1),
  interface: z.string(),
  /** Public keys of the peers this client added to the interface: the only peers it ever changes or removes. */
  managed: z.array(wgKeySchema)
})

/** The client's memory across restarts: which peers it added. Public keys only; no key material is ever stored. */
export class StateStore {
  readonly path: string
  constructor (readonly dir: string, readonly iface: string) {
    this.path = join(dir, `${iface}.json`)
  }

  async load (): Promise<Set<string>> {
    let text: string
    try {
      text = await readFile(this.path, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Set()
      throw new WgnatError(`cannot read state file ${quote(this.path)}: ${messageOf(err)}`)
    }
    return parseStateFile(text, this.path, this.iface)
  }

  /** Write atomically (temporary file, fsync, then rename), so a crash never leaves half a file. */
  async save (managed: Iterable<string>): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 })
    const tmp = `${this.path}.${process.pid}.tmp`
    const file = await open(tmp, 'w', 0o600)
    try {
      await file.writeFile(JSON.stringify({ version: 1, interface: this.iface, managed: [...managed].sort() }, null, 2) + '\n')
      await file.sync()
    } finally {
      await file.close()
    }
    await rename(tmp, this.path)
  }
}

/** The managed keys in a state file's text; a WgnatError naming the file for anything that is not one for `iface`. */
export function parseStateFile (text: string, path: string, iface: string): Set<string> {
  let json: unknown
  try { json = JSON.parse(text) } catch { throw new WgnatError(`state file ${quote(path)} is not JSON; move it away to start afresh`) }
  const parsed = stateSchema.safeParse(json)
  if (!parsed.success || parsed.data.interface !== iface) throw new WgnatError(`state file ${quote(path)} is not a wgnat state file for ${quote(iface)}; move it away to start afresh`)
  return new Set(parsed.data.managed)
}
