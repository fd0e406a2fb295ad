import { ParseError, WgnatError, quote } from '../shared/errors.js'
import { LONG_POLL_KEEPALIVE_MS } from './long-poll-wait.js'
import { HttpCallError, HttpConnection } from './http-connection.js'
import { formatEndpoint } from '../shared/ip.js'
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
    const path = issue?.path ?? []
    const at = valueAt(json, path)
    throw new ParseError(`registry response rejected: ${quote(path.join('.'))}: ${quote(issue?.message ?? 'invalid')}${at.found ? ` (it is ${quote(at.value)})` : ''}`)
  }
  return parsed.data
}

/** The value at a schema issue's path in the parsed JSON (for the error to quote), if there is one there. */
function valueAt (json: unknown, path: readonly PropertyKey[]): { found: boolean, value?: unknown } {
  let v: unknown = json
  for (const k of path) {
    if (typeof v !== 'object' || v === null || typeof k === 'symbol' || !Object.hasOwn(v, k)) return { found: false }
    v = (v as Record<string | number, unknown>)[k]
  }
  return { found: path.length > 0, value: v }
}

/** Talks to the registry over the tunnel. Every response is size-limited, time-limited and schema-checked. */
export class RegistryClient {
  private readonly timeoutMs: number
  private readonly maxBytes: number
  private readonly http: HttpConnection
  constructor (private readonly init: RegistryClientInit) {
    this.timeoutMs = init.timeoutMs ?? 5000
    this.maxBytes = init.maxBytes ?? 32 * 1024 * 1024
    this.http = new HttpConnection(init.address, init.port)
  }

  get url (): string {
    return `http://${formatEndpoint({ address: this.init.address, port: this.init.port })}`
  }

  /** The table since `since` (0: full), held open by the registry up to `waitS` seconds when nothing changed. */
  async table (since: number, waitS: number, signal?: AbortSignal): Promise<TableResponse> {
    const body = await this.call('GET', `${API.table}?since=${since}&wait=${waitS}`, undefined, this.timeoutMs + waitS * 1000, signal, waitS > 0)
    return parseTableResponse(body)
  }

  /** Close the connection kept for the next call (the client stops). */
  close (): void { this.http.close() }

  async announce (announce: Announce, signal?: AbortSignal): Promise<void> {
    await this.call('POST', API.announce, JSON.stringify(announce), this.timeoutMs, signal)
  }

  /** Our path to every peer, for the hub's mesh view. */
  async report (report: PathReport, signal?: AbortSignal): Promise<void> {
    await this.call('POST', API.report, JSON.stringify(report), this.timeoutMs, signal)
  }

  private async call (method: 'GET' | 'POST', path: string, body: string | undefined, timeoutMs: number, signal?: AbortSignal, longPoll = false): Promise<string> {
    let answer
    try {
      answer = await this.http.call({
        method,
        path,
        body,
        maxBytes: this.maxBytes,
        timeoutMs,
        // A long-poll's wait ends when the answer starts: its body gets the plain request's time, as any answer does
        // (a registry dribbling a body would otherwise hold the client for the whole wait).
        answerTimeoutMs: longPoll ? this.timeoutMs : undefined,
        // A held long-poll: TCP keep-alive notices a dead or restarted hub long before the deadline (long-poll-wait.ts).
        onSocket: longPoll ? (socket) => { socket.setKeepAlive(true, LONG_POLL_KEEPALIVE_MS) } : undefined
      }, signal)
    } catch (err) {
      if (!(err instanceof HttpCallError)) throw err
      if (err.stage === 'timeout') throw new RegistryError(`registry at ${this.url} did not answer within ${Math.round(err.ms / 1000)}s`)
      if (err.stage === 'connect') throw new RegistryError(`cannot reach the registry at ${this.url}: ${err.message}`)
      if (err.stage === 'limit') throw new RegistryError(err.message)
      throw new RegistryError(`registry response failed: ${err.message}`)
    }
    if (answer.status >= 200 && answer.status < 300) return answer.body
    let detail = answer.body
    try { detail = String((JSON.parse(answer.body) as { error?: unknown }).error ?? answer.body) } catch {}
    throw new RegistryError(`registry answered ${answer.status}: ${quote(detail)}`)
  }
}
