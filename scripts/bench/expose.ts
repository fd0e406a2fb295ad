/**
 * Expose benchmark (issue 14), in the NAT lab: one spoke behind an `easy` router; the hub runs
 * `wgnat-server --expose` for iperf3 (TCP and UDP) and an HTTP server on the spoke's tunnel address.
 *
 *   node dist/scripts/bench/expose.js [--runs 3] [--seconds 5] [--requests 200] [--udp-rate 20M,100M]
 *
 * In one run, interleaved:
 * - TCP throughput: iperf3 from the internet router's namespace to the hub's public port (DNAT into the tunnel)
 *   against iperf3 from the hub to the spoke's tunnel address (the tunnel's own), same spoke server; the ratio.
 * - HTTP latency: `--requests` sequential GETs, each on a new connection, from the internet side through the hub's
 *   public port, and from the hub straight to the tunnel address, in alternating batches of 20; the difference of
 *   the medians is what the expose adds; the tunnel's round trip (ping hub -> spoke, same count) for scale.
 * - UDP: iperf3 -u at each `--udp-rate` (1200-byte datagrams) both ways as above: datagrams/s received and loss.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { writePeerNames } from '../../src/server/inventory/peer-names.js'
import { createLab, labSupport } from '../lab/lab.js'
import { SERVER_BIN, registerWithHub, waitFor } from '../lab/mesh.js'
import { benchArgs } from './bench-args.js'

const { values } = benchArgs({ options: { runs: { type: 'string', default: '3' }, seconds: { type: 'string', default: '5' }, requests: { type: 'string', default: '200' }, 'udp-rate': { type: 'string', default: '20M,100M' } } })
const RUNS = Number(values.runs)
const SECONDS = Number(values.seconds)
const REQUESTS = Number(values.requests)
const UDP_RATES = (values['udp-rate'] ?? '20M,100M').split(',')
const HTTP_BATCH = 20
const HUB_PUBLIC = '198.18.1.2'
const NODE = process.execPath
const IPERF_PORT = 5201
const HTTP_PORT = 8080

const HTTP_SERVER = `const [host, port] = process.argv.slice(1)
require('http').createServer((q, s) => s.end('ok')).listen(Number(port), host)`
/** Sequential GETs, each on a fresh connection; prints the per-request milliseconds as JSON. */
const HTTP_TIMER = `const http = require('http'); const [host, port, n] = process.argv.slice(1)
const one = () => new Promise((resolve, reject) => { const t0 = process.hrtime.bigint()
  http.get({ host, port: Number(port), path: '/', agent: false }, (r) => { r.resume(); r.on('end', () => resolve(Number(process.hrtime.bigint() - t0) / 1e6)) }).on('error', reject) })
;(async () => { const ms = []; for (let i = 0; i < Number(n); i++) ms.push(await one()); process.stdout.write(JSON.stringify(ms)) })()`

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s.length === 0 ? NaN : ((s[(s.length - 1) >> 1]! + s[s.length >> 1]!) / 2) }

