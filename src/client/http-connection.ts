/**
 * The client's HTTP/1.1 calls to the registry: `net` and http-parser-js, as the registry's own server
 * (src/server/registry/lean-http.ts). Node's `http` made a client start load and compile its client, agent and
 * server modules, and run its request machinery the first time, about 8 ms of CPU a start while a mesh forms, when
 * every client starts at once (issue 16). What is needed here is little: one server, a request and its answer.
 *
 * - One connection at a time per call; after an answer that allows it, the connection is kept for the next call
 *   for KEEP_IDLE_MS (or less than the registry's `keep-alive: timeout=`), as Node's agent keeps it.
 * - A kept connection the registry closed just as it was reused (nothing came back) is retried once on a new one.
 * - Deadlines and limits are the caller's: the whole call, its body's size, and an abort signal.
 */
import { connect, type Socket } from 'node:net'
import { HTTPParser } from 'http-parser-js'
import { formatEndpoint } from '../shared/ip.js'

/** How long a connection is kept for the next call, unless the registry's own timeout is shorter. */
export const KEEP_IDLE_MS = 4000
/**
 * A kept connection that fails this soon after its reuse, before any answer, was closed by the registry as we reused
 * it (its idle timeout): the call is made once more on a new connection. Later, the failure is the call's own (a
 * long-poll's TCP keep-alive finding the hub gone): no retry, which would start the call's whole wait over.
 */
export const REUSE_RETRY_WINDOW_MS = 1000

export interface HttpCall {
  method: 'GET' | 'POST'
  path: string
  /** JSON text. */
  body?: string
  /** Called with the socket once connected, before the request is written (a long-poll turns TCP keep-alive on). */
  onSocket?: (socket: Socket) => void
  /** Largest body taken; a larger one fails the call (stage `limit`). */
  maxBytes: number
  /** Deadline of the whole call. */
  timeoutMs: number
  /** Once the answer's head arrives, the rest of it gets this long instead (a long-poll's body gets a plain call's time). */
  answerTimeoutMs?: number
}

export interface HttpAnswer {
  status: number
  body: string
}

/**
 * How a call failed: nothing came back (`connect`: refused, unreachable, closed before an answer), the answer was cut
 * short or did not parse (`answer`), it was too large (`limit`), or a deadline passed (`timeout`, after `ms`).
 */
export class HttpCallError extends Error {
  constructor (readonly stage: 'connect' | 'answer' | 'limit' | 'timeout', message: string, readonly ms = 0) { super(message) }
}

/** What http-parser-js hands to kOnHeadersComplete, in one object or (its newer convention) one argument each. */
interface ResponseHead { statusCode: number, shouldKeepAlive: boolean, headers: string[] }

/** `keep-alive: timeout=N` of a response's raw headers, in ms, or undefined. */
export function keepAliveTimeoutMs (headers: readonly string[]): number | undefined {
  for (let i = 0; i + 1 < headers.length; i += 2) {
    if (headers[i]?.toLowerCase() !== 'keep-alive') continue
    const m = /(?:^|,)\s*timeout=(\d+)/i.exec(headers[i + 1] ?? '')
    if (m !== null) return Number(m[1]) * 1000
  }
  return undefined
}

/** Calls to one HTTP/1.1 server at `host:port`. */
export class HttpConnection {
  private idle: { socket: Socket, timer: ReturnType<typeof setTimeout> } | undefined
  private readonly hostHeader: string
  private closed = false

  constructor (private readonly host: string, private readonly port: number) {
    this.hostHeader = formatEndpoint({ address: host, port })
  }

  /** One call. Rejects with HttpCallError, or with an AbortError once `signal` aborts. */
  async call (req: HttpCall, signal?: AbortSignal): Promise<HttpAnswer> {
    const kept = this.takeIdle()
    if (kept === undefined) return await this.exchange(req, this.open(), signal)
    const startedMs = Date.now()
    try {
      return await this.exchange(req, kept, signal)
    } catch (err) {
      // The registry closed the kept connection as we reused it: nothing came back, so nothing happened; once more,
      // within what is left of the call's time. (Both calls made this way, announce and report, state the whole of
      // something: one made twice is one made once.)
      const elapsedMs = Date.now() - startedMs
      if (err instanceof HttpCallError && err.stage === 'connect' && elapsedMs < REUSE_RETRY_WINDOW_MS && signal?.aborted !== true) {
        return await this.exchange({ ...req, timeoutMs: Math.max(1, req.timeoutMs - elapsedMs) }, this.open(), signal)
      }
      throw err
    }
  }

  /** Close the kept connection, and keep none from now on (the client stops). */
  close (): void {
    this.closed = true
    this.takeIdle()?.destroy()
  }

  private open (): Socket {
    return connect({ host: this.host, port: this.port, noDelay: true })
  }

