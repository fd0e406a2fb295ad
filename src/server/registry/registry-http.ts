import type { Logger } from '../../shared/log.js'
import { ParseError, messageOf, quote } from '../../shared/errors.js'
import { normaliseIp } from '../../shared/ip.js'
import { API, MAX_WAIT_S, REPORT_LIMITS, announceSchema, reportSchema, type Announce } from '../../shared/protocol.js'
import type { PathReports } from '../mesh/path-reports.js'
import { isWgKey, shortKey } from '../../shared/wg-dump.js'
import type { RegistryService } from './registry-service.js'
import { wgnatKeepaliveResponse } from './wgnat-compat.js'
import { SourceRateLimiter } from '../../shared/rate-limiter.js'
import { CallerLimits, type CallerLimitsInit } from './caller-limits.js'
import { listenLeanHttp, type HttpExchange, type LeanHttpServer } from './lean-http.js'

/** Announcements one peer may make a second, sustained, and in a burst (a client announces a few per attempt). */
export const ANNOUNCE_RATE_PER_SECOND = 2
export const ANNOUNCE_BURST = 20

/** Path reports one peer may send a second, sustained, and in a burst (a client reports at most once a second). */
export const REPORT_RATE_PER_SECOND = 1
export const REPORT_BURST = 5

/** Largest request body the registry reads (an announce is a few hundred bytes). */
export const MAX_REQUEST_BYTES = 16 * 1024

/** The path of a request target, without the query. */
function pathOf (target: string | undefined): string {
  const t = target ?? '/'
  const q = t.indexOf('?')
  return q < 0 ? t : t.slice(0, q)
}

/**
 * An idle kept-alive connection (between two requests) is closed after this. A long-polling client re-polls at once
 * on the same connection, so this bounds only idle ones; 65 s, as it was while MAX_WAIT_S was 60.
 */
export const KEEP_ALIVE_TIMEOUT_MS = 65_000
/** The time to receive a whole request, not to answer it: a held long-poll is not cut by it (70 s, as before). */
export const REQUEST_RECEIVE_TIMEOUT_MS = 70_000
/** The time to receive a request's head. */
export const HEADERS_TIMEOUT_MS = 10_000

/** A caller over one of its limits is named in the log at most this often. */
export const LIMIT_WARN_INTERVAL_MS = 60_000

class HttpError extends Error {
  constructor (readonly status: number, message: string, readonly body?: string, readonly headers: Record<string, string> = {}) { super(message) }
}

export interface RegistryHandlerOptions {
  /** The hub forwards between peers, now (a function: asked at each answer). */
  relay?: boolean | (() => boolean)
  /** What one caller may take (connections, requests in progress, full tables). */
  limits?: Partial<CallerLimitsInit>
  /** Where path reports go (POST /v1/report); without it the route answers 404. */
  reports?: PathReports
  /** Called once per answered request (metrics). */
  onResponse?: (method: string, path: string, status: number) => void
}

export type RegistryHandler = ((ex: HttpExchange) => void) & { limits: CallerLimits }

/**
 * The registry's request handler. The caller is whoever WireGuard says the source address belongs to;
 * nothing the client sends about its own identity is trusted.
 */
