import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { InvalidArgumentError } from 'commander'
import { WgnatError, messageOf, quote } from '../errors.js'
import { parseIp } from '../ip.js'
import type { Logger } from '../log.js'
import { renderMetrics, type Registry } from './prom.js'

/** Where `--http` listens. */
export interface HttpAddress { host: string, port: number }

/** The `--http` help text: what it serves and who can reach it. */
export const HTTP_OPTION_HELP = 'serve Prometheus metrics at http://<addr:port>/metrics (off by default); anyone who can reach addr:port can read them: ' +
  'bind it to loopback (127.0.0.1:9586) or an address only your monitoring reaches'

/** commander parser for `--http`: `ip:port` or `[ipv6]:port`; an address, never a name. */
export function httpAddressArg (value: string): HttpAddress {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value)
  const host = m?.[1] ?? m?.[2]
  const port = Number(m?.[3])
  if (m === null || host === undefined || port < 1 || port > 65535) throw new InvalidArgumentError(`${quote(value)} is not addr:port (e.g. 127.0.0.1:9586)`)
  try { parseIp(host) } catch { throw new InvalidArgumentError(`${quote(value)}: ${quote(host)} is not an IP address`) }
  return { host, port }
}

/** Extra routes of one daemon's listener (the hub's mesh page); returns false when the path is not theirs. */
export type HttpRoute = (req: IncomingMessage, res: ServerResponse, url: URL) => boolean | Promise<boolean>

export interface HttpListener { readonly url: string, close: () => Promise<void> }

/** Largest time one request may take (scrapes are quick; nothing here long-polls). */
const REQUEST_TIMEOUT_MS = 10_000

/**
 * The daemons' observability listener: GET /metrics (Prometheus text), plus the routes given. Read-only: any
 * other method gets 405. It binds exactly where the user said, nowhere else.
 */
export async function startHttpListener (at: HttpAddress, registry: Registry, logger: Logger, routes: HttpRoute[] = []): Promise<HttpListener> {
  const server: Server = createServer((req, res) => { void handle(req, res) })
  server.requestTimeout = REQUEST_TIMEOUT_MS
  server.headersTimeout = REQUEST_TIMEOUT_MS
  async function handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') { text(res, 405, 'only GET\n'); return }
      const url = new URL(req.url ?? '/', 'http://wgnat')
      if (url.pathname === '/metrics') {
        const m = await renderMetrics(registry)
        res.writeHead(200, { 'content-type': m.contentType, 'cache-control': 'no-store' }).end(m.text)
        return
      }
      for (const route of routes) if (await route(req, res, url)) return
      text(res, 404, 'not found\n')
    } catch (err) {
      logger.warn(`http ${req.url ?? ''}: ${messageOf(err)}`)
      if (!res.headersSent) text(res, 500, 'internal error\n')
      else res.destroy()
    }
  }
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen({ host: at.host, port: at.port, exclusive: true }, () => { server.off('error', reject); resolve() })
    })
  } catch (err) {
    throw new WgnatError(`--http: cannot listen on ${formatHttpAddress(at)}: ${messageOf(err)}`, 73)
  }
  const bound = server.address()
  const url = `http://${formatHttpAddress({ host: at.host, port: typeof bound === 'object' && bound !== null ? bound.port : at.port })}`
  logger.info(`metrics at ${url}/metrics (reachable by anyone who can reach ${formatHttpAddress(at)})`)
  return {
    url,
    async close () {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}

export function formatHttpAddress (at: HttpAddress): string {
  return at.host.includes(':') ? `[${at.host}]:${at.port}` : `${at.host}:${at.port}`
}

function text (res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' }).end(body)
}
