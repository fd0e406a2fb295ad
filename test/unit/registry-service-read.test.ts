import { afterEach, describe, expect, it } from 'vitest'
import { RegistryService } from '../../src/server/registry/registry-service.js'
import { silentLogger } from '../../src/shared/log.js'
import { wgCli } from '../../src/shared/wg.js'
import { FakeWg, ep, newPeer } from '../helpers/fake-wg.js'
import { testKey } from '../helpers/keys.js'

const A = testKey('a'); const B = testKey('b')
const sleep = async (ms: number): Promise<void> => await new Promise((resolve) => setTimeout(resolve, ms))

describe('RegistryService reading through wgCli({ reuseUnchangedPeers })', () => {
  let service: RegistryService | undefined
  afterEach(() => service?.stop())

  it('follows endpoint and allowed-IP changes, and knows callers by their new addresses only', async () => {
    const fake = new FakeWg()
    fake.addDevice('wg0', {
      publicKey: testKey('hub'),
      listenPort: 51820,
      peers: [newPeer(A, { allowedIps: ['100.64.0.2/32'], endpoint: ep('198.18.11.2:1000') }), newPeer(B, { allowedIps: ['100.64.0.3/32', '10.9.0.0/24'] })]
    })
    service = new RegistryService({ iface: 'wg0', pollMs: 10 }, { wg: wgCli({ reuseUnchangedPeers: true }, { run: fake.run }), logger: silentLogger() })
    await service.start()
    expect(service.identify('100.64.0.2')).toBe(A)
    expect(service.identify('10.9.0.77')).toBe(B)
    const v = service.table.version
    await fake.set('wg0', [{ publicKey: A, endpoint: ep('198.18.11.2:2000') }])
    await service.changedSince(v, 2000)
    expect(service.table.get(A)?.endpoint).toBe('198.18.11.2:2000')
    expect(service.identify('100.64.0.2')).toBe(A)
    await fake.set('wg0', [{ publicKey: A, allowedIps: ['100.64.0.9/32'] }, { publicKey: B, allowedIps: ['100.64.0.3/32'] }])
    await service.changedSince(service.table.version, 2000)
    expect(service.identify('100.64.0.9')).toBe(A)
    expect(service.identify('100.64.0.2')).toBeUndefined()
    expect(service.identify('10.9.0.77')).toBeUndefined()
    // Reads that find nothing new change nothing.
    const still = service.table.version
    await sleep(60)
    expect(service.table.version).toBe(still)
  })
})
