/**
 * The registry's HTTP/1.1 server: `net` sockets and http-parser-js (issue 16). Node's `http` keeps about 4.2 KB of
 * heap and 12 KB of RSS per connection holding a request (its IncomingMessage, ServerResponse, native parser, bound
 * listeners); 10,000 held long-polls were 70 MB of the registry's 175, and that heap was what its collections marked.
 * Here a held long-poll is its socket and one small exchange object: about 1.5 KB of heap and 6.5 KB of RSS
 * (`scripts/bench/held-request-heap.ts --server lean`).
 *
 * What it speaks, and nothing more: HTTP/1.0 and 1.1 requests, one at a time per connection (pipelined requests
 * wait their turn), bodies by Content-Length or chunked, `Expect: 100-continue`, keep-alive. No upgrades, no
 * CONNECT, no trailers used. Bad requests get a status and the connection closed, as Node's server does: 400 for
 * what does not parse, 408 for a request too slow to arrive, 413 for a body over the route's limit, 431 for a head
 * over MAX_HEAD_BYTES, 501 for a transfer coding other than chunked, 505 for HTTP/2 and later.
 */
import { STATUS_CODES } from 'node:http'
import { createServer, type Server, type Socket } from 'node:net'
import { HTTPParser } from 'http-parser-js'

type Parser = InstanceType<typeof HTTPParser>

/** Largest request head (request line and headers). */
export const MAX_HEAD_BYTES = 8 * 1024
/** Requests read ahead of the one being answered before the connection stops being read (pipelining). */
export const MAX_QUEUED_REQUESTS = 4
/**
 * Requests one read of the socket may hold waiting (pipelined in a single read, before the connection can be
 * paused): more closes the connection with 429. No client pipelines that deep.
 */
export const MAX_PIPELINED_REQUESTS = 64
/**
 * Bytes one request may take on the wire beyond its head and twice its body limit (chunk framing; one read of the
 * socket). The parser holds an unended line (a chunk-size line, a trailer) whole: this bounds it.
 */
export const WIRE_SLACK_BYTES = 64 * 1024

export interface LeanHttpInit {
  /** An idle connection (no request under way, none held) is closed after this. */
  keepAliveTimeoutMs: number
  /** A request's head must have arrived this long after its first byte. */
  headersTimeoutMs: number
  /** A whole request (head and body) must have arrived this long after its first byte; not the time to answer it. */
  requestTimeoutMs: number
  /** Largest body accepted for a request (by method and path); more is refused with 413 before it is read. */
  bodyLimit: (method: string, path: string) => number
  /** A new connection from this address: false closes it before a byte is read. */
  onConnection?: (remoteAddress: string) => boolean
  /** A connection onConnection accepted closed. */
  onConnectionClose?: (remoteAddress: string) => void
}

type EndListener = (answered: boolean) => void

/** One request and its response. The request is whole (body read) when the handler gets it. */
export class HttpExchange {
  statusCode = 200
  private state: 'open' | 'answered' | 'closed' = 'open'
  private listeners: EndListener | EndListener[] | undefined

  constructor (
    private readonly conn: Connection,
    readonly method: string,
    /** The request target as sent (path and query). */
    readonly target: string,
    readonly body: Buffer,
    /** @internal The connection stays open after the response. */
    readonly keepAlive: boolean
  ) {}

  get remoteAddress (): string { return this.conn.remoteAddress }
  /** The response has been written. */
  get answered (): boolean { return this.state === 'answered' }
  /** The connection closed before the response was written: nothing can be sent any more. */
  get closed (): boolean { return this.state === 'closed' }

  /** Called once: when the response has been written (true) or the connection closed before it (false). */
  onEnd (fn: EndListener): void {
    if (this.state !== 'open') { fn(this.state === 'answered'); return }
    this.listeners = this.listeners === undefined ? fn : Array.isArray(this.listeners) ? [...this.listeners, fn] : [this.listeners, fn]
  }

