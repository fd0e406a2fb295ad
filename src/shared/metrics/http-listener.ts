import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { WgnatError, messageOf } from '../errors.js'
import { formatHttpAddress, type HttpAddress } from './http-option.js'
import type { Logger } from '../log.js'
import { renderMetrics, type Registry } from './prom.js'

export { httpAddressArg, HTTP_OPTION_HELP, type HttpAddress } from './http-option.js'

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

function text (res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' }).end(body)
}
