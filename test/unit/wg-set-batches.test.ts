import { describe, expect, it } from 'vitest'
import { pino } from 'pino'
import { Writable } from 'node:stream'
import { WgError } from '../../src/shared/errors.js'
import { WgSetError, wgCli } from '../../src/shared/wg.js'
import { argBytes, losesRoutes, planWgSetBatches, WG_SET_MAX_ARG_BYTES, type PeerChange } from '../../src/shared/wg-set-batches.js'
import { FakeWg, FAKE_ARG_MAX, newPeer } from '../helpers/fake-wg.js'
import { testKey } from '../helpers/keys.js'

const SELF = testKey('self')

/** N new peers as the client adds them: endpoint, keepalive, a /32 each, kicked. */
function adds (n: number, from = 0): PeerChange[] {
  return Array.from({ length: n }, (_, i) => ({
    publicKey: testKey(`p${from + i}`),
    endpoint: { address: `198.18.${Math.floor((from + i) / 250) % 256}.${((from + i) % 250) + 2}`, port: 40000 + ((from + i) % 20000) },
    persistentKeepalive: 25,
    allowedIps: [`100.${64 + Math.floor((from + i) / 65536)}.${Math.floor((from + i) / 256) % 256}.${(from + i) % 256}/32`],
    kick: true
  }))
}

function fakeDevice (): FakeWg {
  const fake = new FakeWg()
  fake.addDevice('wg0', { publicKey: SELF, listenPort: 51820, peers: [] })
  return fake
}

function captureLogger (): { logger: ReturnType<typeof pino>, lines: string[] } {
  const lines: string[] = []
  const stream = new Writable({ write (chunk, _enc, done) { lines.push(JSON.parse(String(chunk)).msg as string); done() } })
  return { logger: pino({ level: 'info' }, stream), lines }
}

describe('planWgSetBatches', { timeout: 60_000 }, () => {
  it('keeps every call under the byte budget, every change whole and in order', () => {
    const changes = adds(3000)
    const batches = planWgSetBatches('wg0', changes, { maxArgBytes: 32 * 1024 })
    expect(batches.length).toBeGreaterThan(5)
    for (const b of batches) {
      expect(argBytes(b.args)).toBeLessThanOrEqual(32 * 1024)
      expect(b.args.slice(0, 2)).toEqual(['set', 'wg0'])
      // Each peer clause belongs to a change of this batch.
      const keys = new Set(b.changes.map((c) => c.publicKey))
      b.args.forEach((a, i) => { if (a === 'peer') expect(keys.has(b.args[i + 1] ?? '')).toBe(true) })
    }
    expect(batches.flatMap((b) => b.changes)).toEqual(changes)
  })

  it('keeps a peer removed and added again (a fresh handshake) in one call, even at a call boundary', () => {
    const a = testKey('a')
    const current = { publicKey: SELF, listenPort: 1, peers: [newPeer(a, { allowedIps: ['100.64.0.2/32'] })] }
    const recreate: PeerChange[] = [
      { publicKey: a, remove: true },
      { publicKey: a, endpoint: { address: '198.18.1.1', port: 1 }, allowedIps: ['100.64.0.2/32'], persistentKeepalive: 25 }
    ]
    const changes = [...adds(40), ...recreate, ...adds(40).map((c, i) => ({ ...c, publicKey: testKey(`z${i}`) }))]
    for (const max of [2048, 4096, 32 * 1024]) {
      const batches = planWgSetBatches('wg0', changes, { maxArgBytes: max, current })
      const holding = batches.filter((b) => b.changes.some((c) => c.publicKey === a))
      expect(holding).toHaveLength(1)
      const args = holding[0]!.args
      expect(args.indexOf('remove')).toBeLessThan(args.lastIndexOf(a))
    }
    // Re-created with fewer routes, it goes with the changes that take routes away.
    const shrink: PeerChange[] = [{ publicKey: a, remove: true }, { publicKey: a, allowedIps: [] }]
    expect(planWgSetBatches('wg0', [...adds(1), ...shrink], { current })[0]!.changes.map((c) => c.publicKey)).toEqual([a, a])
  })

  it('puts the changes that take routes away first, judged against the current device', () => {
    const [a, b, c] = [testKey('a'), testKey('b'), testKey('c')]
    const current = { publicKey: SELF, listenPort: 1, peers: [newPeer(a, { allowedIps: ['100.64.0.2/32', '100.64.0.9/32'] }), newPeer(b, { allowedIps: ['100.64.0.3/32'] })] }
    const changes: PeerChange[] = [
      { publicKey: b, allowedIps: ['100.64.0.3/32', '100.64.0.9/32'] }, // gains .9
      { publicKey: c, endpoint: { address: '198.18.1.1', port: 1 } },
      { publicKey: a, allowedIps: ['100.64.0.2/32'] }, // loses .9
      { publicKey: testKey('d'), remove: true }
    ]
    const batches = planWgSetBatches('wg0', changes, { current })
    expect(batches.map((x) => x.changes.map((ch) => ch.publicKey))).toEqual([[a, testKey('d')], [b, c]])
    // Without the device: only removals and emptied lists count as losing.
    expect(losesRoutes({ publicKey: a, allowedIps: [] })).toBe(true)
    expect(losesRoutes({ publicKey: a, allowedIps: ['100.64.0.2/32'] })).toBe(false)
    expect(losesRoutes({ publicKey: a, remove: true })).toBe(true)
  })

  it('a change bigger than the budget goes alone rather than being split', () => {
    const big: PeerChange = { publicKey: testKey('big'), allowedIps: Array.from({ length: 64 }, (_, i) => `fd00::${i.toString(16)}:0/112`) }
    const batches = planWgSetBatches('wg0', [...adds(2), big, ...adds(2, 10)], { maxArgBytes: 1024 })
    expect(batches.find((b) => b.changes.includes(big))?.changes).toEqual([big])
  })
})