  /** Write the whole response. `content-length` is set here; a HEAD request gets the head alone. */
  respond (status: number, headers: Record<string, string | number>, body: string | Buffer | Buffer[] = []): void {
    if (this.state !== 'open') return
    this.statusCode = status
    const chunks = typeof body === 'string' ? [Buffer.from(body)] : Buffer.isBuffer(body) ? [body] : body
    let length = 0
    for (const c of chunks) length += c.length
    this.end(true)
    this.conn.write(status, headers, length, this.method === 'HEAD' ? [] : chunks)
  }

  /** @internal The response is written (true) or can no longer be (false). */
  end (answered: boolean): void {
    if (this.state !== 'open') return
    this.state = answered ? 'answered' : 'closed'
    const l = this.listeners
    this.listeners = undefined
    if (typeof l === 'function') l(answered)
    else if (l !== undefined) for (const fn of l) fn(answered)
  }
}

export type LeanHttpHandler = (exchange: HttpExchange) => void

/** A request refused before the handler sees it. */
class RequestError extends Error {
  constructor (readonly status: number, message: string) { super(message) }
}

interface Incoming {
  method: string
  target: string
  keepAlive: boolean
  limit: number
  size: number
  chunks: Buffer[]
}

interface ParsedHead {
  versionMajor: number
  versionMinor: number
  headers: string[]
  method: number | string
  url: string
  upgrade: boolean
  shouldKeepAlive: boolean
}

/** A response's first lines: its status and `Date` (cached, renewed at most once a second). */
function statusLines (status: number): string {
  return `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\ndate: ${httpDate()}\r\n`
}

/** Cached `Date` header value, renewed at most once a second. */
let dateText = ''
let dateAtS = -1
function httpDate (): string {
  const s = Math.floor(Date.now() / 1000)
  if (s !== dateAtS) { dateAtS = s; dateText = new Date(s * 1000).toUTCString() }
  return dateText
}

/** The Connection of a socket: the socket's listeners are shared functions, not closures kept per connection. */
const kConnection = Symbol('wgnat connection')
type ConnectedSocket = Socket & { [kConnection]: Connection }

function onData (this: ConnectedSocket, chunk: Buffer): void { this[kConnection].data(chunk) }
function onTimeout (this: ConnectedSocket): void { this[kConnection].timedOut() }
function onError (): void { /* 'close' follows */ }
function onDrain (this: ConnectedSocket): void { this[kConnection].drained() }
function onClose (this: ConnectedSocket): void { this[kConnection].closed() }

/** What a server's connections share. */
interface ServerState {
  readonly init: LeanHttpInit
  readonly handler: LeanHttpHandler
  readonly sockets: Set<Socket>
  /** Called when the last connection has closed (while the server closes). */
  drained: (() => void) | undefined
  /** The header lines of a response on a connection kept open. */
  readonly keepAliveHeader: string
}

class Connection {
  private parser: Parser | undefined
  /** The request being received (head seen, body under way). */
  private incoming: Incoming | undefined
  /** When the first byte of the request under way arrived (0: none under way). */
  private startedMs = 0
  private headDone = false
  /** Bytes read for the request under way (see WIRE_SLACK_BYTES). */
  private wireBytes = 0
  /** Requests read after the current one (pipelining), waiting their turn; allocated when one does. */
  private queue: HttpExchange[] | undefined
  private current: HttpExchange | undefined
  private closing = false
  private readonly init: LeanHttpInit

  constructor (readonly socket: Socket, readonly remoteAddress: string, private readonly server: ServerState) {
    this.init = server.init
    const s = socket as ConnectedSocket
    s[kConnection] = this
    s.on('data', onData)
    s.on('timeout', onTimeout)
    s.on('error', onError)
    s.on('drain', onDrain)
    s.once('close', onClose)
    socket.setTimeout(this.init.keepAliveTimeoutMs)
  }

  private get queued (): number { return this.queue?.length ?? 0 }

