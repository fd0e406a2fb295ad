import { describe, expect, it } from 'vitest'
import { wgSetArgs } from '../../src/shared/wg.js'
import { testKey } from '../helpers/keys.js'

const A = testKey('a'); const B = testKey('b')

describe('wgSetArgs: the arguments of one `wg set`', () => {
  it('writes endpoint, keepalive and allowed IPs, and removals', () => {
    expect(wgSetArgs('wg0', [
      { publicKey: A, endpoint: { address: '2001:db8::1', port: 51820 }, persistentKeepalive: 25, allowedIps: ['100.64.0.3/32', 'fd00::3/128'] },
      { publicKey: B, remove: true }
    ])).toEqual(['set', 'wg0', 'peer', A, 'endpoint', '[2001:db8::1]:51820', 'persistent-keepalive', '25', 'allowed-ips', '100.64.0.3/32,fd00::3/128', 'peer', B, 'remove'])
  })

  it('clears allowed IPs with an empty list and turns keepalive off with 0', () => {
    expect(wgSetArgs('wg0', [{ publicKey: A, allowedIps: [], persistentKeepalive: 0 }])).toEqual(['set', 'wg0', 'peer', A, 'persistent-keepalive', 'off', 'allowed-ips', ''])
  })

  it('kicks by switching keepalive off then on, so WireGuard sends at once', () => {
    expect(wgSetArgs('wg0', [{ publicKey: A, endpoint: { address: '198.18.12.2', port: 31000 }, persistentKeepalive: 25, kick: true }]))
      .toEqual(['set', 'wg0', 'peer', A, 'persistent-keepalive', 'off', 'peer', A, 'endpoint', '198.18.12.2:31000', 'persistent-keepalive', '25'])
  })
})
