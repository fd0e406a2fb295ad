import { describe, expect, it } from 'vitest'
import { FORWARDING_PROBE_TTL_MS, forwardingProbe } from '../../src/server/registry/forwarding-probe.js'

function files (values: Record<string, string | NodeJS.ErrnoException>): (path: string) => string {
  return (path) => {
    const v = values[path]
    if (v === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' })
    if (typeof v !== 'string') throw v
    return v
  }
}
const V4 = '/proc/sys/net/ipv4/ip_forward'
const V6 = '/proc/sys/net/ipv6/conf/all/forwarding'

describe('forwardingProbe: does the hub relay, as the table tells clients', () => {
  it.each([
    ['--relay, whatever the kernel says', true, { [V4]: '0\n', [V6]: '0\n' }, true],
    ['forwarding off in both families', false, { [V4]: '0\n', [V6]: '0\n' }, false],
    ['IPv4 forwarding on (an admin\'s own FORWARD rules may pass spoke traffic)', false, { [V4]: '1\n', [V6]: '0\n' }, true],
    ['IPv6 forwarding on', false, { [V4]: '0\n', [V6]: '1\n' }, true],
    ['no IPv6 in the kernel, IPv4 off', false, { [V4]: '0\n' }, false],
    ['a switch that cannot be read counts as on', false, { [V4]: Object.assign(new Error('EACCES'), { code: 'EACCES' }), [V6]: '0' }, true]
  ])('%s', (_name, relay, values, expected) => {
    expect(forwardingProbe({ relay, read: files(values) })()).toBe(expected)
  })

  it('reads the kernel at most once per TTL, and again after it', () => {
    let now = 0
    let reads = 0
    const state = { [V4]: '0', [V6]: '0' }
    const probe = forwardingProbe({ relay: false, nowMs: () => now, read: (p) => { reads++; return files(state)(p) } })
    expect(probe()).toBe(false)
    const first = reads
    state[V4] = '1'
    now = FORWARDING_PROBE_TTL_MS - 1
    expect(probe()).toBe(false)
    expect(reads).toBe(first)
    now = FORWARDING_PROBE_TTL_MS
    expect(probe()).toBe(true)
  })
})
