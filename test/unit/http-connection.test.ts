import { createServer as createHttpServer, type Server as HttpServer } from 'node:http'
import { createServer, type Server, type Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { HttpConnection, REUSE_RETRY_WINDOW_MS, keepAliveTimeoutMs } from '../../src/client/http-connection.js'
import { RegistryClient } from '../../src/client/registry-client.js'

// The client's own HTTP/1.1 calls (http-connection.ts), against Node's HTTP server and against raw sockets that
// answer the way a broken or hostile registry might.

const servers: Array<Server | HttpServer> = []
afterEach(async () => {
  for (const s of servers.splice(0)) {
    if ('closeAllConnections' in s) s.closeAllConnections()
    await new Promise<void>((resolve) => s.close(() => resolve()))
  }
})

async function listen<S extends Server | HttpServer> (server: S): Promise<number> {
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return (server.address() as { port: number }).port
}

/** A raw server: `answer` gets each connection and the request text as it arrives. */
async function rawServer (answer: (socket: Socket, request: string, index: number) => void): Promise<{ port: number, connections: () => number }> {
  let n = 0
  const sockets = new Set<Socket>()
  const server = createServer((socket) => {
    const index = n++
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    let text = ''
    socket.on('data', (d) => {
      text += d.toString('latin1')
      if (text.includes('\r\n\r\n')) { const t = text; text = ''; answer(socket, t, index) }
    })
  })
  const close = server.close.bind(server)
  server.close = (cb) => { for (const s of sockets) s.destroy(); return close(cb) }
  return { port: await listen(server), connections: () => n }
}

const TABLE = JSON.stringify({ epoch: 'e', version: 2, now: 1, full: false, self: { publicKey: `${'A'.repeat(43)}=`, endpoint: null, allowedIps: [], latestHandshake: 0, online: false }, peers: [], removed: [] })

describe('HttpConnection', () => {
  it('sends the request line, Host and a JSON body, and reads the answer', async () => {
    let seen: { method?: string, url?: string, host?: string, type?: string, body: string } = { body: '' }
    const port = await listen(createHttpServer((req, res) => {
      let body = ''
      req.on('data', (d: Buffer) => { body += d.toString() })
      req.on('end', () => { seen = { method: req.method, url: req.url, host: req.headers.host, type: req.headers['content-type'], body }; res.end('{"ok":true}') })
    }))
    const http = new HttpConnection('127.0.0.1', port)
    const answer = await http.call({ method: 'POST', path: '/v1/announce', body: '{"natClass":"easy"}', maxBytes: 1000, timeoutMs: 2000 })
    expect(answer).toEqual({ status: 200, body: '{"ok":true}' })
    expect(seen).toEqual({ method: 'POST', url: '/v1/announce', host: `127.0.0.1:${port}`, type: 'application/json', body: '{"natClass":"easy"}' })
    http.close()
  })

  it('keeps the connection for the next call, and opens a new one when the registry closed it meanwhile', async () => {
    const { port, connections } = await rawServer((socket, _req, index) => {
      socket.write('HTTP/1.1 200 OK\r\nconnection: keep-alive\r\ncontent-length: 2\r\n\r\nok')
      // The second connection is closed by the server after its first answer.
      if (index === 1) setTimeout(() => socket.end(), 20)
    })
    const http = new HttpConnection('127.0.0.1', port)
    const call = async (): Promise<string> => (await http.call({ method: 'GET', path: '/', maxBytes: 100, timeoutMs: 2000 })).body
    expect(await call()).toBe('ok')
    expect(await call()).toBe('ok')
    expect(connections()).toBe(1)
    http.close()
    expect(await call()).toBe('ok')
    expect(connections()).toBe(2)
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(await call()).toBe('ok')
    expect(connections()).toBe(3)
    http.close()
  })

  it('makes a call again on a new connection when a kept one closes without answering it', async () => {
    const { port, connections } = await rawServer((socket, _req, index) => {
      // The first connection answers once, then closes at the next request without a word (the registry's idle
      // timeout racing our reuse).
      if (index === 0 && socket.bytesWritten > 0) { socket.destroy(); return }
      socket.write('HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfirst')
    })
    const http = new HttpConnection('127.0.0.1', port)
    expect((await http.call({ method: 'GET', path: '/', maxBytes: 100, timeoutMs: 2000 })).body).toBe('first')
    expect((await http.call({ method: 'GET', path: '/', maxBytes: 100, timeoutMs: 2000 })).body).toBe('first')
    expect(connections()).toBe(2)
  })

  it('does not make a call again when a kept connection fails later than a reuse race (a long-poll finding the hub gone)', async () => {
    const { port, connections } = await rawServer((socket, _req, index) => {
      if (index === 0 && socket.bytesWritten > 0) { setTimeout(() => socket.resetAndDestroy(), REUSE_RETRY_WINDOW_MS + 200); return }
      socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok')
    })
    const http = new HttpConnection('127.0.0.1', port)
    await http.call({ method: 'GET', path: '/', maxBytes: 100, timeoutMs: 5000 })
    await expect(http.call({ method: 'GET', path: '/', maxBytes: 100, timeoutMs: 5000 })).rejects.toMatchObject({ stage: 'connect' })
    expect(connections()).toBe(1)
  })

  it('skips an interim answer (100 Continue) and reads the real one', async () => {
    const { port } = await rawServer((socket) => { socket.write('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nreal') })
    const http = new HttpConnection('127.0.0.1', port)
    expect(await http.call({ method: 'GET', path: '/', maxBytes: 100, timeoutMs: 2000 })).toEqual({ status: 200, body: 'real' })
    http.close()
  })

  it('keeps no connection once closed, not even one whose call ends after', async () => {
    const { port, connections } = await rawServer((socket) => { setTimeout(() => socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok'), 50) })
    const http = new HttpConnection('127.0.0.1', port)
    const call = http.call({ method: 'GET', path: '/', maxBytes: 100, timeoutMs: 2000 })
    http.close()
    expect((await call).body).toBe('ok')
    await http.call({ method: 'GET', path: '/', maxBytes: 100, timeoutMs: 2000 })
    expect(connections()).toBe(2)
  })

  it('does not make a call again when a fresh connection closes without an answer', async () => {
    const { port, connections } = await rawServer((socket) => { socket.destroy() })
    const http = new HttpConnection('127.0.0.1', port)
    await expect(http.call({ method: 'GET', path: '/', maxBytes: 100, timeoutMs: 2000 })).rejects.toMatchObject({ stage: 'connect' })
    expect(connections()).toBe(1)
  })

  it('reads chunked answers and answers that end with the connection', async () => {
    const { port } = await rawServer((socket, req) => {
      if (req.startsWith('GET /chunked')) socket.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n')
      else socket.end('HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nto the end')
    })
    const http = new HttpConnection('127.0.0.1', port)
    expect((await http.call({ method: 'GET', path: '/chunked', maxBytes: 100, timeoutMs: 2000 })).body).toBe('abcde')
    expect((await http.call({ method: 'GET', path: '/close', maxBytes: 100, timeoutMs: 2000 })).body).toBe('to the end')
    http.close()
  })

  it('reads the registry\'s keep-alive timeout', () => {
    expect(keepAliveTimeoutMs(['Connection', 'keep-alive', 'Keep-Alive', 'timeout=5'])).toBe(5000)
    expect(keepAliveTimeoutMs(['keep-alive', 'max=100, timeout=2'])).toBe(2000)
    expect(keepAliveTimeoutMs(['keep-alive', 'max=100'])).toBeUndefined()
    expect(keepAliveTimeoutMs(['content-length', '5'])).toBeUndefined()
  })
})

describe('RegistryClient over HttpConnection: every failure is one RegistryError line', () => {
  it('a table, and the keep-alive connection reused by the next call', async () => {
    const { port, connections } = await rawServer((socket) => {
      socket.write(`HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nkeep-alive: timeout=5\r\ncontent-length: ${TABLE.length}\r\n\r\n${TABLE}`)
    })
    const client = new RegistryClient({ address: '127.0.0.1', port })
    expect((await client.table(0, 0)).version).toBe(2)
    expect((await client.table(0, 0)).version).toBe(2)
    expect(connections()).toBe(1)
  })

  it('a refusal quotes the registry\'s error', async () => {
    const port = await listen(createHttpServer((_req, res) => { res.writeHead(403, { 'content-type': 'application/json' }).end('{"error":"not a peer of wg0"}') }))
    await expect(new RegistryClient({ address: '127.0.0.1', port }).table(0, 0)).rejects.toThrow("registry answered 403: 'not a peer of wg0'")
  })

  it('nothing listening', async () => {
    const server = createServer()
    const port = await listen(server)
    await new Promise<void>((resolve) => server.close(() => resolve()))
    servers.splice(servers.indexOf(server), 1)
    await expect(new RegistryClient({ address: '127.0.0.1', port }).table(0, 0)).rejects.toThrow(`cannot reach the registry at http://127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}`)
  })

  it('an answer over the size limit', async () => {
    const { port } = await rawServer((socket) => { socket.write(`HTTP/1.1 200 OK\r\ncontent-length: 5000\r\n\r\n${'x'.repeat(5000)}`) })
    await expect(new RegistryClient({ address: '127.0.0.1', port, maxBytes: 1000 }).table(0, 0)).rejects.toThrow('registry response over 1000 bytes')
  })

  it('something that is not HTTP', async () => {
    const { port } = await rawServer((socket) => { socket.write('SSH-2.0-OpenSSH_9.2\r\n\r\n') })
    await expect(new RegistryClient({ address: '127.0.0.1', port }).table(0, 0)).rejects.toThrow(/^registry response failed: not an HTTP\/1.1 answer/)
  })

  it('an answer cut short', async () => {
    const { port } = await rawServer((socket) => { socket.end('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{"epoch"') })
    await expect(new RegistryClient({ address: '127.0.0.1', port }).table(0, 0)).rejects.toThrow('registry response failed: the connection closed before the answer ended')
  })

  it('no answer within the deadline', async () => {
    const { port } = await rawServer(() => {})
    await expect(new RegistryClient({ address: '127.0.0.1', port, timeoutMs: 300 }).table(0, 0)).rejects.toThrow(`registry at http://127.0.0.1:${port} did not answer within 0s`)
  })

  it('an abort ends a held long-poll at once', async () => {
    const { port } = await rawServer(() => {})
    const ac = new AbortController()
    const started = Date.now()
    const call = new RegistryClient({ address: '127.0.0.1', port }).table(1, 30, ac.signal)
    setTimeout(() => ac.abort(), 50)
    await expect(call).rejects.toMatchObject({ name: 'AbortError' })
    expect(Date.now() - started).toBeLessThan(2000)
  })
})
