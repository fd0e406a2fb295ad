import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Logger } from '../shared/log.js'
import { messageOf, quote } from '../shared/errors.js'
import { normaliseIp } from '../shared/ip.js'
import { API, MAX_WAIT_S, announceSchema } from '../shared/protocol.js'
import { isWgKey, shortKey } from '../shared/wg-dump.js'
import type { RegistryService } from './registry-service.js'
import { wgnatKeepaliveResponse } from './wgnat-compat.js'
import { SourceRateLimiter } from '../shared/rate-limiter.js'

/** Announcements one peer may make a second, sustained, and in a burst (a client announces a few per attempt). */
export const ANNOUNCE_RATE_PER_SECOND = 2
export const ANNOUNCE_BURST = 20

/** Largest request body the registry reads (an announce is a few hundred bytes). */
export const MAX_REQUEST_BYTES = 16 * 1024

class HttpError extends Error {
  constructor (readonly status: number, message: string, readonly body?: string) { super(message) }
}

/**
 * The registry's request handler. The caller is whoever WireGuard says the source address belongs to;
 * nothing the client sends about its own identity is trusted.
 */
export function registryHandler (service: RegistryService, logger: Logger, opts: { relay?: boolean | (() => boolean) } = {}) {
  // Whether the hub forwards between spokes, as the table's `relay` tells clients (see forwardingProbe).
  const relayNow = typeof opts.relay === 'function' ? opts.relay : () => opts.relay === true
  const announceLimiter = new SourceRateLimiter(ANNOUNCE_RATE_PER_SECOND, ANNOUNCE_BURST)
  return async function handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const source = normaliseIp(req.socket.remoteAddress ?? '')
      const caller = service.identify(source)
      if (caller === undefined) throw new HttpError(403, `source address ${quote(source)} is not a peer of this hub`)
      const url = new URL(req.url ?? '/', 'http://registry')
      const route = `${req.method ?? ''} ${url.pathname}`
      logger.debug({ peer: shortKey(caller), route }, 'request')
      switch (route) {
        case `GET ${API.table}`: return await table(req, res, url, caller)
        case `POST ${API.announce}`: return await announce(req, res, caller)
        case `POST ${API.wgnatKeepalive}`: return wgnatKeepalive(res, url, caller)
        default: throw new HttpError(404, `no such endpoint: ${quote(route)}`)
      }
    } catch (err) {
      const status = err instanceof HttpError ? err.status : 500
      if (status === 500) logger.warn(`request failed: ${messageOf(err)}`)
      if (res.headersSent) { res.destroy(); return }
      const body = err instanceof HttpError && err.body !== undefined ? err.body : JSON.stringify({ error: messageOf(err) })
      send(res, status, body)
    }
  }

  async function table (req: IncomingMessage, res: ServerResponse, url: URL, caller: string): Promise<void> {
    const since = intParam(url, 'since', 0, Number.MAX_SAFE_INTEGER)
    const waitS = intParam(url, 'wait', 0, MAX_WAIT_S)
    if (since > 0 && waitS > 0) {
      await service.changedSince(since, waitS * 1000)
      if (res.destroyed) return
    }
    const t = service.table
    const self = t.get(caller)
    if (self === undefined) throw new HttpError(403, 'caller is no longer a peer of this hub')
    const delta = t.since(since, caller)
    const head = Buffer.from(`{"epoch":"${t.epoch}","version":${delta.version},"now":${t.now},"relay":${String(relayNow())},"full":${String(delta.full)},"self":${JSON.stringify(self)},"peers":[`)
    const tail = Buffer.from(`],"removed":${JSON.stringify(delta.removed)}}`)
    const chunks = [head, ...delta.peers, tail]
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': chunks.reduce((n, c) => n + c.length, 0), 'cache-control': 'no-store' })
    for (const c of chunks) res.write(c)
    res.end()
  }

  async function announce (req: IncomingMessage, res: ServerResponse, caller: string): Promise<void> {
    // Every accepted announcement wakes every long-poll on the hub: one peer may not flood the others.
    if (!announceLimiter.take(caller)) throw new HttpError(429, `too many announcements; at most ${ANNOUNCE_RATE_PER_SECOND} a second`)
    const text = await readBody(req)
    let json: unknown
    try { json = JSON.parse(text) } catch { throw new HttpError(400, `announce: body is not JSON: ${quote(text)}`) }
    const parsed = announceSchema.safeParse(json)
    if (!parsed.success) throw new HttpError(400, `announce: ${parsed.error.issues[0]?.path.join('.') ?? ''}: ${parsed.error.issues[0]?.message ?? 'invalid'}`)
    service.announce(caller, parsed.data)
    res.writeHead(204).end()
  }

  function wgnatKeepalive (res: ServerResponse, url: URL, caller: string): void {
    const pubkey = url.searchParams.get('pubkey') ?? ''
    // wg-nat answered a key that matches no peer with 400 and a JSON null; its clients expect that.
    if (!isWgKey(pubkey) || service.table.get(pubkey) === undefined) throw new HttpError(400, 'unknown key', 'null')
    if (pubkey !== caller) throw new HttpError(403, 'pubkey is not the key of the calling peer')
    send(res, 200, JSON.stringify(wgnatKeepaliveResponse(service.table.peers(), caller)))
  }
}

function send (res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' })
  res.end(body)
}

function intParam (url: URL, name: string, min: number, max: number): number {
  const text = url.searchParams.get(name)
  if (text === null) return min
  if (!/^\d{1,16}$/.test(text)) throw new HttpError(400, `invalid ${name}: ${quote(text)}`)
  return Math.min(max, Math.max(min, Number(text)))
}

async function readBody (req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > MAX_REQUEST_BYTES) throw new HttpError(413, `request body over ${MAX_REQUEST_BYTES} bytes`)
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks).toString('utf8')
}

/** Listen on each of `addresses` (the interface's own tunnel addresses) and nowhere else. */
export async function listenOn (addresses: string[], port: number, handler: ReturnType<typeof registryHandler>): Promise<Server[]> {
  const servers: Server[] = []
  try {
    for (const address of addresses) {
      const server = createServer((req, res) => { void handler(req, res) })
      server.keepAliveTimeout = (MAX_WAIT_S + 5) * 1000
      server.headersTimeout = 10_000
      server.requestTimeout = (MAX_WAIT_S + 10) * 1000
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen({ host: address, port, exclusive: true }, () => { server.off('error', reject); resolve() })
      })
      servers.push(server)
    }
  } catch (err) {
    await closeAll(servers)
    throw err
  }
  return servers
}

export async function closeAll (servers: Server[]): Promise<void> {
  await Promise.all(servers.map(async (s) => {
    s.closeAllConnections()
    await new Promise<void>((resolve) => s.close(() => resolve()))
  }))
}
