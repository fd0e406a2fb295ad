import { request } from 'node:http'
import { ParseError, WgnatError, messageOf, quote } from '../shared/errors.js'
import { LONG_POLL_KEEPALIVE_MS } from './long-poll-wait.js'
import { API, tableResponseSchema, type Announce, type PathReport, type TableResponse } from '../shared/protocol.js'

export interface RegistryClientInit {
  address: string
  port: number
  /** Upper bound of one request beyond its long-poll wait. @default 5000 */
  timeoutMs?: number
  /** Largest response accepted. @default 32 MiB (a full table of 65,536 peers) */
  maxBytes?: number
}

export class RegistryError extends WgnatError {}

/** Parse and schema-check a table response body. Throws ParseError (one line, the bad value quoted) on anything else. */
export function parseTableResponse (body: string): TableResponse {
  let json: unknown
  try { json = JSON.parse(body) } catch { throw new ParseError(`registry response is not JSON: ${quote(body)}`) }
  const parsed = tableResponseSchema.safeParse(json)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw new ParseError(`registry response rejected: ${quote(issue?.path.join('.') ?? '')}: ${quote(issue?.message ?? 'invalid')}`)
  }
  return parsed.data
}

/** Talks to the registry over the tunnel. Every response is size-limited, time-limited and schema-checked. */
export class RegistryClient {
  private readonly timeoutMs: number
  private readonly maxBytes: number
  constructor (private readonly init: RegistryClientInit) {
    this.timeoutMs = init.timeoutMs ?? 5000
    this.maxBytes = init.maxBytes ?? 32 * 1024 * 1024
  }

  get url (): string {
    const host = this.init.address.includes(':') ? `[${this.init.address}]` : this.init.address
    return `http://${host}:${this.init.port}`
  }

  /** The table since `since` (0: full), held open by the registry up to `waitS` seconds when nothing changed. */
  async table (since: number, waitS: number, signal?: AbortSignal): Promise<TableResponse> {
    const body = await this.call('GET', `${API.table}?since=${since}&wait=${waitS}`, undefined, this.timeoutMs + waitS * 1000, signal, waitS > 0)
    return parseTableResponse(body)
  }

  async announce (announce: Announce, signal?: AbortSignal): Promise<void> {
    await this.call('POST', API.announce, JSON.stringify(announce), this.timeoutMs, signal)
  }

  /** Our path to every peer, for the hub's mesh view. */
  async report (report: PathReport, signal?: AbortSignal): Promise<void> {
    await this.call('POST', API.report, JSON.stringify(report), this.timeoutMs, signal)
  }

  private async call (method: string, path: string, body: string | undefined, timeoutMs: number, signal?: AbortSignal, longPoll = false): Promise<string> {
    return await new Promise<string>((resolve, reject) => {
      const req = request(`${this.url}${path}`, {
        method,
        signal,
        timeout: timeoutMs,
        headers: body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }
      }, (res) => {
        // A long-poll's wait ends when the answer starts: its body gets the plain request's time, as any answer does
        // (a registry dribbling a body would otherwise hold the client for the whole wait).
        if (longPoll) { clearTimeout(deadline); deadline = setTimeout(expire, this.timeoutMs, this.timeoutMs) }
        const chunks: Buffer[] = []
        let size = 0
        res.on('data', (chunk: Buffer) => {
          size += chunk.length
          if (size > this.maxBytes) { req.destroy(new RegistryError(`registry response over ${this.maxBytes} bytes`)); return }
          chunks.push(chunk)
        })
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8')
          if (res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 300) { resolve(text); return }
          let detail = text
          try { detail = String((JSON.parse(text) as { error?: unknown }).error ?? text) } catch {}
          reject(new RegistryError(`registry answered ${String(res.statusCode)}: ${quote(detail)}`))
        })
        res.on('error', (err) => reject(new RegistryError(`registry response failed: ${messageOf(err)}`)))
      })
      // A held long-poll: TCP keep-alive notices a dead or restarted hub long before the deadline (long-poll-wait.ts).
      if (longPoll) req.on('socket', (socket) => { socket.setKeepAlive(true, LONG_POLL_KEEPALIVE_MS) })
      // A hard deadline for the whole exchange, not just idle time between packets.
      const expire = (ms: number): void => { req.destroy(new RegistryError(`registry at ${this.url} did not answer within ${Math.round(ms / 1000)}s`)) }
      let deadline = setTimeout(expire, timeoutMs, timeoutMs)
      req.on('close', () => clearTimeout(deadline))
      req.on('timeout', () => { expire(timeoutMs) })
      req.on('error', (err) => {
        if (err instanceof WgnatError) reject(err)
        else if (err.name === 'AbortError') reject(err)
        else reject(new RegistryError(`cannot reach the registry at ${this.url}: ${messageOf(err)}`))
      })
      req.end(body)
    })
  }
}
