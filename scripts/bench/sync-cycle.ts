/**
 * The parts of one client sync cycle at rest, in CPU time, without a lab (issues 16 and 18): N peers parked on the
 * hub (every attempt failed), nothing changing.
 *
 *   node dist/scripts/bench/sync-cycle.js [--peers 1000,10000] [--rounds 50] [--rest-ms 5000 --rest-rounds 12]
 *
 * Per N: starting `wg` (here `cat` of an N-peer dump through wgCli's own runner, `wgRunner` with `cat` as the `wg`
 * path, its default timeout and no signal, as the client's reads call it: the process start and reading its output,
 * not wg's own work; through the shell the client keeps, and a process per call as before session 8: this process's
 * CPU only, so the kept shell's fork of `cat` is not counted), parsing the dump (afresh, and with the previous read kept by a WgDumpReader as the client does),
 * reconciling (the path machine over N quiet peers), and vetting a table of N peers (done only when the registry's
 * table changes). CPU of this process (user+system) per round, median of `--rounds`; printed as Markdown.
 *
 * `--rest-ms <ms>`: also a second table, the same cycle (start `wg`, parse with the previous read kept, reconcile) run
 * `--rest-rounds` times with `<ms>` of idleness between cycles, as the client at rest does (every 30 s): the figures
 * back to back above keep V8's young generation grown and the caches warm; at rest the young generation shrinks to
 * its minimum, so a cycle's garbage costs scavenges inside it (issue 16). Rounds alternate between a reconcile of
 * every read and the client's QuietReads (a quiet read skips it); median (range) of `--rest-rounds` rounds of each.
 */
import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { QuietReads } from '../../src/client/paths/quiet-reads.js'
import { defaultTiming, reconcile, type PeerTrack, type ReconcileInput } from '../../src/client/paths/reconcile.js'
import { vetTable, type DesiredPeer } from '../../src/client/paths/vet-table.js'
import { parseEndpoint, parsePrefix } from '../../src/shared/ip.js'
import type { TablePeer } from '../../src/shared/protocol.js'
import { parseWgDumpAsync } from '../../src/shared/wg-dump.js'
import { WgDumpReader } from '../../src/shared/wg-dump-reader.js'
import { wgRunner } from '../../src/shared/wg-runner.js'
import { benchArgs } from './bench-args.js'

const { values } = benchArgs({ options: { peers: { type: 'string', default: '1000,10000' }, rounds: { type: 'string', default: '50' }, 'rest-ms': { type: 'string' }, 'rest-rounds': { type: 'string', default: '12' } } })
const REST_MS = values['rest-ms'] === undefined ? undefined : Number(values['rest-ms'])
const REST_ROUNDS = Number(values['rest-rounds'])
const SIZES = (values.peers ?? '').split(',').map(Number)
const ROUNDS = Number(values.rounds)
if (!SIZES.every((n) => Number.isInteger(n) && n > 0 && n <= 60_000) || !Number.isInteger(ROUNDS) || ROUNDS < 1) {
  console.error('sync-cycle: --peers takes whole numbers 1-60000 separated by commas, --rounds a positive whole number')
  process.exit(64)
}

const key = (i: number | string): string => createHash('sha256').update(`sync-cycle-${i}`).digest('base64')
const cpuMs = (): number => { const u = process.cpuUsage(); return (u.user + u.system) / 1000 }
async function median (fn: () => Promise<unknown>): Promise<number> {
  await fn()
  const xs: number[] = []
  for (let r = 0; r < ROUNDS; r++) { const c0 = cpuMs(); await fn(); xs.push(cpuMs() - c0) }
  xs.sort((a, b) => a - b)
  return xs[Math.floor(xs.length / 2)] as number
}

