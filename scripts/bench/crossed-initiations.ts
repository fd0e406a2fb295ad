/**
 * Two WireGuard peers that start their handshakes at the same moment (paths/crossed-handshakes.ts), and what one
 * side's fresh initiation does about it: real wireguard-go, no wgnat.
 *
 *   flock /work/wt/bench.lock node dist/scripts/bench/crossed-initiations.js [--runs 10] [--reinit-after 250]
 *
 * A lab of two `public` sites (no NAT, no filter: both initiations always get through). Per run, each client's peer
 * entry for the other is removed, then both are configured at once (endpoint, keepalive, allowed IPs: WireGuard
 * sends an initiation at once; both `wg set` are started from one shell), and the time until both sides show a
 * handshake is taken, polling every 10 ms.
 * Modes, interleaved run by run:
 * - `plain`: WireGuard alone;
 * - `reinit`: what wgnat does: once the side whose key sorts first has heard from the peer and has no handshake
 *   `--reinit-after` ms later, it removes and re-adds the peer in one `wg set`.
 * Prints each run and, per mode, the median, the range and how many runs took over a second.
 */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { parseWgDump } from '../../src/shared/wg-dump.js'
import { createLab, labSupport, type Lab, type LabHost } from '../lab/lab.js'
import { median } from './median.js'
import { benchArgs } from './bench-args.js'

const { values } = benchArgs({ options: { runs: { type: 'string', default: '10' }, 'reinit-after': { type: 'string', default: '250' } } })
const RUNS = Number(values.runs)
const REINIT_AFTER_MS = Number(values['reinit-after'])
if (!Number.isInteger(RUNS) || RUNS < 1 || !Number.isFinite(REINIT_AFTER_MS) || REINIT_AFTER_MS < 0) {
  console.error('crossed-initiations: usage: [--runs N>=1] [--reinit-after ms]')
  process.exit(64)
}
const GIVE_UP_MS = 15_000
const POLL_MS = 10

type Mode = 'plain' | 'reinit'

/** One `wg set` clause configuring `peer` on `host` as an attempt does: endpoint, keepalive, its tunnel address. */
function peerArgs (peer: LabHost): string[] {
  return ['peer', peer.publicKey, 'endpoint', `${peer.underlayIp}:${peer.listenPort}`, 'persistent-keepalive', '25', 'allowed-ips', `${peer.tunnelIp}/32`]
}

/** transfer-rx and latest-handshake of `peer` on `host`'s interface. */
async function peerState (lab: Lab, host: LabHost, peer: LabHost): Promise<{ rx: number, handshake: number }> {
  const device = parseWgDump((await lab.exec(host.name, ['wg', 'show', host.wgIf, 'dump'])).stdout)
  const p = device.peers.find((x) => x.publicKey === peer.publicKey)
  return { rx: p?.transferRx ?? 0, handshake: p?.latestHandshake ?? 0 }
}

async function once (lab: Lab, mode: Mode): Promise<{ ms: number, reinit: boolean }> {
  const a = lab.clients.a as LabHost
  const b = lab.clients.b as LabHost
  await Promise.all([lab.exec('a', ['wg', 'set', a.wgIf, 'peer', b.publicKey, 'remove']), lab.exec('b', ['wg', 'set', b.wgIf, 'peer', a.publicKey, 'remove'])])
  const [first, second] = a.publicKey < b.publicKey ? [a, b] : [b, a]
  // Both from one shell, a fork apart (two spawns from here would be milliseconds apart, and the first initiation
  // would arrive before the second side sends).
  const both = [`ip netns exec ${a.ns} wg set ${a.wgIf} ${peerArgs(b).join(' ')} &`, `ip netns exec ${b.ns} wg set ${b.wgIf} ${peerArgs(a).join(' ')} &`, 'wait'].join('\n')
  const t0 = Date.now()
  await promisify(execFile)('sh', ['-c', both])
  let heardAt: number | undefined
  let reinit = false
  while (Date.now() - t0 < GIVE_UP_MS) {
    const [s1, s2] = await Promise.all([peerState(lab, first, second), peerState(lab, second, first)])
    if (s1.handshake > 0 && s2.handshake > 0) return { ms: Date.now() - t0, reinit }
    if (mode === 'reinit' && !reinit && s1.handshake === 0 && s1.rx > 0) {
      heardAt ??= Date.now()
      if (Date.now() - heardAt >= REINIT_AFTER_MS) {
        await lab.exec(first.name, ['wg', 'set', first.wgIf, 'peer', second.publicKey, 'remove', ...peerArgs(second)])
        reinit = true
      }
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS))
  }
  return { ms: Number.POSITIVE_INFINITY, reinit }
}

async function main (): Promise<void> {
  const support = await labSupport()
  if (!support.ok) throw new Error(`the lab cannot run here: ${support.reason}`)
  const lab = await createLab({ sites: [{ name: 'a', kind: 'public', clients: ['a'] }, { name: 'b', kind: 'public', clients: ['b'] }] })
  const results: Record<Mode, number[]> = { plain: [], reinit: [] }
  try {
    for (let run = 1; run <= RUNS; run++) {
      for (const mode of ['plain', 'reinit'] as const) {
        const r = await once(lab, mode)
        results[mode].push(r.ms)
        console.error(`  run ${run} ${mode}: both sides handshook after ${r.ms} ms${r.reinit ? ' (re-initiated)' : ''}`)
      }
    }
  } finally {
    await lab.destroy()
  }
  console.log(`| mode | median | min–max | over 1 s |\n| --- | --- | --- | --- |`)
  for (const mode of ['plain', 'reinit'] as const) {
    const xs = results[mode]
    console.log(`| ${mode} | ${Math.round(median(xs) ?? Number.NaN)} ms | ${Math.min(...xs)}–${Math.max(...xs)} ms | ${xs.filter((x) => x > 1000).length} of ${xs.length} |`)
  }
}

main().catch((err: unknown) => {
  console.error(`crossed-initiations: ${err instanceof Error ? err.message : String(err)}`)
  process.exitCode = 1
})
