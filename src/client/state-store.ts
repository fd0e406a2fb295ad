import { closeSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import * as z from 'zod/mini'
import { EXIT_CANTCREAT, EXIT_DATAERR, WgnatError, messageOf, quote } from '../shared/errors.js'
import { wgKeySchema } from '../shared/protocol.js'
import { makeDirSync } from '../shared/make-dir.js'

const stateSchema = z.object({
  version: z.literal(1),
  interface: z.string(),
  /** Public keys of the peers this client added to the interface: the only peers it ever changes or removes. */
  managed: z.array(wgKeySchema)
})

/**
 * The client's memory across restarts: which peers it added. Public keys only; no key material is ever stored.
 *
 * Written before a tick adds peers, so a client that dies in between never forgets a peer it added: that is the
 * whole need, and the page cache serves it. The file is replaced atomically (a temporary file renamed over it), so a
 * reader or a crashed client sees the old set or the new one, never half a file; it is not fsynced. The peers it
 * lists are runtime state of the interface, and a machine that loses power loses them with it (WireGuard keeps no
 * peer added by `wg set` across a reboot), so a durable record of them would protect nothing, and an fsync cost
 * 5-80 ms on the path of the first attempts while a mesh forms (issue 16).
 *
 * Its reads and writes are synchronous: a few hundred bytes (50 KB with 1,000 peers) to the page cache take
 * microseconds, where each of Node's asynchronous file calls is a hop to libuv's thread pool and back (starting that
 * pool on the first). With many clients starting on a busy machine each hop waited for the CPU, and a save before
 * the first attempts' `wg set` took 7-70 ms in one 16-client run (1-46 ms synchronous: the machine preempts either).
 */
export class StateStore {
  readonly path: string
  /** The set last loaded or written (sorted keys, joined): saving the same set again writes nothing. */
  private written: string | undefined
  constructor (readonly dir: string, readonly iface: string) {
    this.path = join(dir, `${iface}.json`)
  }

  /** Make the directory if it is missing, at start: a state directory that cannot be made fails the start, naming it. */
  prepare (): void {
    try {
      makeDirSync(this.dir, 0o700)
    } catch (err) {
      throw new WgnatError(`cannot use state directory ${quote(this.dir)}: ${messageOf(err)}`, EXIT_CANTCREAT)
    }
  }

  async load (): Promise<Set<string>> {
    let text: string
    try {
      text = readFileSync(this.path, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Set()
      throw new WgnatError(`cannot read state file ${quote(this.path)}: ${messageOf(err)}`)
    }
    // Empty: the rename of a file whose data had not reached the disk yet, and a power loss (it is not fsynced, see
    // above). It held only peers the interface lost with the power too: as if there were no file.
    if (text.trim() === '') return new Set()
    const managed = parseStateFile(text, this.path, this.iface)
    this.written = [...managed].sort().join(',')
    return managed
  }

  /** Replace the file atomically (temporary file, then rename); nothing when the set is the one last loaded or written. */
  async save (managed: Iterable<string>): Promise<void> {
    const keys = [...managed].sort()
    const signature = keys.join(',')
    if (signature === this.written) return
    makeDirSync(this.dir, 0o700)
    const tmp = `${this.path}.${process.pid}.tmp`
    const data = Buffer.from(JSON.stringify({ version: 1, interface: this.iface, managed: keys }, null, 2) + '\n')
    const fd = openSync(tmp, 'w', 0o600)
    try {
      for (let at = 0; at < data.length;) at += writeSync(fd, data, at)
    } finally {
      closeSync(fd)
    }
    renameSync(tmp, this.path)
    this.written = signature
  }
}

/** The managed keys in a state file's text; a WgnatError naming the file for anything that is not one for `iface`. */
export function parseStateFile (text: string, path: string, iface: string): Set<string> {
  let json: unknown
  try { json = JSON.parse(text) } catch { throw new WgnatError(`state file ${quote(path)} is not JSON; move it away to start afresh`, EXIT_DATAERR) }
  const parsed = stateSchema.safeParse(json)
  if (!parsed.success || parsed.data.interface !== iface) throw new WgnatError(`state file ${quote(path)} is not a wgnat state file for ${quote(iface)}; move it away to start afresh`, EXIT_DATAERR)
  return new Set(parsed.data.managed)
}