// The client's reads: `wg show <iface> dump` through wgCli's runner, default timeout, no signal: through the shell
// the client keeps (session 8), and a process per call (as before) for comparison.
const runWg = wgRunner({ wgPath: 'cat', persistent: true })
const runWgForked = wgRunner({ wgPath: 'cat' })
const dir = mkdtempSync(join(tmpdir(), 'wgnat-sync-cycle-'))
const rows: string[] = []
const restRows: string[] = []
/** Median (range) of `xs`. */
const spread = (xs: number[]): string => { const s = [...xs].sort((a, b) => a - b); return `${(s[Math.floor(s.length / 2)] as number).toFixed(1)} (${(s[0] as number).toFixed(1)}–${(s.at(-1) as number).toFixed(1)})` }
try {
  for (const n of SIZES) {
    const self = key('self')
    const timing = defaultTiming(25)
    const lines = [`(hidden)\t${self}\t51820\toff`]
    const table: TablePeer[] = []
    const desired = new Map<string, DesiredPeer>()
    const tracks = new Map<string, PeerTrack>()
    for (let i = 0; i < n; i++) {
      const k = key(i)
      const endpoint = `198.18.${200 + Math.floor(i / 250)}.${1 + (i % 250)}:51820`
      const ip = `100.64.${1 + Math.floor(i / 250)}.${1 + (i % 250)}/32`
      // A parked peer: handshakes sent and never answered, keepalive off, no allowed IPs.
      lines.push([k, '(none)', endpoint, '(none)', '0', '0', '1184', 'off'].join('\t'))
      table.push({ publicKey: k, endpoint, allowedIps: [ip], latestHandshake: 0, online: true, announce: { natClass: 'easy', mappedEndpoint: null, lanEndpoints: [], ready: [] } })
      desired.set(k, { publicKey: k, endpoint: parseEndpoint(endpoint), allowedIps: [ip], online: true, candidates: [], natClass: 'easy', readyFor: false, mayInitiate: true, mapped: null })
      tracks.set(k, { phase: 'hub', sinceMs: 1000, failures: 4, retryAtMs: Number.POSITIVE_INFINITY, endpoint, targets: endpoint, rx: 0, rxAtMs: 1000, reason: 'parked', classes: 'easy/easy' })
    }
    const text = lines.join('\n') + '\n'
    const file = join(dir, `dump-${n}.txt`)
    writeFileSync(file, text)
    // wireguard-go lists its peers in another order on each read: the reader compares every line, parses none.
    const reordered = [lines[0], ...lines.slice(1).reverse()].join('\n') + '\n'
    const reorderedFile = join(dir, `dump-${n}-reordered.txt`)
    writeFileSync(reorderedFile, reordered)
    const reader = new WgDumpReader()
    const device = await reader.parse(text)
    let turn = 0
    const mesh = [parsePrefix('100.64.0.0/16')]
    const forked = await median(async () => await runWgForked([file], {}))
    const spawn = await median(async () => await runWg([file], {}))
    const parse = await median(async () => await parseWgDumpAsync(text))
    const parseMemo = await median(async () => await reader.parse(turn++ % 2 === 0 ? reordered : text))
    const rec = await median(async () => reconcile({ nowMs: 2_000_000, selfKey: self, device, desired, tracks, timing, self: { natClass: 'easy', publicAddress: '198.18.11.2' }, hubRelays: true }))
    const vet = await median(async () => vetTable(table, { selfKey: self, registryKey: key('hub'), meshPrefixes: mesh, registryAddresses: ['100.64.0.1'], hubPrefixes: mesh, managed: new Set(desired.keys()), device }))
    if (REST_MS !== undefined) {
      // A cycle at rest: the parts one after another, then idleness; the first two rounds are left out (warm-up).
      // Rounds alternate between reconciling every read (as before issue 16's QuietReads) and the client's way now
      // (QuietReads: a read that changes nothing for parked peers skips the reconcile), interleaved in one process.
      const parts: Record<'full' | 'quiet', number[][]> = { full: [[], [], [], []], quiet: [[], [], [], []] }
      const quietReads = new QuietReads()
      // Each way keeps its own tracks, as a client would (QuietReads needs the tracks its last output became).
      const restTracks = { full: tracks, quiet: tracks }
      for (let r = 0; r < 2 * REST_ROUNDS + 2; r++) {
        await new Promise((resolve) => setTimeout(resolve, REST_MS))
        const way = r % 2 === 0 ? 'full' : 'quiet'
        const c0 = cpuMs()
        const out = await runWg([turn % 2 === 0 ? file : reorderedFile], {})
        const c1 = cpuMs()
        const dev = await reader.parse(out); turn++
        const c2 = cpuMs()
        const input: ReconcileInput = { nowMs: 2_000_000 + r * REST_MS, selfKey: self, device: dev, desired, tracks: restTracks[way], timing, self: { natClass: 'easy', publicAddress: '198.18.11.2' }, hubRelays: true }
        restTracks[way] = (way === 'full' ? reconcile(input) : quietReads.reuse(input) ?? quietReads.record(input, reconcile(input))).tracks
        const c3 = cpuMs()
        if (r >= 2) { const p = parts[way]; p[0]!.push(c1 - c0); p[1]!.push(c2 - c1); p[2]!.push(c3 - c2); p[3]!.push(c3 - c0) }
      }
      for (const way of ['full', 'quiet'] as const) {
        const p = parts[way]
        restRows.push(`| ${n} | ${REST_MS} | ${way === 'full' ? 'every read' : 'QuietReads'} | ${spread(p[0]!)} | ${spread(p[1]!)} | ${spread(p[2]!)} | ${spread(p[3]!)} |`)
      }
    }
    rows.push(`| ${n} | ${forked.toFixed(1)} | ${spawn.toFixed(1)} | ${parse.toFixed(1)} | ${parseMemo.toFixed(1)} | ${rec.toFixed(1)} | ${(spawn + parseMemo + rec).toFixed(1)} | ${vet.toFixed(1)} |`)
    console.error(`sync-cycle: ${n} peers done`)
  }
} finally {
  rmSync(dir, { recursive: true, force: true })
}
console.log('| peers | start `wg`, a process per call (ms) | start `wg` through the kept shell (ms) | parse afresh (ms) | parse, previous read kept (ms) | reconcile (ms) | a cycle at rest: kept shell + kept parse + reconcile (ms) | vet a new table (ms) |')
console.log('| --- | --- | --- | --- | --- | --- | --- | --- |')
for (const r of rows) console.log(r)
if (restRows.length > 0) {
  console.log('')
  console.log('| peers | idle between cycles (ms) | reconcile | start `wg` through the kept shell (ms) | parse, previous read kept (ms) | reconcile (ms) | the cycle (ms) |')
  console.log('| --- | --- | --- | --- | --- | --- | --- |')
  for (const r of restRows) console.log(r)
}
