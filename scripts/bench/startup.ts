/**
 * Start-up of the CLIs as a user sees it (issue 16), no lab: wall time and CPU (user + system, from GNU time) of
 *
 * - `node -e 0` (node's own start, the floor);
 * - `wgnat-client --help` and `wgnat-server --help`;
 * - `wgnat-client -i … -r … -t 1m` until its first `wg` run: a `wg` first on its PATH records the moment it is started
 *   and fails, so the client stops there (everything a daemon loads and does before it first reads the interface).
 *
 *   node dist/scripts/bench/startup.js [--runs 15] [--before-bin <an older build's dist/bin>]
 *
 * With `--before-bin`, the same for that build, interleaved run by run. Each build runs once before measuring, so a
 * build that keeps a code cache has it (as an installed one does after its first start). Prints medians (min–max).
 *
 * Every case runs in the environment of an installed service (service-env.ts: without `NODE_EXTRA_CA_CERTS`, which
 * makes Node parse a CA bundle at each start); `--shell-env` keeps this shell's whole environment.
 *
 * `--at-once 2,8,16` also launches that many copies together (as the mesh-formation lab launches its clients on this
 * machine's cores) and times the wall clock from the launch until the last copy has exited (`node -e 0`) or started
 * its first `wg` (the client): the floor under a mesh of that many clients forming on one machine.
 */
import { spawn, spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { CLIENT_BIN } from '../lab/mesh.js'
import { envNote, useServiceEnv } from './service-env.js'
import { benchArgs } from './bench-args.js'

const { values } = benchArgs({
  options: {
    runs: { type: 'string', default: '15' },
    'before-bin': { type: 'string' },
    'at-once': { type: 'string' },
    'shell-env': { type: 'boolean', default: false }
  }
})
const SHELL_ENV = values['shell-env'] === true
const ENV_NOTE = envNote(SHELL_ENV)
useServiceEnv(SHELL_ENV)
const RUNS = Number(values.runs)
const KEY = `${'A'.repeat(43)}=`

const dir = mkdtempSync(join(tmpdir(), 'wgnat-startup-'))
const stamp = join(dir, 'wg-started')
// Appended, not written: with --at-once several copies stamp their first `wg`.
writeFileSync(join(dir, 'wg'), `#!/bin/sh\ndate +%s%N >> ${stamp}\nexit 1\n`)
chmodSync(join(dir, 'wg'), 0o755)
/** What every case runs in: an installed service's environment (service-env.ts), the fake `wg` first on the PATH. */
const ENV = { ...process.env, PATH: `${dir}:${process.env.PATH ?? ''}` }

interface Sample { wallMs: number, cpuMs: number }

/** Run argv under GNU time; with `toFirstWg`, the wall time is from launch to the fake `wg`'s start. */
function sample (argv: string[], toFirstWg = false): Sample {
  rmSync(stamp, { force: true })
  const t0 = process.hrtime.bigint()
  const wall0 = BigInt(Date.now()) * 1_000_000n
  const r = spawnSync('/usr/bin/time', ['-f', '%e %U %S', ...argv], { env: ENV, encoding: 'utf8' })
  const elapsedNs = process.hrtime.bigint() - t0
  const [, user, sys] = (r.stderr.trim().split('\n').pop() ?? '').split(' ').map(Number)
  let wallMs = Number(elapsedNs) / 1e6
  if (toFirstWg) wallMs = Number(lastStamp() - wall0) / 1e6
  return { wallMs, cpuMs: ((user ?? NaN) + (sys ?? NaN)) * 1000 }
}

/** The latest moment (ns since the epoch) a fake `wg` started since the stamp file was removed. */
function lastStamp (): bigint {
  return readFileSync(stamp, 'utf8').trim().split('\n').map((l) => BigInt(l)).reduce((a, b) => a > b ? a : b)
}

/** Launch `n` copies of argv together; wall ms until the last has exited, or with `toFirstWg` started its first `wg`. */
async function atOnce (n: number, argv: (i: number) => string[], toFirstWg: boolean): Promise<number> {
  rmSync(stamp, { force: true })
  const wall0 = BigInt(Date.now()) * 1_000_000n
  const t0 = process.hrtime.bigint()
  await Promise.all(Array.from({ length: n }, async (_, i) => {
    const [file, ...args] = argv(i)
    const child = spawn(file as string, args, { env: ENV, stdio: 'ignore' })
    await new Promise((resolve) => child.once('close', resolve))
  }))
  return toFirstWg ? Number(lastStamp() - wall0) / 1e6 : Number(process.hrtime.bigint() - t0) / 1e6
}

const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] ?? NaN }
const fmt = (xs: number[]): string => `${median(xs).toFixed(0)} (${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)})`