export function registryHandler (service: RegistryService, logger: Logger, opts: RegistryHandlerOptions = {}): RegistryHandler {
  // Whether the hub forwards between spokes, as the table's `relay` tells clients (see forwardingProbe).
  const relayNow = typeof opts.relay === 'function' ? opts.relay : () => opts.relay === true
  const announceLimiter = new SourceRateLimiter(ANNOUNCE_RATE_PER_SECOND, ANNOUNCE_BURST)
  const reportLimiter = new SourceRateLimiter(REPORT_RATE_PER_SECOND, REPORT_BURST)
  const onResponse = opts.onResponse
  const limits = new CallerLimits(opts.limits)
  const warned = new Map<string, number>()

  /** Say once a minute per peer and kind that it is over a limit; the refusals themselves cost no log line. */
  function overLimit (caller: string, what: string): void {
    const key = `${caller} ${what}`
    const now = Date.now()
    const last = warned.get(key)
    if (last !== undefined && now - last < LIMIT_WARN_INTERVAL_MS) return
    if (warned.size >= 1024) warned.clear()
    warned.set(key, now)
    logger.warn({ peer: shortKey(caller) }, `peer ${shortKey(caller)}: ${what}; refusing the excess with 429`)
  }

  function handle (ex: HttpExchange): void {
    if (onResponse !== undefined) ex.onEnd((answered) => { if (answered) onResponse(ex.method, pathOf(ex.target), ex.statusCode) })
    try {
      // The socket's own text, not normalised first: identify() parses only what is not a peer's address as is.
      const source = ex.remoteAddress
      const caller = service.identify(source)
      if (caller === undefined) throw new HttpError(403, `source address ${quote(normaliseIp(source))} is not a peer of this hub`)
      const release = limits.beginRequest(caller)
      if (release === undefined) {
        overLimit(caller, `over ${limits.limits.maxRequestsPerPeer} requests at once`)
        throw new HttpError(429, `too many requests at once; at most ${limits.limits.maxRequestsPerPeer}`, undefined, { 'retry-after': '1' })
      }
      // The release itself, no wrapper kept per held long-poll (it ignores the argument and is idempotent).
      ex.onEnd(release)
      service.noteRequest(caller)
      const url = new URL(ex.target, 'http://registry')
      const route = `${ex.method} ${url.pathname}`
      logger.debug({ peer: shortKey(caller), route }, 'request')
      switch (route) {
        case `GET ${API.table}`: return table(ex, url, caller)
        case `POST ${API.announce}`: return announce(ex, caller)
        case `POST ${API.wgnatKeepalive}`: return wgnatKeepalive(ex, url, caller)
        case `POST ${API.report}`: if (opts.reports !== undefined) return report(ex, caller, opts.reports)
          throw new HttpError(404, `no such endpoint: ${quote(route)}`)
        default: throw new HttpError(404, `no such endpoint: ${quote(route)}`)
      }
    } catch (err) {
      fail(ex, err)
    }
  }

  function fail (ex: HttpExchange, err: unknown): void {
    const status = err instanceof HttpError ? err.status : 500
    if (status === 500) logger.warn(`request failed: ${messageOf(err)}`)
    if (ex.answered) return
    const body = err instanceof HttpError && err.body !== undefined ? err.body : JSON.stringify({ error: messageOf(err) })
    send(ex, status, body, err instanceof HttpError ? err.headers : {})
  }

  /**
   * A long-poll is held as one waiter with one closure (no suspended async frames, no `URL`): at 10,000 held
   * long-polls those are megabytes (issue 16).
   */
  function table (ex: HttpExchange, url: URL, caller: string): void {
    const since = intParam(url, 'since', 0, Number.MAX_SAFE_INTEGER)
    const waitS = intParam(url, 'wait', 0, MAX_WAIT_S)
    // A client (re)starting or catching up: the hub may know where it is now better than the table does.
    if (service.table.answersInFull(since)) service.promptRead()
    if (since > 0 && waitS > 0) {
      service.whenChanged(since, waitS * 1000, () => {
        if (ex.closed) return
        try { tableAnswer(ex, since, caller) } catch (err) { fail(ex, err) }
      })
      return
    }
    tableAnswer(ex, since, caller)
  }

  function tableAnswer (ex: HttpExchange, since: number, caller: string): void {
    const t = service.table
    const self = t.get(caller)
    if (self === undefined) throw new HttpError(403, 'caller is no longer a peer of this hub')
    if (t.answersInFull(since)) fullFetch(caller)
    const view = service.view(caller)
    const delta = t.since(since, caller, view)
    const policy = view === undefined ? '' : '"policy":true,'
    const head = Buffer.from(`{"epoch":"${t.epoch}","version":${delta.version},"now":${t.now},"relay":${String(relayNow())},${policy}"full":${String(delta.full)},"self":${JSON.stringify(self)},"peers":[`)
    const tail = Buffer.from(`],"removed":${JSON.stringify(delta.removed)}}`)
    ex.respond(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }, [head, ...delta.peers, tail])
  }

  function announce (ex: HttpExchange, caller: string): void {
    // Every accepted announcement wakes every long-poll on the hub: one peer may not flood the others.
    if (!announceLimiter.take(caller)) throw new HttpError(429, `too many announcements; at most ${ANNOUNCE_RATE_PER_SECOND} a second`)
    let parsed: Announce
    try { parsed = parseAnnounce(ex.body.toString('utf8')) } catch (err) { throw new HttpError(400, messageOf(err)) }
    service.announce(caller, parsed)
    ex.respond(204, {})
  }

  /** The caller's paths to the other peers, for the hub's mesh view; about itself only (it is known by its address). */
  function report (ex: HttpExchange, caller: string, reports: PathReports): void {
    if (!reportLimiter.take(caller)) throw new HttpError(429, `too many reports; at most ${REPORT_RATE_PER_SECOND} a second`)
    const text = ex.body.toString('utf8')
    let json: unknown
    try { json = JSON.parse(text) } catch { throw new HttpError(400, `report: body is not JSON: ${quote(text)}`) }
    const parsed = reportSchema.safeParse(json)
    if (!parsed.success) throw new HttpError(400, `report: ${parsed.error.issues[0]?.path.join('.') ?? ''}: ${parsed.error.issues[0]?.message ?? 'invalid'}`)
    reports.put(caller, parsed.data, service.table.now)
    ex.respond(204, {})
  }

  /** A full table is megabytes at 10,000 peers: each peer gets a few a minute. */
  function fullFetch (caller: string): void {
    if (limits.takeFullFetch(caller)) return
    overLimit(caller, `over ${limits.limits.fullFetchesPerMinute} full tables a minute`)
    const retry = String(limits.fullFetchRetryAfterS)
    throw new HttpError(429, `too many full tables; at most ${limits.limits.fullFetchesPerMinute} a minute`, undefined, { 'retry-after': retry })
  }

  function wgnatKeepalive (ex: HttpExchange, url: URL, caller: string): void {
    const pubkey = url.searchParams.get('pubkey') ?? ''
    // wg-nat answered a key that matches no peer with 400 and a JSON null; its clients expect that.
    if (!isWgKey(pubkey) || service.table.get(pubkey) === undefined) throw new HttpError(400, 'unknown key', 'null')
    if (pubkey !== caller) throw new HttpError(403, 'pubkey is not the key of the calling peer')
    fullFetch(caller)
    const view = service.view(caller)
    const peers = [...service.table.peers()].filter((p) => view === undefined || view.visible.has(p.publicKey))
    send(ex, 200, JSON.stringify(wgnatKeepaliveResponse(peers, caller)))
  }

  return Object.assign(handle, { limits })
}

