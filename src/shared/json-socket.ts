import { lstatSync, rmSync } from 'node:fs'
import { createConnection, createServer, type Server } from 'node:net'
import { dirname } from 'node:path'
import { WgnatError, messageOf, quote } from './errors.js'
import { makeDirSync } from './make-dir.js'

/**
 * Serve `value()` as one line of JSON to whoever connects to the Unix socket at `path`: the daemons' status sockets.
 * The directory is created 0700 and the socket 0600, so only root (the daemon's user) can ask. The file calls are
 * synchronous: the client's socket comes up beside its first sync, where hops to libuv's thread pool wait for a
 * busy machine's CPU (state-store.ts).
 */
export async function serveJson (path: string, value: () => unknown): Promise<{ close: () => Promise<void> }> {
  makeDirSync(dirname(path), 0o700)
  removeStaleSocket(path)
  const server: Server = createServer((conn) => {
    conn.on('error', () => {})
    conn.end(JSON.stringify(value()) + '\n')
  })
  const oldMask = process.umask(0o177)
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(path, () => { server.off('error', reject); resolve() })
    })
  } finally {
    process.umask(oldMask)
  }
  return {
    async close () {
      await new Promise<void>((resolve) => server.close(() => resolve()))
      rmSync(path, { force: true })
    }
  }
}

/**
 * A socket left at `path` (a daemon that died) is removed before listening; anything else there is never touched: a
 * `--status-socket` that names a config file by mistake fails, naming it, and the file stays.
 */
function removeStaleSocket (path: string): void {
  let isSocket: boolean
  try {
    isSocket = lstatSync(path).isSocket()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
    throw err
  }
  if (!isSocket) throw new WgnatError(`${quote(path)} exists and is not a socket; not replacing it`)
  rmSync(path, { force: true })
}

/**
 * Read the JSON a daemon serves on `path`; `daemon` names it in the errors. `looksRight` checks the answer's outline
 * (another daemon's socket, or something else listening there, answers otherwise): what fails it is refused in one
 * line instead of reaching a renderer that expects the daemon's structure.
 */
export async function fetchJson<T> (path: string, daemon: string, looksRight: (v: unknown) => v is T, timeoutMs = 3000): Promise<T> {
  const value = await readJson(path, daemon, timeoutMs)
  if (!looksRight(value)) throw new WgnatError(`status socket ${quote(path)} did not answer with a ${daemon} status (another daemon's socket?)`)
  return value
}

/** A plain object (not null, not an array) whose `keys` are of these types. */
export function hasFields (v: unknown, fields: Record<string, 'string' | 'object' | 'array'>): boolean {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false
  const o = v as Record<string, unknown>
  return Object.entries(fields).every(([k, type]) => type === 'array' ? Array.isArray(o[k]) : type === 'object' ? typeof o[k] === 'object' && o[k] !== null && !Array.isArray(o[k]) : typeof o[k] === type)
}

async function readJson (path: string, daemon: string, timeoutMs: number): Promise<unknown> {
  return await new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    const conn = createConnection(path)
    conn.setTimeout(timeoutMs, () => conn.destroy(new Error(`no answer within ${timeoutMs}ms`)))
    conn.on('data', (c: Buffer) => chunks.push(c))
    conn.on('end', () => {
      try { resolve(JSON.parse(Buffer.concat(chunks).toString('utf8'))) } catch { reject(new WgnatError(`status socket ${quote(path)} sent something that is not JSON`)) }
    })
    conn.on('error', (err) => {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'ENOENT' || code === 'ECONNREFUSED') reject(new WgnatError(`no ${daemon} running for this interface (no status socket at ${quote(path)})`, 69))
      else if (code === 'EACCES') reject(new WgnatError(`not permitted to read ${quote(path)}: run as root`, 77))
      else reject(new WgnatError(`status socket ${quote(path)}: ${messageOf(err)}`))
    })
  })
}
