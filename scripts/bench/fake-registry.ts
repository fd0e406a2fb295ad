/**
 * A small stand-in registry for benchmarks (not wgnat-server): serves a fixed table of N peers whose endpoints never
 * answer, holds long-polls until their wait runs out (nothing ever changes), accepts announcements and drops them.
 * Run inside the hub's namespace on the hub's tunnel address, so the client finds it where it looks.
 *
 *   node dist/scripts/bench/fake-registry.js --listen 100.64.0.1:51820 --peers 1000 --self <key>=<endpoint>
 *                                            --prefix 100.64 [--relay]
 *
 * Peer i gets a random key, the endpoint 198.18.200.x:51820 (nothing there: the lab's internet router drops it),
 * one /32 in <prefix>.0.0/16 from <prefix>.1.0 on, and NAT class `easy` (so the client keeps trying them).
 */
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:http'
import { benchArgs } from './bench-args.js'

const { values } = benchArgs({
  options: { listen: { type: 'string' }, peers: { type: 'string', default: '1000' }, self: { type: 'string' }, prefix: { type: 'string', default: '100.64' }, relay: { type: 'boolean', default: false } }
})
const [host, port] = (values.listen ?? '').split(':')
const N = Number(values.peers)
const [selfKey, selfEndpoint] = (values.self ?? '').split('=', 2).length === 2 ? [values.self!.slice(0, 44), values.self!.slice(45)] : ['', '']
if (host === undefined || port === undefined || !Number.isInteger(N) || N < 1 || N > 60_000 || selfKey === '') {
  console.error('fake-registry: usage: --listen ip:port --peers N --self <key>=<endpoint> [--prefix 100.64] [--relay]')
  process.exit(64)
}
const now = (): number => Math.floor(Date.now() / 1000)
const peers = Array.from({ length: N }, (_, i) => ({
  publicKey: randomBytes(32).toString('base64'),
  endpoint: `198.18.${200 + Math.floor(i / 250)}.${1 + (i % 250)}:51820`,
  allowedIps: [`${values.prefix}.${1 + Math.floor(i / 250)}.${1 + (i % 250)}/32`],
  latestHandshake: now(),
  online: true,
  announce: { natClass: 'easy', mappedEndpoint: null, lanEndpoints: [], ready: [] }
}))
const self = { publicKey: selfKey, endpoint: selfEndpoint, allowedIps: [], latestHandshake: now(), online: true, announce: null }
const EPOCH = 'bench'
const VERSION = 1
const full = JSON.stringify({ epoch: EPOCH, version: VERSION, now: now(), relay: values.relay, full: true, self, peers, removed: [] })
let requests = 0

const server = createServer((req, res) => {
  requests++
  const url = new URL(req.url ?? '/', 'http://x')
  if (req.method === 'POST') { req.resume(); req.on('end', () => { res.writeHead(204).end() }); return }
  if (url.pathname !== '/v1/table') { res.writeHead(404).end(); return }
  const since = Number(url.searchParams.get('since') ?? '0')
  const wait = Math.min(60, Number(url.searchParams.get('wait') ?? '0'))
  if (since !== VERSION) { res.writeHead(200, { 'content-type': 'application/json' }).end(full); return }
  const answer = (): void => { res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ epoch: EPOCH, version: VERSION, now: now(), relay: values.relay, full: false, self, peers: [], removed: [] })) }
  if (wait <= 0) { answer(); return }
  const timer = setTimeout(answer, wait * 1000)
  req.on('close', () => { clearTimeout(timer) })
})
server.listen(Number(port), host, () => { console.error(`fake-registry: ${N} peers on ${host}:${port}`) })
setInterval(() => { console.error(`fake-registry: ${requests} requests`) }, 60_000).unref()
