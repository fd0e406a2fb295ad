import { request } from 'node:http'
import { connect, type Socket } from 'node:net'
import { HTTPParser } from 'http-parser-js'
import { afterEach, describe, expect, it } from 'vitest'
import { MAX_HEAD_BYTES, MAX_PIPELINED_REQUESTS, listenLeanHttp, type HttpExchange, type LeanHttpInit, type LeanHttpServer } from '../../src/server/registry/lean-http.js'

const INIT: LeanHttpInit = { keepAliveTimeoutMs: 2000, headersTimeoutMs: 2000, requestTimeoutMs: 4000, bodyLimit: (method) => method === 'PUT' ? 64 * 1024 : 100 }

let server: LeanHttpServer | undefined
let port = 0
afterEach(async () => { await server?.close(); server = undefined })

/** A server whose handler answers `<METHOD> <target> <body>` as text, or holds requests to /hold until released. */
async function start (init: Partial<LeanHttpInit> = {}, handler?: (ex: HttpExchange) => void): Promise<{ held: HttpExchange[], seen: HttpExchange[] }> {
  const held: HttpExchange[] = []
  const seen: HttpExchange[] = []
  server = await listenLeanHttp('127.0.0.1', 0, { ...INIT, ...init }, handler ?? ((ex) => {
    seen.push(ex)
    if (ex.target.startsWith('/hold')) { held.push(ex); return }
    if (ex.target === '/throw') throw new Error('boom')
    ex.respond(200, { 'content-type': 'text/plain', 'x-test': 'yes' }, `${ex.method} ${ex.target} ${ex.body.toString()}`)
  }))
  port = (server.server.address() as { port: number }).port
  return { held, seen }
}

/** Raw bytes in, raw text out: what came back before the server closed the connection or `waitMs` passed. */
function raw (chunks: Array<string | Buffer>, opts: { waitMs?: number, gapMs?: number, socket?: (s: Socket) => void } = {}): Promise<{ text: string, closed: boolean }> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port })
    opts.socket?.(s)
    let text = ''
    let closed = false
    s.on('data', (d) => { text += d.toString('latin1') })
    s.on('close', () => { closed = true; clearTimeout(timer); resolve({ text, closed }) })
    s.on('error', () => { /* reset by the server: 'close' follows */ })
    s.on('connect', () => {
      let i = 0
      const send = (): void => {
        if (i >= chunks.length || s.destroyed) return
        s.write(chunks[i++] as string | Buffer)
        if (opts.gapMs === undefined) send(); else setTimeout(send, opts.gapMs)
      }
      send()
    })
    const timer = setTimeout(() => { resolve({ text, closed }); s.destroy() }, opts.waitMs ?? 1000)
  })
}

function statuses (text: string): number[] {
  return [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]))
}