/** Parse and schema-check an announcement body. Throws ParseError (one line, the bad value quoted) on anything else. */
export function parseAnnounce (text: string): Announce {
  let json: unknown
  try { json = JSON.parse(text) } catch { throw new ParseError(`announce: body is not JSON: ${quote(text)}`) }
  const parsed = announceSchema.safeParse(json)
  if (!parsed.success) throw new ParseError(`announce: ${parsed.error.issues[0]?.path.join('.') ?? ''}: ${parsed.error.issues[0]?.message ?? 'invalid'}`)
  return parsed.data
}

function send (ex: HttpExchange, status: number, body: string, headers: Record<string, string> = {}): void {
  ex.respond(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers }, body)
}

function intParam (url: URL, name: string, min: number, max: number): number {
  const text = url.searchParams.get(name)
  if (text === null) return min
  if (!/^\d{1,16}$/.test(text)) throw new HttpError(400, `invalid ${name}: ${quote(text)}`)
  return Math.min(max, Math.max(min, Number(text)))
}

/** The largest body a route reads: a path report can be hundreds of kilobytes, every other request a few hundred bytes. */
export function bodyLimit (method: string, path: string): number {
  return method === 'POST' && path === API.report ? REPORT_LIMITS.maxBytes : MAX_REQUEST_BYTES
}

/** Listen on each of `addresses` (the interface's own tunnel addresses) and nowhere else. */
export async function listenOn (addresses: string[], port: number, handler: RegistryHandler): Promise<LeanHttpServer[]> {
  const servers: LeanHttpServer[] = []
  const init = {
    keepAliveTimeoutMs: KEEP_ALIVE_TIMEOUT_MS,
    headersTimeoutMs: HEADERS_TIMEOUT_MS,
    requestTimeoutMs: REQUEST_RECEIVE_TIMEOUT_MS,
    bodyLimit,
    // Connections over the per-source cap are closed before a byte is read: idle sockets cost the others nothing.
    onConnection: (source: string) => handler.limits.openConnection(normaliseIp(source)),
    onConnectionClose: (source: string) => { handler.limits.closeConnection(normaliseIp(source)) }
  }
  try {
    for (const address of addresses) servers.push(await listenLeanHttp(address, port, init, handler))
  } catch (err) {
    await closeAll(servers)
    throw err
  }
  return servers
}

export async function closeAll (servers: LeanHttpServer[]): Promise<void> {
  await Promise.all(servers.map(async (s) => { await s.close() }))
}