async function main (): Promise<void> {
  const support = await labSupport()
  if (!support.ok) { console.error(`expose bench: lab unavailable: ${support.reason}`); process.exitCode = 69; return }
  const lab = await createLab({ sites: [{ name: 'web', kind: 'easy', clients: ['web'] }] })
  const stateDir = mkdtempSync(join(tmpdir(), `wgnat-bench-expose-${lab.id}-`))
  try {
    const web = lab.clients.web!
    await writePeerNames(stateDir, lab.hub.wgIf, new Map([[web.publicKey, 'web']]))
    await registerWithHub(lab)
    lab.spawn('web', ['iperf3', '-s', '-B', web.tunnelIp, '-p', String(IPERF_PORT)])
    lab.spawn('web', [NODE, '-e', HTTP_SERVER, web.tunnelIp, String(HTTP_PORT)])
    lab.spawn('hub', [NODE, SERVER_BIN, '-i', lab.hub.wgIf, '--state-dir', stateDir, '--log-level', 'warn',
      '--expose', `${IPERF_PORT}/tcp=web:${IPERF_PORT}`, '--expose', `${IPERF_PORT}/udp=web:${IPERF_PORT}`, '--expose', `${HTTP_PORT}/tcp=web:${HTTP_PORT}`])
    const ready = await waitFor(async () => (await lab.exec('inet', [NODE, '-e', HTTP_TIMER, HUB_PUBLIC, String(HTTP_PORT), '1'], { reject: false })).exitCode === 0, 20_000)
    if (ready === undefined) throw new Error('the exposed HTTP server never answered')

    const iperf = async (from: string, to: string, udp?: string): Promise<{ bps: number, packets: number, lost: number }> => {
      const args = ['iperf3', '-c', to, '-p', String(IPERF_PORT), '-t', String(SECONDS), '-J', ...(udp !== undefined ? ['-u', '-b', udp, '-l', '1200'] : [])]
      const r = await lab.exec(from, args, { timeoutMs: (SECONDS + 20) * 1000 })
      const end = JSON.parse(r.stdout).end
      if (udp !== undefined) return { bps: end.sum.bits_per_second, packets: end.sum.packets - end.sum.lost_packets, lost: end.sum.lost_packets }
      return { bps: end.sum_received.bits_per_second, packets: 0, lost: 0 }
    }
    const tcp = { exposed: [] as number[], tunnel: [] as number[] }
    type UdpRuns = Record<'exposed' | 'tunnel', Array<{ pps: number, loss: number }>>
    const udp = new Map<string, UdpRuns>(UDP_RATES.map((rate) => [rate, { exposed: [], tunnel: [] }]))
    for (let run = 0; run < RUNS; run++) {
      // Alternate which path goes first, so a slow patch of the shared machine does not land on one side only.
      const order: Array<'exposed' | 'tunnel'> = run % 2 === 0 ? ['exposed', 'tunnel'] : ['tunnel', 'exposed']
      for (const path of order) {
        const [from, to] = path === 'exposed' ? ['inet', HUB_PUBLIC] : ['hub', web.tunnelIp]
        tcp[path].push((await iperf(from, to)).bps)
        for (const rate of UDP_RATES) {
          const u = await iperf(from, to, rate)
          udp.get(rate)![path].push({ pps: u.packets / SECONDS, loss: u.lost / (u.packets + u.lost) })
        }
      }
    }

    const times = async (from: string, to: string, n: number): Promise<number[]> => JSON.parse((await lab.exec(from, [NODE, '-e', HTTP_TIMER, to, String(HTTP_PORT), String(n)], { timeoutMs: 120_000 })).stdout)
    const exposedHttp: number[] = []
    const tunnelHttp: number[] = []
    for (let done = 0; done < REQUESTS; done += HTTP_BATCH) {
      exposedHttp.push(...await times('inet', HUB_PUBLIC, Math.min(HTTP_BATCH, REQUESTS - done)))
      tunnelHttp.push(...await times('hub', web.tunnelIp, Math.min(HTTP_BATCH, REQUESTS - done)))
    }
    const ping = await lab.ping('hub', web.tunnelIp, { count: REQUESTS, intervalS: 0.01, timeoutS: 2 })

    const mbit = (bps: number): string => (bps / 1e6).toFixed(0)
    const t = { exposed: median(tcp.exposed), tunnel: median(tcp.tunnel) }
    const h = { exposed: median(exposedHttp), tunnel: median(tunnelHttp), ping: median(ping.rttMs) }
    const udpCells = (path: 'exposed' | 'tunnel'): string => UDP_RATES.map((rate) => {
      const runs = udp.get(rate)![path]
      return `${median(runs.map((x) => x.pps)).toFixed(0)} | ${(median(runs.map((x) => x.loss)) * 100).toFixed(2)} %`
    }).join(' | ')
    console.log(`expose bench: ${RUNS} runs of ${SECONDS} s (medians), ${REQUESTS} HTTP requests, UDP in 1200-byte datagrams at ${UDP_RATES.join(', ')}bit/s`)
    console.log(`| path | TCP Mbit/s | ${UDP_RATES.map((r) => `UDP ${r} datagrams/s | loss`).join(' | ')} | HTTP request p50 (ms) |`)
    console.log(`| --- | --- | ${UDP_RATES.map(() => '--- | ---').join(' | ')} | --- |`)
    console.log(`| internet -> hub public port -> tunnel (expose) | ${mbit(t.exposed)} | ${udpCells('exposed')} | ${h.exposed.toFixed(2)} |`)
    console.log(`| hub -> spoke tunnel address (the tunnel's own) | ${mbit(t.tunnel)} | ${udpCells('tunnel')} | ${h.tunnel.toFixed(2)} |`)
    // Each run's pair ran back to back, so the median of the per-run ratios is less exposed to the shared machine's
    // slow patches than the ratio of the medians.
    const ratios = tcp.exposed.map((e, i) => e / tcp.tunnel[i]!)
    console.log(`TCP exposed/tunnel: ratio of medians ${(t.exposed / t.tunnel).toFixed(2)}, median of per-run ratios ${median(ratios).toFixed(2)} (goal >= 0.9); runs exposed ${tcp.exposed.map(mbit).join(', ')}, tunnel ${tcp.tunnel.map(mbit).join(', ')} Mbit/s`)
    console.log(`HTTP: the expose adds ${(h.exposed - h.tunnel).toFixed(2)} ms per request (new connection each); tunnel ping RTT p50 ${h.ping.toFixed(2)} ms (${ping.received}/${ping.sent} answered)`)
  } finally {
    await lab.destroy()
    rmSync(stateDir, { recursive: true, force: true })
  }
}

await main()
