/**
 * Access policy benchmark (issue 13): a policy of 1,000 peers in 50 groups, as the hub enforces it.
 *
 *   node dist/scripts/bench/policy.js [--peers 1000] [--groups 50] [--runs 7]
 *
 * Pure steps (median of --runs): parse the file, evaluate it against the peers, build the relay ruleset, and
 * answer every peer's full table under the policy (1,000 filtered views). Then the ruleset's size (bytes, rules,
 * set elements; and the rules a one-rule-per-pair design would need), and, as root, the time `nft -f` takes to
 * load it into a fresh network namespace (first load, then replacements, which is what a reload does).
 * Rules: a ring of `between` (group i with group i+1) and one-way rules (group i to group i+7): 100 rules for 50 groups.
 */
import { createHash, randomBytes } from 'node:crypto'
import { execa } from 'execa'
import { evaluatePolicy, type PolicyPeer } from '../../src/server/policy/evaluate-policy.js'
import { parsePolicy } from '../../src/server/policy/parse-policy.js'
import { relayRuleset } from '../../src/server/policy/relay-ruleset.js'
import { RegistryTable } from '../../src/server/registry/registry-table.js'
import type { WgDevice } from '../../src/shared/wg-dump.js'
import { benchArgs } from './bench-args.js'

const { values } = benchArgs({ options: { peers: { type: 'string', default: '1000' }, groups: { type: 'string', default: '50' }, runs: { type: 'string', default: '7' } } })
const PEERS = Number(values.peers); const GROUPS = Number(values.groups); const RUNS = Number(values.runs)

const key = (i: number): string => createHash('sha256').update(`bench-peer-${i}`).digest('base64')
const address = (i: number): string => `100.${64 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`
const peers: PolicyPeer[] = Array.from({ length: PEERS }, (_, i) => ({ publicKey: key(i), allowedIps: [`${address(i + 2)}/32`] }))
// Members by key, address and name, in turn, as a real file would mix them.
const names = new Map(peers.map((p, i) => [p.publicKey, `peer${i}`]))
const member = (i: number): string => [key(i), address(i + 2), `peer${i}`][i % 3] as string
const groups = Object.fromEntries(Array.from({ length: GROUPS }, (_, g) => [`g${g}`, peers.map((_, i) => i).filter((i) => i % GROUPS === g).map(member)]))
const rules = Array.from({ length: GROUPS }, (_, g) => [{ between: [`g${g}`, `g${(g + 1) % GROUPS}`] }, { from: [`g${g}`], to: [`g${(g + 7) % GROUPS}`] }]).flat()
const text = JSON.stringify({ groups, rules })

function median (xs: number[]): number { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] ?? NaN }
function time<T> (fn: () => T): { ms: number, value: T } { const t0 = process.hrtime.bigint(); const value = fn(); return { ms: Number(process.hrtime.bigint() - t0) / 1e6, value } }
function timed<T> (fn: () => T): { ms: number, value: T } {
  const runs = Array.from({ length: RUNS }, () => time(fn))
  return { ms: median(runs.map((r) => r.ms)), value: (runs[0] as { value: T }).value }
}

const parse = timed(() => parsePolicy(text, 'bench.json', names))
const evaluation = timed(() => evaluatePolicy(parse.value, peers, names))
const ruleset = timed(() => relayRuleset('wg0', evaluation.value, peers))
const table = new RegistryTable()
const device: WgDevice = { publicKey: key(-1), listenPort: 51820, peers: peers.map((p) => ({ publicKey: p.publicKey, endpoint: { address: '198.18.0.1', port: 1000 }, allowedIps: [...p.allowedIps], latestHandshake: 1, transferRx: 0, transferTx: 0, persistentKeepalive: 0, hasPresharedKey: false })) }
table.update(device, 2)
let bytes = 0
const views = timed(() => { bytes = 0; for (const p of peers) bytes += table.since(0, p.publicKey, evaluation.value.view(p.publicKey)).peers.reduce((n, b) => n + b.length, 0); return bytes })
let pairs = 0
for (const a of peers) for (const b of peers) if (a !== b && evaluation.value.mayInitiate(a.publicKey, b.publicKey)) pairs++

console.log(`policy: ${PEERS} peers, ${GROUPS} groups, ${rules.length} rules, file ${text.length} bytes; medians of ${RUNS}`)
console.log('')
console.log('| step | ms |')
console.log('| --- | --- |')
console.log(`| parse + check the file | ${parse.ms.toFixed(1)} |`)
console.log(`| evaluate against the peers | ${evaluation.ms.toFixed(1)} |`)
console.log(`| build the relay ruleset | ${ruleset.ms.toFixed(1)} |`)
console.log(`| every peer's full table under the policy (${PEERS} views, ${(views.value / PEERS).toFixed(0)} bytes each on average) | ${views.ms.toFixed(1)} |`)
console.log('')
console.log(`ruleset: ${ruleset.value.script.length} bytes, ${ruleset.value.rules} rules in the relay chain, ${ruleset.value.elements} set elements in ${evaluation.value.sets.length} sets (x IPv4/IPv6 as present); ${pairs} allowed ordered pairs, which one rule per pair would need`)

if (process.getuid?.() === 0) {
  const ns = `wgnat-bench-${randomBytes(3).toString('hex')}`
  await execa('ip', ['netns', 'add', ns])
  try {
    const apply = async (): Promise<number> => {
      const t0 = process.hrtime.bigint()
      await execa('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], { input: ruleset.value.script })
      return Number(process.hrtime.bigint() - t0) / 1e6
    }
    const first = await apply()
    const again: number[] = []
    for (let i = 0; i < RUNS; i++) again.push(await apply())
    const t0 = process.hrtime.bigint(); await execa('ip', ['netns', 'exec', ns, 'nft', 'list', 'tables']); const listMs = Number(process.hrtime.bigint() - t0) / 1e6
    console.log(`nft -f (in a fresh namespace): first load ${first.toFixed(0)} ms, replacement median ${median(again).toFixed(0)} ms (min ${Math.min(...again).toFixed(0)}); for scale, 'nft list tables' ${listMs.toFixed(0)} ms`)
  } finally {
    await execa('ip', ['netns', 'del', ns], { reject: false })
  }
} else {
  console.log('nft -f: not measured (needs root)')
}
