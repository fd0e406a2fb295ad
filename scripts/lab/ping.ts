import { quote } from '../../src/shared/errors.js'
import { LabError } from './lab-error.js'
import { PING_DEFAULT_COUNT, PING_DEFAULT_INTERVAL_S, PING_DEFAULT_TIMEOUT_S } from './timings.js'
import type { PingOptions, PingResult } from './types.js'

/** Pure: iputils ping command line and output parser. */

/** Errors that mean "nothing got through", not "ping was misused". */
const UNREACHABLE = /unreachable|Required key not available|Operation not permitted|No route to host|Destination address required/i

export function pingArgv (toIp: string, opts: PingOptions = {}): string[] {
  const count = opts.count ?? PING_DEFAULT_COUNT
  const intervalS = opts.intervalS ?? PING_DEFAULT_INTERVAL_S
  const timeoutS = opts.timeoutS ?? PING_DEFAULT_TIMEOUT_S
  return ['ping', '-n', '-c', String(count), '-i', String(intervalS), '-W', String(timeoutS), toIp]
}

/** Longest a ping with these options should run. */
export function pingDurationMs (opts: PingOptions = {}): number {
  const count = opts.count ?? PING_DEFAULT_COUNT
  return Math.ceil(((count - 1) * (opts.intervalS ?? PING_DEFAULT_INTERVAL_S) + (opts.timeoutS ?? PING_DEFAULT_TIMEOUT_S)) * 1000)
}

export function parsePing (stdout: string, stderr: string, toIp: string): PingResult {
  const rttMs: number[] = []
  const ttls: number[] = []
  for (const line of stdout.split('\n')) {
    const reply = /bytes from .*ttl=(\d+) time=([\d.]+) ms/.exec(line)
    if (reply !== null) {
      ttls.push(Number(reply[1]))
      rttMs.push(Number(reply[2]))
    }
  }
  const stats = /(\d+) packets transmitted, (\d+) received/.exec(stdout)
  if (stats !== null) return { sent: Number(stats[1]), received: Number(stats[2]), rttMs, ttls }
  if (UNREACHABLE.test(stderr) || UNREACHABLE.test(stdout)) return { sent: 0, received: 0, rttMs, ttls }
  throw new LabError(`ping ${quote(toIp)}: no statistics in output: ${quote((stderr.trim() || stdout.trim()))}`)
}
