import { quote } from '../../src/shared/errors.js'
import { inNs, run } from './command.js'
import { LabError, LabSpecError, NetemUnsupportedError } from './lab-error.js'

/**
 * Link impairment on a namespace's interface (egress). Uses `tc qdisc replace ... root netem` when the
 * kernel has sch_netem. Without it, loss is emulated with an iptables `statistic` drop rule in mangle
 * POSTROUTING and rate with a tbf qdisc; delay and jitter cannot be emulated and throw.
 */

export interface NetemSpec {
  clear: boolean
  delayMs?: number
  jitterMs?: number
  lossPct?: number
  /** tc rate, e.g. '1mbit'. */
  rate?: string
}

const CLEAR_WORDS = new Set(['', 'clear', 'off', 'none'])
const TBF_BURST = '32kbit'
const TBF_LATENCY = '400ms'
const QDISC_UNKNOWN = /Specified qdisc kind is unknown|Unknown qdisc|Cannot find specified qdisc/i

/** Pure: the subset of netem syntax the fallback understands. */
export function parseNetemSpec (spec: string): NetemSpec {
  const words = spec.trim().split(/\s+/).filter(w => w !== '')
  if (words.length <= 1 && CLEAR_WORDS.has(words[0] ?? '')) return { clear: true }
  const out: NetemSpec = { clear: false }
  for (let i = 0; i < words.length; i++) {
    const word = words[i]
    const next = words[i + 1]
    if (word === 'delay' && next !== undefined) {
      out.delayMs = parseTime(next, spec)
      i++
      const maybeJitter = words[i + 1]
      if (maybeJitter !== undefined && /^[\d.]+(us|ms|s)?$/.test(maybeJitter)) {
        out.jitterMs = parseTime(maybeJitter, spec)
        i++
      }
    } else if (word === 'loss' && next !== undefined) {
      const pct = /^([\d.]+)%?$/.exec(next)
      if (pct === null || Number(pct[1]) > 100) throw new LabSpecError(`netem spec ${quote(spec)}: bad loss ${quote(next)}`)
      out.lossPct = Number(pct[1])
      i++
    } else if (word === 'rate' && next !== undefined) {
      out.rate = next
      i++
    } else {
      throw new LabSpecError(`netem spec ${quote(spec)}: cannot emulate ${quote(word)} without sch_netem (understood: delay, loss, rate, clear)`)
    }
  }
  return out
}

function parseTime (text: string, spec: string): number {
  const m = /^([\d.]+)(us|ms|s)?$/.exec(text)
  if (m === null) throw new LabSpecError(`netem spec ${quote(spec)}: bad time ${quote(text)}`)
  const value = Number(m[1])
  return m[2] === 's' ? value * 1000 : m[2] === 'us' ? value / 1000 : value
}

/** iptables chain holding the emulated loss rule of one interface. */
export function lossChain (ifname: string): string {
  return `LABLOSS-${ifname}`
}

/** Learnt on first use: does `tc ... netem` work on this kernel? */
let netemInKernel: boolean | undefined

export async function applyNetem (ns: string, ifname: string, spec: string): Promise<void> {
  const where = quote(`${ns}/${ifname}`)
  if (parseNetemSpec(spec).clear) {
    await run(inNs(ns, ['tc', 'qdisc', 'del', 'dev', ifname, 'root']), { reject: false })
    await setLoss(ns, ifname, 0)
    return
  }
  if (netemInKernel !== false) {
    const argv = ['tc', 'qdisc', 'replace', 'dev', ifname, 'root', 'netem', ...spec.trim().split(/\s+/)]
    const result = await run(inNs(ns, argv), { reject: false })
    if (result.exitCode === 0) {
      netemInKernel = true
      return
    }
    if (!QDISC_UNKNOWN.test(result.stderr)) {
      throw new LabError(`netem ${quote(spec)} on ${where}: ${quote(result.stderr.trim())}`)
    }
    netemInKernel = false
  }
  const parsed = parseNetemSpec(spec)
  if (parsed.delayMs !== undefined) {
    throw new NetemUnsupportedError(`netem ${quote(spec)} on ${where}: this kernel has no sch_netem, so delay cannot be emulated (loss and rate can)`)
  }
  await setLoss(ns, ifname, parsed.lossPct ?? 0)
  const qdisc = parsed.rate !== undefined
    ? ['tc', 'qdisc', 'replace', 'dev', ifname, 'root', 'tbf', 'rate', parsed.rate, 'burst', TBF_BURST, 'latency', TBF_LATENCY]
    : ['tc', 'qdisc', 'del', 'dev', ifname, 'root']
  await run(inNs(ns, qdisc), { reject: parsed.rate !== undefined })
}

/** Random drop of a share of the interface's egress packets (forwarded and local) via iptables. */
async function setLoss (ns: string, ifname: string, lossPct: number): Promise<void> {
  const chain = lossChain(ifname)
  const ipt = (...args: string[]): string[] => inNs(ns, ['iptables', '-w', '-t', 'mangle', ...args])
  if (lossPct === 0) {
    // Fails harmlessly when no earlier call made the chain.
    await run(ipt('-F', chain), { reject: false })
    return
  }
  await run(ipt('-N', chain), { reject: false })
  await run(ipt('-F', chain))
  const jump = ['POSTROUTING', '-o', ifname, '-j', chain]
  if ((await run(ipt('-C', ...jump), { reject: false })).exitCode !== 0) await run(ipt('-A', ...jump))
  await run(ipt('-A', chain, '-m', 'statistic', '--mode', 'random', '--probability', String(lossPct / 100), '-j', 'DROP'))
}