/** A build's entry of `cli`, the package's bin: `<cli>.cjs` beside its bundle, or `<cli>.mjs` in builds before that. */
const entryOf = (bin: string, cli: string): string => join(bin, existsSync(join(bin, `${cli}.bundle.cjs`)) ? `${cli}.cjs` : `${cli}.mjs`)

const builds: Array<[string, string]> = [['this build', dirname(CLIENT_BIN)]]
if (values['before-bin'] !== undefined) builds.push(['before', values['before-bin']])
const cases: Array<{ name: string, argv: (bin: string) => string[], toFirstWg?: boolean, once?: boolean }> = [
  { name: '`node -e 0`', argv: () => [process.execPath, '-e', '0'], once: true },
  { name: '`wgnat-client --help`', argv: (bin) => [process.execPath, entryOf(bin, 'wgnat-client'), '--help'] },
  { name: '`wgnat-server --help`', argv: (bin) => [process.execPath, entryOf(bin, 'wgnat-server'), '--help'] },
  { name: 'client, launch to its first `wg`', argv: (bin) => [process.execPath, entryOf(bin, 'wgnat-client'), '-i', 'wgstartup0', '-r', KEY, '-t', '1m'], toFirstWg: true }
]

try {
  const results = new Map<string, Sample[]>()
  for (const [, bin] of builds) for (const c of cases) sample(c.argv(bin), c.toFirstWg) // warm: page cache, code cache
  for (let i = 0; i < RUNS; i++) {
    for (const c of cases) {
      for (const [label, bin] of builds) {
        if (c.once === true && label !== 'this build') continue
        const key = `${c.name}|${label}`
        results.set(key, [...(results.get(key) ?? []), sample(c.argv(bin), c.toFirstWg)])
      }
    }
  }
  console.log(`| what | ${builds.map(([l]) => `${l}: wall ms`).join(' | ')} | ${builds.map(([l]) => `${l}: CPU ms`).join(' | ')} |`)
  console.log(`| --- | ${builds.map(() => '---').join(' | ')} | ${builds.map(() => '---').join(' | ')} |`)
  for (const c of cases) {
    const cells = builds.map(([l]) => results.get(`${c.name}|${l}`))
    console.log(`| ${c.name} | ${cells.map((s) => s === undefined ? '' : fmt(s.map((x) => x.wallMs))).join(' | ')} | ${cells.map((s) => s === undefined ? '' : fmt(s.map((x) => x.cpuMs))).join(' | ')} |`)
  }
  console.log(`\nmedians of ${RUNS} (min–max), interleaved; CPU is user + system of the whole process (for the first-wg case, until it exits after the failed \`wg\`); ${ENV_NOTE}`)
  const sizes = (values['at-once'] ?? '').split(',').filter((x) => x !== '').map(Number)
  if (sizes.length > 0) {
    const onceCases: Array<{ name: string, argv: (i: number) => string[], toFirstWg: boolean }> = [
      { name: '`node -e 0`, until the last exits', argv: () => [process.execPath, '-e', '0'], toFirstWg: false },
      ...builds.map(([label, bin]) => ({ name: `client (${label}), until the last starts its first \`wg\``, argv: (i: number) => [process.execPath, entryOf(bin, 'wgnat-client'), '-i', `wgstartup${i}`, '-r', KEY, '-t', '1m'], toFirstWg: true }))
    ]
    const at = new Map<string, number[]>()
    for (let r = 0; r < RUNS; r++) {
      for (const n of sizes) for (const c of onceCases) at.set(`${c.name}|${n}`, [...(at.get(`${c.name}|${n}`) ?? []), await atOnce(n, c.argv, c.toFirstWg)])
    }
    console.log(`\n| launched at once | ${sizes.map((n) => `${n}: wall ms`).join(' | ')} |`)
    console.log(`| --- | ${sizes.map(() => '---').join(' | ')} |`)
    for (const c of onceCases) console.log(`| ${c.name} | ${sizes.map((n) => fmt(at.get(`${c.name}|${n}`) ?? [])).join(' | ')} |`)
    console.log(`\nmedians of ${RUNS} (min–max), sizes and cases interleaved`)
  }
} finally {
  rmSync(dir, { recursive: true, force: true })
}