describe('lean HTTP server (registry)', () => {
  it('answers keep-alive requests on one connection, with length, date and the handler\'s headers', async () => {
    await start()
    const r = await raw(['GET /a?x=1 HTTP/1.1\r\nHost: h\r\n\r\n', 'GET /b HTTP/1.1\r\nHost: h\r\n\r\n'], { gapMs: 50, waitMs: 400 })
    expect(r.closed).toBe(false)
    expect(statuses(r.text)).toEqual([200, 200])
    expect(r.text).toContain('connection: keep-alive\r\nkeep-alive: timeout=2\r\ncontent-length: 11\r\ncontent-type: text/plain\r\nx-test: yes\r\n\r\nGET /a?x=1 ')
    expect(r.text).toMatch(/date: \w{3}, \d\d \w{3} \d{4} /)
    expect(r.text.endsWith('GET /b ')).toBe(true)
  })

  it('works with Node\'s own client (the wgnat client speaks through it)', async () => {
    await start()
    const text = await new Promise<string>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/p', agent: false }, (res) => {
        let t = ''
        res.on('data', (c) => { t += String(c) })
        res.on('end', () => { resolve(`${res.statusCode ?? 0} ${t}`) })
      })
      req.on('error', reject)
      req.end('{"a":1}')
    })
    expect(text).toBe('200 POST /p {"a":1}')
  })

  it('answers pipelined requests in order, the second only after the first (held) one', async () => {
    const { held } = await start()
    const pending = raw(['GET /hold HTTP/1.1\r\n\r\nGET /next HTTP/1.1\r\n\r\n'], { waitMs: 600 })
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(held).toHaveLength(1)
    held[0]?.respond(200, {}, 'first')
    const r = await pending
    expect(statuses(r.text)).toEqual([200, 200])
    expect(r.text.indexOf('first')).toBeLessThan(r.text.indexOf('GET /next'))
  })

  it('closes after the answer for HTTP/1.0 without keep-alive and for Connection: close', async () => {
    await start()
    const r10 = await raw(['GET /a HTTP/1.0\r\n\r\n'])
    expect(r10.closed).toBe(true)
    expect(r10.text).toContain('connection: close\r\n')
    const rClose = await raw(['GET /a HTTP/1.1\r\nConnection: close\r\n\r\nGET /never HTTP/1.1\r\n\r\n'])
    expect(rClose.closed).toBe(true)
    expect(statuses(rClose.text)).toEqual([200])
    const rKeep = await raw(['GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n'], { waitMs: 300 })
    expect(rKeep.closed).toBe(false)
  })

  it('reads bodies by Content-Length in pieces and chunked', async () => {
    await start()
    const sized = await raw(['PUT /s HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello', ' world'], { gapMs: 50, waitMs: 400 })
    expect(sized.text.endsWith('PUT /s hello world')).toBe(true)
    const chunked = await raw(['PUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n', '6\r\n world\r\n0\r\n\r\n'], { gapMs: 50, waitMs: 400 })
    expect(chunked.text.endsWith('PUT /c hello world')).toBe(true)
  })

  it('answers Expect: 100-continue before the body', async () => {
    await start()
    const r = await raw(['PUT /e HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n', 'ok'], { gapMs: 100, waitMs: 500 })
    expect(r.text.startsWith('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n')).toBe(true)
    expect(r.text.endsWith('PUT /e ok')).toBe(true)
  })

  it('gives a HEAD request the head alone', async () => {
    await start()
    const r = await raw(['HEAD /h HTTP/1.1\r\n\r\nGET /g HTTP/1.1\r\n\r\n'], { waitMs: 300 })
    expect(r.text).toMatch(/^HTTP\/1\.1 200 OK\r\n[^]*content-length: 8\r\n[^]*\r\n\r\nHTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nGET \/g $/)
  })

  describe('refuses what it does not take, closes the connection, and never calls the handler for it', () => {
    const cases: Array<[string, string, number]> = [
      ['a request line without a version', 'GET /\r\n\r\n', 400],
      ['a lowercase method', 'get / HTTP/1.1\r\n\r\n', 400],
      ['HTTP/2.0', 'GET / HTTP/2.0\r\n\r\n', 505],
      ['HTTP/0.9 style version 0.9', 'GET / HTTP/0.9\r\n\r\n', 400],
      ['a Content-Length that is not a number', 'POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n', 400],
      ['a negative Content-Length', 'POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n', 400],
      ['two different Content-Lengths', 'POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab', 400],
      ['a Content-Length over the route\'s limit (before the body is sent)', 'POST / HTTP/1.1\r\nContent-Length: 101\r\n\r\n', 413],
      ['a chunked body over the route\'s limit', `POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n${'x'.repeat(101)}\r\n0\r\n\r\n`, 413],
      ['a transfer coding other than chunked', 'POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n', 501],
      ['an expectation other than 100-continue', 'GET / HTTP/1.1\r\nExpect: 200-ok\r\n\r\n', 417],
      ['an upgrade', 'GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n', 400],
      ['CONNECT', 'CONNECT h:1 HTTP/1.1\r\n\r\n', 400],
      ['a head over the limit', `GET / HTTP/1.1\r\nX-Big: ${'x'.repeat(MAX_HEAD_BYTES)}\r\n\r\n`, 431],
      // http-parser-js steps back over a negative size for ever: the event loop would never come back.
      ['a negative chunk size', 'PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nX', 400],
      ['more pipelined requests in one read than MAX_PIPELINED_REQUESTS', 'GET /hold HTTP/1.1\r\n\r\n' + 'GET /a HTTP/1.1\r\n\r\n'.repeat(MAX_PIPELINED_REQUESTS + 1), 429]
    ]
    it.each(cases)('%s', async (_what, bytes, status) => {
      const { seen } = await start()
      const r = await raw([bytes])
      expect(statuses(r.text)).toEqual([status])
      expect(r.text).toContain('connection: close\r\n')
      expect(r.closed).toBe(true)
      expect(seen).toHaveLength(0)
    })
  })

  it('refuses an endless line inside a body (a chunk-size line that never ends) before it takes the memory', async () => {
    const { seen } = await start()
    // The route's limit is 64 KB here: past 8 + 64 + 2 × 64 KB on the wire the request is refused.
    const endless = Array.from({ length: 20 }, () => '1'.repeat(16 * 1024))
    const r = await raw(['PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n', ...endless], { gapMs: 10, waitMs: 2000 })
    expect(statuses(r.text)).toEqual([413])
    expect(r.closed).toBe(true)
    expect(seen).toHaveLength(0)
  })

  it('stops answering (and reading) a client that sends and never reads its answers', async () => {
    const big = Buffer.alloc(64 * 1024, 'x')
    let answered = 0
    await start({}, (ex) => { answered++; ex.respond(200, {}, big) })
    const s = connect({ host: '127.0.0.1', port })
    s.pause()
    s.on('error', () => {})
    await new Promise((resolve) => s.once('connect', resolve))
    const burst = 'GET /big HTTP/1.1\r\n\r\n'.repeat(50)
    const t0 = Date.now()
    while (Date.now() - t0 < 1500) {
      s.write(burst)
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    // Without backpressure every request is answered into memory: thousands of 64 KB answers.
    expect(answered).toBeGreaterThan(0)
    expect(answered).toBeLessThan(1000)
    s.destroy()
  })

  it('drops a refused or closed connection whose client keeps its side open', async () => {
    const closedAt: number[] = []
    const { held } = await start({ headersTimeoutMs: 300, onConnectionClose: () => { closedAt.push(Date.now()) } })
    const clients = ['garbage\r\n\r\n', 'GET /hold HTTP/1.0\r\n\r\n'].map((bytes) => {
      const s = connect({ host: '127.0.0.1', port, allowHalfOpen: true })
      s.on('data', () => {})
      s.on('error', () => {})
      s.on('connect', () => s.write(bytes))
      return s
    })
    await new Promise((resolve) => setTimeout(resolve, 100))
    const t0 = Date.now()
    held[0]?.respond(200, {}, 'late')
    await new Promise((resolve) => setTimeout(resolve, 1500))
    for (const s of clients) s.destroy()
    // Both gone on the server's side while their clients still held them open.
    expect(closedAt).toHaveLength(2)
    for (const at of closedAt) expect(at - t0).toBeLessThan(1200)
  })

  it('sends 100 Continue only when no earlier request is still being answered', async () => {
    const { held } = await start()
    const pending = raw(['GET /hold HTTP/1.1\r\n\r\nPUT /e HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n', 'ok'], { gapMs: 100, waitMs: 600 })
    await new Promise((resolve) => setTimeout(resolve, 300))
    held[0]?.respond(200, {}, 'first')
    const r = await pending
    expect(r.text.startsWith('HTTP/1.1 200 OK\r\n')).toBe(true)
    expect(r.text).not.toContain('100 Continue')
    expect(r.text.endsWith('PUT /e ok')).toBe(true)
  })

  it('closes a connection when accepting it throws, and goes on serving', async () => {
    let n = 0
    await start({ onConnection: () => { if (++n === 1) throw new Error('boom'); return true } })
    const first = await raw(['GET /a HTTP/1.1\r\nConnection: close\r\n\r\n'])
    const second = await raw(['GET /a HTTP/1.1\r\nConnection: close\r\n\r\n'])
    expect(first.text).toBe('')
    expect(statuses(second.text)).toEqual([200])
  })

  it('answers 500 when the handler throws, and the connection goes on', async () => {
    await start()
    const r = await raw(['GET /throw HTTP/1.1\r\n\r\nGET /after HTTP/1.1\r\n\r\n'], { waitMs: 300 })
    expect(statuses(r.text)).toEqual([500, 200])
  })

  it('closes a request too slow to arrive with 408 (head dribbled a byte at a time), and an idle connection silently', async () => {
    await start({ headersTimeoutMs: 300, keepAliveTimeoutMs: 300 })
    const t0 = Date.now()
    const slow = await raw('GET / HTTP/1.1\r\nX: y\r\n\r\n'.split(''), { gapMs: 100, waitMs: 3000 })
    expect(statuses(slow.text)).toEqual([408])
    expect(slow.closed).toBe(true)
    expect(Date.now() - t0).toBeLessThan(1500)
    const idle = await raw(['GET /a HTTP/1.1\r\n\r\n'], { waitMs: 2000 })
    expect(statuses(idle.text)).toEqual([200])
    expect(idle.closed).toBe(true)
  })

  it('holds a request past every timeout until it is answered', async () => {
    const { held } = await start({ headersTimeoutMs: 100, requestTimeoutMs: 100, keepAliveTimeoutMs: 100 })
    const pending = raw(['GET /hold HTTP/1.1\r\n\r\n'], { waitMs: 1500 })
    await new Promise((resolve) => setTimeout(resolve, 800))
    held[0]?.respond(204, {})
    const r = await pending
    expect(statuses(r.text)).toEqual([204])
  })

  it('tells a held exchange that its connection closed, once', async () => {
    const { held } = await start()
    const ends: boolean[] = []
    await raw(['GET /hold HTTP/1.1\r\n\r\n'], { waitMs: 200 })
    await new Promise((resolve) => setTimeout(resolve, 100))
    held[0]?.onEnd((answered) => ends.push(answered))
    expect(held[0]?.closed).toBe(true)
    held[0]?.respond(200, {}, 'too late')
    expect(ends).toEqual([false])
    expect(held[0]?.answered).toBe(false)
  })

  it('refuses a connection onConnection declines before reading it, and reports only accepted ones closing', async () => {
    let n = 0
    const closedFrom: string[] = []
    await start({ onConnection: () => ++n !== 2, onConnectionClose: (from) => { closedFrom.push(from) } })
    const first = await raw(['GET /a HTTP/1.1\r\nConnection: close\r\n\r\n'])
    const second = await raw(['GET /a HTTP/1.1\r\nConnection: close\r\n\r\n'])
    expect(statuses(first.text)).toEqual([200])
    expect(second.text).toBe('')
    expect(second.closed).toBe(true)
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(closedFrom).toEqual(['127.0.0.1'])
  })

  it('close() ends held requests and stops listening', async () => {
    const { held } = await start()
    const pending = raw(['GET /hold HTTP/1.1\r\n\r\n'], { waitMs: 2000 })
    await new Promise((resolve) => setTimeout(resolve, 100))
    await server?.close()
    server = undefined
    const r = await pending
    expect(r.closed).toBe(true)
    expect(held[0]?.closed).toBe(true)
    const refused = await new Promise<string>((resolve) => { const s = connect({ host: '127.0.0.1', port }); s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? '')); s.on('connect', () => { s.destroy(); resolve('connected') }) })
    expect(refused).toBe('ECONNREFUSED')
  })

  // Last: reading HTTPParser.kOnExecute switches http-parser-js to positional callbacks for the whole module (this
  // file's worker only).
  it('still parses once something has switched http-parser-js to positional callbacks', async () => {
    expect(HTTPParser.kOnExecute).toBe(99)
    await start()
    const r = await raw(['PUT /late HTTP/1.1\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok'])
    expect(statuses(r.text)).toEqual([200])
    expect(r.text.endsWith('PUT /late ok')).toBe(true)
    expect(r.text).toContain('connection: close\r\n')
  })
})