  /**
   * The socket's inactivity timeout for what the connection is doing: receiving a request (its head, then its body),
   * answering one (none: a held long-poll waits as long as the registry holds it), or idle between requests (also
   * when requests wait for a client that does not take its answers).
   */
  private armTimeout (): void {
    const ms = this.startedMs !== 0
      ? (this.headDone ? this.init.requestTimeoutMs : this.init.headersTimeoutMs)
      : this.current !== undefined || (this.queued > 0 && !this.socket.writableNeedDrain) ? 0 : this.init.keepAliveTimeoutMs
    this.socket.setTimeout(ms)
  }

  /** The socket closed: every exchange still open ends unanswered. */
  closed (): void {
    this.current?.end(false)
    for (const ex of this.queue ?? []) ex.end(false)
    this.current = undefined
    this.queue = undefined
    this.parser = undefined
    const server = this.server
    server.sockets.delete(this.socket)
    server.init.onConnectionClose?.(this.remoteAddress)
    if (server.sockets.size === 0) server.drained?.()
  }

  data (chunk: Buffer): void {
    if (this.closing) return
    const now = Date.now()
    if (this.startedMs !== 0 && this.overdue(now)) {
      this.refuse(408, 'request took too long to arrive')
      return
    }
    const parser = this.parser ?? this.newParser()
    let result: number | Error
    try {
      result = parser.execute(chunk)
    } catch (err) {
      result = err instanceof Error ? err : new Error(String(err))
    }
    if (result instanceof Error) {
      const status = result instanceof RequestError ? result.status : /header size/.test(result.message) ? 431 : 400
      this.refuse(status, result.message)
      return
    }
    const state = parser as unknown as { state: string, line: string }
    if (state.state === 'REQUEST_LINE' && state.line === '') {
      // Nothing half-read: the parser can go (a held long-poll keeps none); a new one parses the next request.
      this.parser = undefined
    } else {
      if (this.startedMs === 0) {
        // A request under way (possibly behind one that just completed in the same chunk).
        this.startedMs = now
      }
      this.wireBytes += chunk.length
      if (this.wireBytes > MAX_HEAD_BYTES + WIRE_SLACK_BYTES + 2 * (this.incoming?.limit ?? 0)) {
        this.refuse(413, 'request too large')
        return
      }
    }
    // Stop reading while requests wait or answers are not taken (a peer that sends and never reads).
    if (this.queued >= MAX_QUEUED_REQUESTS || this.socket.writableNeedDrain) this.socket.pause()
    this.next()
    this.armTimeout()
  }

  private overdue (now: number): boolean {
    return now - this.startedMs > (this.headDone ? this.init.requestTimeoutMs : this.init.headersTimeoutMs)
  }

  private newParser (): Parser {
    const p = new HTTPParser(HTTPParser.REQUEST)
    p.maxHeaderSize = MAX_HEAD_BYTES
    // One object (http-parser-js's default), or its fields one by one once anything in the process has read
    // `HTTPParser.kOnExecute` (its switch to Node's newer calling convention, global to the module).
    p[HTTPParser.kOnHeadersComplete] = (...a: unknown[]) => {
      this.head(a.length === 1 ? a[0] as ParsedHead : { versionMajor: a[0], versionMinor: a[1], headers: a[2], method: a[3], url: a[4], upgrade: a[7], shouldKeepAlive: a[8] } as ParsedHead)
    }
    p[HTTPParser.kOnBody] = (chunk: Buffer, offset: number, length: number) => { this.bodyChunk(chunk.subarray(offset, offset + length)) }
    p[HTTPParser.kOnMessageComplete] = () => { this.complete() }
    this.parser = p
    return p
  }

