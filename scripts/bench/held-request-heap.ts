/**
 * What Node's `http` keeps per kept-alive connection and per held request (issue 16: the registry's RSS with 10,000
 * long-polls), on its own: a plain `http` server with the registry's timeouts, `--conns` connections from a child
 * process over loopback, each either holding a request (as a long-poll is held) or idle after one answered request
 * (a kept-alive connection between two polls). Prints V8 heap and RSS per connection (after two full GCs), and with
 * `--by-type` the heap per connection by object type (two heap snapshots, before and after). `--server lean` measures
 * the registry's own server instead (`lean-http.ts`, which the registry uses since session 9); one server per run
 * (a fresh process each: RSS is not given back between two).
 *
 *   node --expose-gc dist/scripts/bench/held-request-heap.js [--conns 4000] [--by-type] [--server node|lean]
 *
 * Node flags go before the script (e.g. `--optimize-for-size`): the figures are then under those flags.
 */
import { fork } from 'node:child_process'
import { createServer, type ServerResponse } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import { readFileSync, rmSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { writeHeapSnapshot } from 'node:v8'
import { HEADERS_TIMEOUT_MS, KEEP_ALIVE_TIMEOUT_MS, REQUEST_RECEIVE_TIMEOUT_MS, bodyLimit } from '../../src/server/registry/registry-http.js'
import { listenLeanHttp, type HttpExchange } from '../../src/server/registry/lean-http.js'
import { benchArgs, benchFail } from './bench-args.js'

const { values } = benchArgs({ options: { conns: { type: 'string', default: '4000' }, 'by-type': { type: 'boolean', default: false }, server: { type: 'string', default: 'node' }, client: { type: 'string' }, hold: { type: 'string' } }, strict: false })
const CONNS = Number(values.conns)

/** Client side: `CONNS` connections from 127.2.x.y, one request each, kept open. */
if (typeof values.client === 'string') {
  const port = Number(values.client)
  let open = 0
  for (let i = 0; i < CONNS; i++) {
    const s = connect({ port, host: '127.0.0.1', localAddress: `127.2.${Math.floor(i / 250)}.${(i % 250) + 1}` })
    s.on('connect', () => {
      s.write(`GET /v1/table?since=5&wait=900 HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: keep-alive\r\n\r\n`)
      if (++open === CONNS) process.send?.('open')
    })
    s.on('error', () => {})
  }
} else {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc === undefined) throw new Error('held-request-heap: run node with --expose-gc')
  const rows: string[] = []
  // Idle connections first: the held requests' garbage is not in the second measurement's baseline.
  const kind = String(values.server)
  if (kind !== 'node' && kind !== 'lean') benchFail(`--server: 'node' or 'lean', not '${kind}'`)
  for (const hold of [false, true]) rows.push(await measure(kind, hold))
  console.log(`| per connection (${CONNS}, node flags: ${process.execArgv.filter((f) => f !== '--expose-gc').join(' ') || 'none'}) | V8 heap used (B) | RSS (B) |\n| --- | --- | --- |\n${rows.join('\n')}`)
}

/** A server on loopback that holds every request or answers it at once: Node's `http`, or the registry's own. */
async function serve (kind: 'node' | 'lean', hold: boolean, onRequest: () => void): Promise<{ port: number, close: () => Promise<void> }> {
  if (kind === 'lean') {
    const held: HttpExchange[] = []
    const lean = await listenLeanHttp('127.0.0.1', 0, { keepAliveTimeoutMs: KEEP_ALIVE_TIMEOUT_MS, headersTimeoutMs: HEADERS_TIMEOUT_MS, requestTimeoutMs: REQUEST_RECEIVE_TIMEOUT_MS, bodyLimit }, (ex) => {
      onRequest()
      if (hold) { held.push(ex); return }
      ex.respond(200, {}, '{}')
    })
    return { port: (lean.server.address() as AddressInfo).port, close: async () => { held.length = 0; await lean.close() } }
  }
  const held: ServerResponse[] = []
  const server = createServer((_req, res) => {
    onRequest()
    if (hold) { held.push(res); return }
    res.writeHead(200, { 'content-length': 2 }).end('{}')
  })
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS
  server.headersTimeout = HEADERS_TIMEOUT_MS
  server.requestTimeout = REQUEST_RECEIVE_TIMEOUT_MS
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => { server.closeAllConnections(); server.close(); held.length = 0 }
  }
}

async function measure (kind: 'node' | 'lean', hold: boolean): Promise<string> {
  let requests = 0
  const server = await serve(kind, hold, () => { requests++ })
  const usage = (): { heap: number, rss: number } => { gc?.(); gc?.(); const m = process.memoryUsage(); return { heap: m.heapUsed, rss: m.rss } }
  await new Promise((resolve) => setTimeout(resolve, 300))
  const snap0 = values['by-type'] === true ? writeHeapSnapshot() : undefined
  const before = usage()
  const child = fork(fileURLToPath(import.meta.url), ['--client', String(server.port), '--conns', String(CONNS)])
  await new Promise((resolve) => child.once('message', resolve))
  while (requests < CONNS) await new Promise((resolve) => setTimeout(resolve, 100))
  await new Promise((resolve) => setTimeout(resolve, 1000))
  const after = usage()
  const snap1 = values['by-type'] === true ? writeHeapSnapshot() : undefined
  child.kill()
  await server.close()
  const what = `${kind === 'lean' ? 'registry server' : 'Node http'}: ${hold ? 'a request held' : 'idle after one answered request'}`
  if (snap0 !== undefined && snap1 !== undefined) {
    const a = byType(snap0); const b = byType(snap1)
    rmSync(snap0); rmSync(snap1)
    const diff = [...b].map(([k, [n, size]]) => [k, (n - (a.get(k)?.[0] ?? 0)) / CONNS, (size - (a.get(k)?.[1] ?? 0)) / CONNS] as const)
      .sort((x, y) => y[2] - x[2]).slice(0, 16)
    console.error(`held-request-heap: ${what}: heap per connection by type (bytes, objects):\n${diff.map(([k, n, s]) => `  ${s.toFixed(0).padStart(6)} ${n.toFixed(1).padStart(5)}  ${k}`).join('\n')}`)
  }
  return `| ${what} | ${((after.heap - before.heap) / CONNS).toFixed(0)} | ${((after.rss - before.rss) / CONNS).toFixed(0)} |`
}

/** Self size and count of a heap snapshot's objects by type and constructor name. */
function byType (file: string): Map<string, [number, number]> {
  const s = JSON.parse(readFileSync(file, 'utf8')) as { snapshot: { meta: { node_fields: string[], node_types: [string[]] } }, nodes: number[], strings: string[] }
  const fields = s.snapshot.meta.node_fields
  const types = s.snapshot.meta.node_types[0]
  const [ti, ni, si] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f)) as [number, number, number]
  const out = new Map<string, [number, number]>()
  for (let i = 0; i < s.nodes.length; i += fields.length) {
    const type = types[s.nodes[i + ti] as number] ?? '?'
    const key = ['object', 'closure', 'native'].includes(type) ? `${type} ${s.strings[s.nodes[i + ni] as number] ?? ''}` : `(${type})`
    const e = out.get(key) ?? [0, 0]
    e[0]++; e[1] += s.nodes[i + si] as number
    out.set(key, e)
  }
  return out
}
