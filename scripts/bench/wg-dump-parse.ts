/**
 * The registry's once-a-second parse of a big `wg show <iface> dump` (issues 16 and 18), on its own, in CPU time.
 *
 *   node dist/scripts/bench/wg-dump-parse.js [--peers 10000] [--reads 21] [--dump-file <a saved real dump>]
 *
 * The dump is built as `wg show dump` prints one (or read from --dump-file, e.g. `wg show wg0 dump > f` on a real
 * hub). Each figure is the median CPU time (process.cpuUsage, user + system) of one read's parse over --reads reads:
 * - every line parsed (`parseWgDumpAsync`, as before WgDumpReader; its field caches warm);
 * - WgDumpReader, the same text again (kernel WireGuard lists peers in a stable order);
 * - WgDumpReader, the same lines in another order each read (wireguard-go lists its peers in Go's random map order);
 * - WgDumpReader, another order and 5 % of the lines changed (transfer counters, as keepalives move them).
 */
import { readFileSync } from 'node:fs'
import { parseWgDumpAsync } from '../../src/shared/wg-dump.js'
import { WgDumpReader } from '../../src/shared/wg-dump-reader.js'
import { peerKey } from './synthetic-wg.js'
import { benchArgs } from './bench-args.js'

const { values } = benchArgs({ options: { peers: { type: 'string', default: '10000' }, reads: { type: 'string', default: '21' }, 'dump-file': { type: 'string' } } })
const READS = Number(values.reads)

function built (n: number): string {
  const head = ['yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=', peerKey(-1), '51820', 'off'].join('\t')
  const lines = Array.from({ length: n }, (_, i) => [peerKey(i), '(none)', `198.18.${200 + Math.floor(i / 250) % 50}.${(i % 250) + 2}:${40000 + (i % 20000)}`,
    `127.1.${Math.floor(i / 256)}.${i % 256}/32`, '0', '0', '0', 'off'].join('\t'))
  return [head, ...lines].join('\n') + '\n'
}

const text = values['dump-file'] === undefined ? built(Number(values.peers)) : readFileSync(values['dump-file'], 'utf8')
const [head, ...peerLines] = text.split('\n').filter((l) => l.length > 0) as [string, ...string[]]

function shuffled (changedShare: number, round: number): string {
  const lines = peerLines.map((l) => Math.random() < changedShare ? l.replace(/\t(\d+)\t(\d+)\t([^\t]+)$/, `\t${round}\t$2\t$3`) : l)
  for (let i = lines.length - 1; i > 0; i--) { const j = Math.floor(Math.random() * (i + 1)); [lines[i], lines[j]] = [lines[j] as string, lines[i] as string] }
  return [head, ...lines].join('\n') + '\n'
}

async function cpuMs (fn: () => Promise<unknown>): Promise<number> {
  const c = process.cpuUsage()
  await fn()
  const d = process.cpuUsage(c)
  return (d.user + d.system) / 1000
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN

async function series (make: (round: number) => string, parse: (t: string) => Promise<unknown>): Promise<number> {
  const times: number[] = []
  await parse(make(0))
  for (let r = 1; r <= READS; r++) {
    const t = make(r)
    times.push(await cpuMs(async () => await parse(t)))
  }
  return median(times)
}

const rows: Array<[string, number]> = []
rows.push(['every line parsed (parseWgDumpAsync)', await series((r) => shuffled(0, r), parseWgDumpAsync)])
for (const [name, make] of [
  ['WgDumpReader, the same text again', () => text],
  ['WgDumpReader, same lines, another order', (r: number) => shuffled(0, r)],
  ['WgDumpReader, another order, 5 % of lines changed', (r: number) => shuffled(0.05, r)]
] as Array<[string, (r: number) => string]>) {
  const reader = new WgDumpReader()
  rows.push([name, await series(make, async (t) => await reader.parse(t))])
}
console.log(`${peerLines.length} peers, ${text.length} bytes, median of ${READS} reads, CPU ms per read:\n`)
console.log('| parse | CPU per read (ms) |')
console.log('| --- | --- |')
for (const [name, ms] of rows) console.log(`| ${name} | ${ms.toFixed(1)} |`)