  private head (info: ParsedHead): void {
    this.headDone = true
    const method = typeof info.method === 'number' ? HTTPParser.methods[info.method] ?? '' : info.method
    if (info.versionMajor !== 1) throw new RequestError(info.versionMajor > 1 ? 505 : 400, `HTTP/${info.versionMajor}.${info.versionMinor} is not spoken here`)
    if (info.upgrade || method === 'CONNECT') throw new RequestError(400, 'no upgrades or CONNECT here')
    let length = 0
    let expect: string | undefined
    const h = info.headers
    // The parser checks the size of a head that spans reads; one that came in a single read is measured here.
    let headBytes = info.url.length
    for (const field of h) headBytes += field.length + 2
    if (headBytes > MAX_HEAD_BYTES) throw new RequestError(431, `request head over ${MAX_HEAD_BYTES} bytes`)
    for (let i = 0; i < h.length; i += 2) {
      const name = (h[i] as string).toLowerCase()
      const value = (h[i + 1] as string).trim()
      if (name === 'content-length') {
        if (!/^\d{1,15}$/.test(value)) throw new RequestError(400, `bad content-length: '${value}'`)
        length = Number(value)
      } else if (name === 'transfer-encoding' && value.toLowerCase() !== 'chunked') {
        throw new RequestError(501, `transfer-encoding '${value}' is not supported`)
      } else if (name === 'expect') {
        expect = value.toLowerCase()
      }
    }
    const q = info.url.indexOf('?')
    const limit = this.init.bodyLimit(method, q < 0 ? info.url : info.url.slice(0, q))
    if (length > limit) throw new RequestError(413, `request body over ${limit} bytes`)
    if (expect !== undefined) {
      if (expect !== '100-continue') throw new RequestError(417, `expectation '${expect}' is not supported`)
      // Only when nothing is being answered before it (pipelined): the interim answer must not precede another's.
      if (info.versionMinor >= 1 && this.current === undefined && this.queued === 0) this.socket.write('HTTP/1.1 100 Continue\r\n\r\n')
    }
    this.incoming = { method, target: info.url, keepAlive: info.shouldKeepAlive, limit, size: 0, chunks: [] }
  }

  private bodyChunk (chunk: Buffer): void {
    const inc = this.incoming
    if (inc === undefined) return
    // http-parser-js takes a negative chunk size (`-5`) and would step back over it for ever.
    if (chunk.length <= 0) throw new RequestError(400, 'bad chunk size')
    inc.size += chunk.length
    if (inc.size > inc.limit) throw new RequestError(413, `request body over ${inc.limit} bytes`)
    inc.chunks.push(Buffer.from(chunk))
  }

  private complete (): void {
    const inc = this.incoming
    this.incoming = undefined
    this.startedMs = 0
    this.headDone = false
    this.wireBytes = 0
    if (inc === undefined) return
    const body = inc.chunks.length === 0 ? EMPTY : inc.chunks.length === 1 ? inc.chunks[0] as Buffer : Buffer.concat(inc.chunks)
    if (this.queued >= MAX_PIPELINED_REQUESTS) throw new RequestError(429, `over ${MAX_PIPELINED_REQUESTS} requests waiting on one connection`)
    const ex = new HttpExchange(this, inc.method, inc.target, body, inc.keepAlive)
    if (this.queue === undefined) this.queue = [ex]
    else this.queue.push(ex)
  }

  /** The socket took its pending output: go on with waiting requests and reading. */
  drained (): void {
    this.next()
    this.resumeIfRoom()
    this.armTimeout()
  }

  /** Read again once few requests wait and the client takes its answers. */
  private resumeIfRoom (): void {
    if (this.socket.isPaused() && !this.closing && this.queued < MAX_QUEUED_REQUESTS && !this.socket.writableNeedDrain) this.socket.resume()
  }

  /** Hand the next queued request to the handler, once the one before it is answered and its answer taken. */
  private next (): void {
    while (this.current === undefined && !this.closing && !this.socket.writableNeedDrain) {
      const ex = this.queue?.shift()
      if (ex === undefined) break
      if (this.queue?.length === 0) this.queue = undefined
      this.resumeIfRoom()
      this.current = ex
      try {
        this.server.handler(ex)
      } catch (err) {
        if (!ex.answered && !ex.closed) ex.respond(500, { 'content-type': 'application/json' }, JSON.stringify({ error: String(err) }))
      }
      // A handler that answered at once leaves `current` cleared by write(); one that holds the request returns here.
      if (this.current === ex) break
    }
  }