describe('wgCli set: bounded calls on a fake wg', { timeout: 120_000 }, () => {
  it('one call for 15,000 peers fails as execve does (E2BIG); batched, all 15,000 apply', async () => {
    const unbounded = fakeDevice()
    const one = wgCli({ maxArgBytes: Number.POSITIVE_INFINITY }, { run: unbounded.run })
    const err = await one.set('wg0', adds(15_000)).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(WgSetError)
    expect((err as Error).message).toMatch(/E2BIG/)
    expect(unbounded.devices.get('wg0')?.peers).toHaveLength(0)

    const fake = fakeDevice()
    await wgCli({}, { run: fake.run }).set('wg0', adds(15_000))
    const peers = fake.devices.get('wg0')?.peers ?? []
    expect(peers).toHaveLength(15_000)
    expect(new Set(peers.flatMap((p) => p.allowedIps)).size).toBe(15_000)
    expect(fake.runCalls.length).toBeGreaterThan(5)
    for (const args of fake.runCalls) expect(argBytes(args)).toBeLessThanOrEqual(WG_SET_MAX_ARG_BYTES)
    expect(WG_SET_MAX_ARG_BYTES * 4).toBeLessThanOrEqual(FAKE_ARG_MAX)
  })

  it('one failing call does not stop the others nor undo what is configured; the caller learns which peers failed', async () => {
    const fake = fakeDevice()
    const keep = newPeer(testKey('hand-added'), { allowedIps: ['10.0.0.0/8'], persistentKeepalive: 7 })
    fake.devices.get('wg0')?.peers.push(keep)
    const poison = testKey('p1234')
    fake.failWhen = (args) => args.includes(poison) ? 'Unable to modify interface: Invalid argument' : undefined
    const { logger, lines } = captureLogger()
    let now = 0
    const wg = wgCli({ maxArgBytes: 16 * 1024 }, { run: fake.run, logger, nowMs: () => now })
    const changes = adds(3000)
    const err = await wg.set('wg0', changes).catch((e: unknown) => e) as WgSetError
    expect(err).toBeInstanceOf(WgSetError)
    expect(err).toBeInstanceOf(WgError)
    expect(err.failures).toHaveLength(1)
    const failed = err.failedKeys
    expect(failed.has(poison)).toBe(true)
    expect(err.message).toMatch(/^1 of \d+ wg set calls on 'wg0' failed \(\d+ change\(s\) not applied\): wg failed on interface 'wg0': 'Unable to modify interface: Invalid argument'$/)
    const onDevice = new Set(fake.devices.get('wg0')?.peers.map((p) => p.publicKey))
    for (const c of changes) expect(onDevice.has(c.publicKey)).toBe(!failed.has(c.publicKey))
    expect(failed.size).toBeLessThan(changes.length / 5)
    expect(fake.peer('wg0', keep.publicKey)).toEqual(keep)
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/^wg set on 'wg0': call \d+ of \d+ \(\d+ change\(s\), peers \S{8}\.\.\S{8}\) not applied: /)
    expect(lines[0]).not.toContain(poison)

    // The same failure again within a minute is not logged again; after a minute it is.
    await wg.set('wg0', changes).catch(() => {})
    expect(lines).toHaveLength(1)
    now += 61_000
    await wg.set('wg0', changes).catch(() => {})
    expect(lines).toHaveLength(2)
  })

  it('a single call failing keeps its plain message', async () => {
    const fake = fakeDevice()
    fake.failWhen = () => 'Unable to access interface: No such device'
    const err = await wgCli({}, { run: fake.run }).set('wg0', adds(3)).catch((e: unknown) => e) as WgSetError
    expect(err.message).toBe("interface 'wg0' not found or not a WireGuard interface")
    expect(err.exitCode).toBe(69)
    expect(err.failedKeys.size).toBe(3)
  })

  it('routes leave the losing peer before another claims them, even across calls', async () => {
    const fake = fakeDevice()
    const [a, b] = [testKey('a'), testKey('b')]
    fake.devices.get('wg0')?.peers.push(newPeer(a, { allowedIps: ['100.64.0.9/32'] }), newPeer(b))
    const wg = wgCli({ maxArgBytes: 200 }, { run: fake.run })
    const current = structuredClone(fake.devices.get('wg0'))
    await wg.set('wg0', [{ publicKey: b, allowedIps: ['100.64.0.9/32'] }, { publicKey: a, allowedIps: [] }], { current })
    expect(fake.runCalls[0]).toContain(a)
    expect(fake.runCalls[1]).toContain(b)
    expect(fake.peer('wg0', b)?.allowedIps).toEqual(['100.64.0.9/32'])
    expect(fake.peer('wg0', a)?.allowedIps).toEqual([])
  })
})
