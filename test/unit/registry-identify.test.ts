import { afterEach, describe, expect, it } from 'vitest'
import { RegistryService } from '../../src/server/registry/registry-service.js'
import { silentLogger } from '../../src/shared/log.js'
import { wgCli } from '../../src/shared/wg.js'
import { FakeWg, newPeer } from '../helpers/fake-wg.js'
import { testKey } from '../helpers/keys.js'

const A = testKey('a'); const B = testKey('b'); const C = testKey('c')

describe('RegistryService.identify: a caller by its tunnel source address, whatever the text of that address', () => {
  let service: RegistryService | undefined
  afterEach(() => service?.stop())

  async function start (): Promise<RegistryService> {
    const fake = new FakeWg()
    fake.addDevice('wg0', {
      publicKey: testKey('hub'),
      listenPort: 51820,
      peers: [
        newPeer(A, { allowedIps: ['100.64.0.2/32'] }),
        newPeer(B, { allowedIps: ['2001:db8::b/128', '10.9.0.0/24'] }),
        newPeer(C, { allowedIps: ['10.9.0.128/25'] })
      ]
    })
    service = new RegistryService({ iface: 'wg0', pollMs: 10_000 }, { wg: wgCli({ reuseUnchangedPeers: true }, { run: fake.run }), logger: silentLogger() })
    await service.start()
    return service
  }

  it.each([
    ['100.64.0.2', A, 'IPv4 as a socket gives it'],
    ['::ffff:100.64.0.2', A, 'IPv4-mapped IPv6 (a dual-stack socket)'],
    ['::ffff:6440:2', A, 'IPv4-mapped IPv6 in hex'],
    ['2001:db8::b', B, 'IPv6 canonical'],
    ['2001:DB8:0:0::B', B, 'IPv6 in another spelling'],
    ['10.9.0.77', B, 'inside a peer\'s subnet'],
    ['10.9.0.200', C, 'the longest prefix wins'],
    ['100.64.0.3', undefined, 'next to a peer\'s address'],
    ['100.64.0.2.1', undefined, 'not an address (five parts)'],
    ['', undefined, 'empty'],
    ['not-an-ip', undefined, 'not an address']
  ])('%s -> %s (%s)', async (address, want) => {
    const s = await start()
    expect(s.identify(address)).toBe(want)
  })
})