  private takeIdle (): Socket | undefined {
    const idle = this.idle
    if (idle === undefined) return undefined
    this.idle = undefined
    clearTimeout(idle.timer)
    idle.socket.removeAllListeners()
    return idle.socket.destroyed ? undefined : idle.socket
  }

  private keep (socket: Socket, serverTimeoutMs: number | undefined): void {
    const ms = Math.min(KEEP_IDLE_MS, serverTimeoutMs === undefined ? KEEP_IDLE_MS : serverTimeoutMs - 1000)
    if (this.closed || this.idle !== undefined || ms <= 0) { socket.destroy(); return }
    socket.removeAllListeners()
    const drop = (): void => { if (this.idle?.socket === socket) this.takeIdle(); socket.destroy() }
    socket.on('error', drop).on('close', drop).on('data', drop)
    const timer = setTimeout(drop, ms)
    timer.unref()
    socket.unref()
    this.idle = { socket, timer }
  }

  private async exchange (req: HttpCall, socket: Socket, signal?: AbortSignal): Promise<HttpAnswer> {
    return await new Promise<HttpAnswer>((resolve, reject) => {
      let head: ResponseHead | undefined
      const chunks: Buffer[] = []
      let size = 0
      let settled = false
      const parser = new HTTPParser(HTTPParser.RESPONSE)
      const expire = (ms: number): void => { finish(new HttpCallError('timeout', `no answer within ${ms} ms`, ms)) }
      let deadline = setTimeout(expire, req.timeoutMs, req.timeoutMs)
      const finish = (err: Error): void => {
        if (settled) return
        settled = true
        clearTimeout(deadline)
        signal?.removeEventListener('abort', onAbort)
        socket.removeAllListeners()
        socket.destroy()
        reject(err)
      }
      const onAbort = (): void => { finish(new DOMException('This operation was aborted', 'AbortError')) }
      if (signal?.aborted === true) { onAbort(); return }
      signal?.addEventListener('abort', onAbort, { once: true })
      parser[HTTPParser.kOnHeadersComplete] = (...a: unknown[]) => {
        if (settled) return
        head = a.length === 1 ? a[0] as ResponseHead : { statusCode: a[5], shouldKeepAlive: a[8], headers: a[2] } as ResponseHead
        // An interim answer (100 Continue, 103 Early Hints) is followed by the real one.
        if (head.statusCode < 200) return
        const ms = req.answerTimeoutMs
        if (ms !== undefined) { clearTimeout(deadline); deadline = setTimeout(expire, ms, ms) }
      }
      parser[HTTPParser.kOnBody] = (chunk: Buffer, offset: number, length: number) => {
        if (settled) return
        size += length
        if (size > req.maxBytes) { finish(new HttpCallError('limit', `registry response over ${req.maxBytes} bytes`)); return }
        chunks.push(chunk.subarray(offset, offset + length))
      }
      parser[HTTPParser.kOnMessageComplete] = () => {
        if (settled) return
        const h = head as ResponseHead
        if (h.statusCode < 200) { head = undefined; chunks.length = 0; size = 0; return }
        const answer = { status: h.statusCode, body: Buffer.concat(chunks).toString('utf8') }
        settled = true
        clearTimeout(deadline)
        signal?.removeEventListener('abort', onAbort)
        socket.removeAllListeners()
        if (h.shouldKeepAlive) this.keep(socket, keepAliveTimeoutMs(h.headers)); else socket.destroy()
        resolve(answer)
      }
      let received = false
      // Nothing came back: `connect`, which `call` may retry on a new connection when this one was kept.
      const failed = (message: string): void => { finish(new HttpCallError(received ? 'answer' : 'connect', message)) }
      const bad = (err: Error): void => { finish(new HttpCallError('answer', `not an HTTP/1.1 answer (${err.message})`)) }
      socket.on('data', (data: Buffer) => {
        if (settled) return
        received = true
        const n = parser.execute(data)
        if (n instanceof Error) bad(n)
      })
      socket.on('end', () => {
        if (settled) return
        // An answer read to the connection's end (no length given) completes here; anything else was cut short.
        if (head !== undefined) parser.finish()
        if (!settled) failed('the connection closed before the answer ended')
      })
      socket.on('error', (err) => { failed(err.message) })
      socket.on('close', () => { failed('the connection closed before the answer ended') })
      req.onSocket?.(socket)
      socket.ref()
      const head0 = `${req.method} ${req.path} HTTP/1.1\r\nhost: ${this.hostHeader}\r\n`
      socket.write(req.body === undefined
        ? `${head0}\r\n`
        : `${head0}content-type: application/json\r\ncontent-length: ${Buffer.byteLength(req.body)}\r\n\r\n${req.body}`)
    })
  }
}