  /** Write a response for the current exchange, then go on with the next request or close. */
  write (status: number, headers: Record<string, string | number>, length: number, chunks: Buffer[]): void {
    const keepAlive = this.current !== undefined && this.current.keepAlive && !this.closing
    // `keep-alive: timeout=`, as Node's server sends it: Node's client agent retires a pooled socket before then.
    let head = `${statusLines(status)}${keepAlive ? this.server.keepAliveHeader : 'connection: close\r\n'}content-length: ${length}\r\n`
    for (const name in headers) {
      if (name === 'content-length' || name === 'connection') continue
      head += `${name}: ${headers[name]}\r\n`
    }
    head += '\r\n'
    const s = this.socket
    if (s.destroyed) return
    s.cork()
    s.write(head, 'latin1')
    for (const c of chunks) s.write(c)
    s.uncork()
    this.current = undefined
    if (!keepAlive) {
      this.closing = true
      for (const ex of this.queue ?? []) ex.end(false)
      this.queue = undefined
      s.end()
      // A client that keeps its side open after our end is dropped after this.
      s.setTimeout(this.init.headersTimeoutMs)
      return
    }
    if (this.queued > 0) queueMicrotask(() => { this.next(); this.armTimeout() })
    else this.armTimeout()
  }

  timedOut (): void {
    if (this.closing) this.socket.destroy()
    else if (this.startedMs !== 0) this.refuse(408, 'request took too long to arrive')
    else if (this.current === undefined && this.queued === 0) this.socket.destroy()
  }

  /** Answer a request that cannot be taken (if nothing is being answered) and close the connection. */
  private refuse (status: number, message: string): void {
    this.closing = true
    this.parser = undefined
    const s = this.socket
    // A client that keeps its side open after our end is dropped after this.
    s.setTimeout(this.init.headersTimeoutMs)
    if (this.current === undefined && !s.destroyed) {
      const body = JSON.stringify({ error: message })
      s.end(`${statusLines(status)}connection: close\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
    } else {
      s.destroy()
    }
  }
}

const EMPTY = Buffer.alloc(0)

/** A listening server and its open connections. */
export interface LeanHttpServer {
  readonly server: Server
  /** Stop listening and close every connection, held requests included. */
  close: () => Promise<void>
}

/** Listen on address:port (exclusively) and hand each whole request to `handler`. */
export async function listenLeanHttp (address: string, port: number, init: LeanHttpInit, handler: LeanHttpHandler): Promise<LeanHttpServer> {
  const keepAliveHeader = `connection: keep-alive\r\nkeep-alive: timeout=${Math.floor(init.keepAliveTimeoutMs / 1000)}\r\n`
  const state: ServerState = { init, handler, sockets: new Set(), drained: undefined, keepAliveHeader }
  const server = createServer({ noDelay: true }, (socket) => {
    // Read now: after the close the socket no longer has it.
    const remoteAddress = socket.remoteAddress
    // A connection reset before it was accepted has no address any more: nothing to serve.
    if (remoteAddress === undefined) { socket.destroy(); return }
    let accepted: boolean
    try {
      accepted = init.onConnection === undefined || init.onConnection(remoteAddress)
    } catch {
      accepted = false
    }
    if (!accepted) { socket.destroy(); return }
    state.sockets.add(socket)
    // eslint-disable-next-line no-new -- the socket's listeners hold it
    new Connection(socket, remoteAddress, state)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen({ host: address, port, exclusive: true }, () => { server.off('error', reject); resolve() })
  })
  return {
    server,
    async close () {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      // Every connection's own close handled (its held exchanges ended) before this resolves.
      const allGone = state.sockets.size === 0 ? undefined : new Promise<void>((resolve) => { state.drained = resolve })
      for (const s of state.sockets) s.destroy()
      await Promise.all([closed, allGone])
    }
  }
}
