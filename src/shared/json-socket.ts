import { mkdirSync, rmSync } from 'node:fs'
import { createConnection, createServer, type Server } from 'node:net'
import { dirname } from 'node:path'
import { WgnatError, messageOf, quote } from './errors.js'

/**
 * Serve `value()` as one line of JSON to whoever connects to the Unix socket at `path`: the daemons' status sockets.
 * The directory is created 0700 and the socket 0600, so only root (the daemon's user) can ask. The file calls are
 * synchronous: the client's socket comes up beside its first sync, where hops to libuv's thread pool wait for a
 * busy machine's CPU (state-store.ts).
 */
export async function serveJson (path: string, value: () => unknown): Promise<{ close: () => Promise<void> }> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
  rmSync(path, { force: true })
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

/** Read the JSON a daemon serves on `path`; `daemon` names it in the error when none is running. */
export async function fetchJson (path: string, daemon: string, timeoutMs = 3000): Promise<unknown> {
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
