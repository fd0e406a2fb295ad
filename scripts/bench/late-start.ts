/**
 * A peer whose wgnat starts long after the other side parked it, in the NAT lab: two clients behind `easy` routers,
 * the hub neither relaying nor running its STUN server (`--no-stun`: a cloud firewall that lets only WireGuard's
 * port through), so both NAT classes stay `unknown` and nothing but the late peer's own announcement can wake the pair.
 *
 *   node dist/scripts/bench/late-start.js [--before-bin <another build's dist/bin/wgnat-client.cjs>] [--quiet-s 150] [--timeout 60]
 *
 * Per build, in a lab of its own (the builds run side by side): `a`'s wgnat starts alone, with `--direct-timeout 2s`;
 * its attempts towards `b` (whose WireGuard is up, but not its wgnat) fail until `a` parks `b` (its status says "no
 * handshake in N attempts"). Then `--quiet-s` more seconds: `a`'s WireGuard gives up its handshake 90 s after the
 * last attempt, and its router then forgets the mapping towards `b`, as after days of `b` being away. Then `b`'s
 * wgnat starts, and the figure is the time from that launch to the first reply of a ping each way (every 0.1 s; with
 * the hub not relaying, only a direct path answers). `a` is the side that did not change.
 */
import { join } from 'node:path'
import { createLab, labSupport, type Lab } from '../lab/lab.js'
import { CLIENT_BIN, registerWithHub, startMesh, waitForParked, waitForPing } from '../lab/mesh.js'
import type { SpawnedProcess } from '../lab/command.js'
import { benchArgs } from './bench-args.js'

const { values } = benchArgs({ options: { 'before-bin': { type: 'string' }, 'quiet-s': { type: 'string', default: '150' }, timeout: { type: 'string', default: '60' } } })
const QUIET_MS = Number(values['quiet-s']) * 1000
const TIMEOUT_MS = Number(values.timeout) * 1000
/** Parking takes 4 failed attempts on retry slots of 15, 30 and 60 s: at most about two minutes with 2 s attempts. */
const PARK_WITHIN_MS = 240_000

const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

interface Result { build: string, parkedAfterS?: number, aToBMs?: number, bToAMs?: number, note?: string }

async function once (build: string, bin: string): Promise<Result> {
  const lab: Lab = await createLab({ sites: [{ name: 'a', kind: 'easy', clients: ['a'] }, { name: 'b', kind: 'easy', clients: ['b'] }] })
  const procs: SpawnedProcess[] = []
  const mesh = startMesh(lab, { clients: [], serverArgs: ['--no-stun'] })
  try {
    await registerWithHub(lab)
    const start = (name: string): void => {
      procs.push(lab.spawn(name, [process.execPath, bin, '-i', lab.clients[name]!.wgIf, '-r', lab.hub.publicKey, '-t', '1m',
        '--state-dir', join(mesh.stateDir, name), '--direct-timeout', '2s']))
    }
    start('a')
    const b = lab.clients.b!
    const parkedMs = await waitForParked(lab, 'a', b.publicKey, PARK_WITHIN_MS)
    if (parkedMs === undefined) return { build, note: `a did not park b within ${PARK_WITHIN_MS / 1000} s` }
    await sleep(QUIET_MS)
    const t0 = Date.now()
    start('b')
    const [aToBMs, bToAMs] = await Promise.all([
      waitForPing(lab, 'a', b.tunnelIp, t0 + TIMEOUT_MS, t0),
      waitForPing(lab, 'b', lab.clients.a!.tunnelIp, t0 + TIMEOUT_MS, t0)
    ])
    return { build, parkedAfterS: Math.round(parkedMs / 1000), aToBMs, bToAMs }
  } finally {
    for (const p of procs) p.kill('SIGTERM')
    await Promise.allSettled(procs)
    await mesh.cleanup()
    await lab.destroy()
  }
}

const support = await labSupport()
if (!support.ok) {
  console.error(`late-start: no lab here: ${support.reason}`)
  process.exit(69)
}
const builds: Array<[string, string]> = [['now', CLIENT_BIN], ...(values['before-bin'] === undefined ? [] : [['before', values['before-bin']] as [string, string]])]
// Each run cleans up its own lab whatever happens; one that fails is reported, and the other runs to its end.
const results = await Promise.all(builds.map(async ([name, bin]) => await once(name, bin).catch((err: unknown): Result => ({ build: name, note: `failed: ${err instanceof Error ? err.message : String(err)}` }))))
const ms = (x: number | undefined): string => x === undefined ? `no reply within ${TIMEOUT_MS / 1000} s` : `${(x / 1000).toFixed(2)} s`
console.log('| build | a parked b after | b launched: a -> b (the side that did not change) | b -> a |')
console.log('| --- | --- | --- | --- |')
for (const r of results) {
  console.log(r.note !== undefined ? `| ${r.build} | ${r.note} | | |` : `| ${r.build} | ${String(r.parkedAfterS)} s | ${ms(r.aToBMs)} | ${ms(r.bToAMs)} |`)
}
