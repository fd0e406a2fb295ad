import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createLab, labSupport, type Lab } from '../../scripts/lab/lab.js'
import { WgSetError, wgCli } from '../../src/shared/wg.js'
import type { PeerChange } from '../../src/shared/wg-set-batches.js'
import { testKey } from '../helpers/keys.js'

const support = await labSupport()
if (!support.ok) console.warn(`SKIPPING wg batch e2e tests: ${support.reason}`)

const N = 20_000

/** N peers as the client adds them: endpoint, keepalive off (no traffic to nowhere), a /32 each outside the lab's /24. */
function adds (n: number): PeerChange[] {
  return Array.from({ length: n }, (_, i) => ({
    publicKey: testKey(`batch-peer-${i}`),
    endpoint: { address: `198.18.${200 + Math.floor(i / 250) % 50}.${(i % 250) + 2}`, port: 40000 + (i % 20000) },
    allowedIps: [`100.65.${Math.floor(i / 256)}.${i % 256}/32`]
  }))
}

describe.skipIf(!support.ok)('wg set in bounded calls on a real wireguard-go interface', () => {
  let lab: Lab

  beforeAll(async () => {
    lab = await createLab({ sites: [{ name: 'a', kind: 'easy', clients: ['a'] }] })
  })

  afterAll(async () => {
    await lab?.destroy()
  })

  it(`one call for ${N.toLocaleString('en')} peers fails with E2BIG and changes nothing`, async () => {
    const a = lab.clients.a!
    const err = await wgCli({ maxArgBytes: Number.POSITIVE_INFINITY }).set(a.wgIf, adds(N)).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(WgSetError)
    expect((err as Error).message).toMatch(/E2BIG|argument list too long/i)
    expect((await wgCli().show(a.wgIf)).peers).toHaveLength(1)
  })

  it(`${N.toLocaleString('en')} peers apply in bounded calls, and the hub peer stays exactly as it was`, async () => {
    const a = lab.clients.a!
    const wg = wgCli({ timeoutMs: 30_000 })
    const before = await wg.show(a.wgIf)
    const hubBefore = before.peers.find((p) => p.publicKey === lab.hub.publicKey)
    const changes = adds(N)
    const t0 = Date.now()
    await wg.set(a.wgIf, changes, { current: before })
    const applyMs = Date.now() - t0
    const t1 = Date.now()
    const after = await wg.show(a.wgIf)
    const showMs = Date.now() - t1
    console.log(`[e2e] ${N} peers applied in ${applyMs} ms; wg show dump of ${after.peers.length} peers read and parsed in ${showMs} ms`)
    expect(after.peers).toHaveLength(N + 1)
    const byKey = new Map(after.peers.map((p) => [p.publicKey, p]))
    for (const c of changes) expect(byKey.get(c.publicKey)?.allowedIps).toEqual(c.allowedIps)
    const hubAfter = byKey.get(lab.hub.publicKey)
    expect({ ...hubAfter, latestHandshake: 0, transferRx: 0, transferTx: 0 }).toEqual({ ...hubBefore, latestHandshake: 0, transferRx: 0, transferTx: 0 })

    // And all of them removed again, also in bounded calls.
    await wg.set(a.wgIf, changes.map((c) => ({ publicKey: c.publicKey, remove: true })), { current: after })
    expect((await wg.show(a.wgIf)).peers.map((p) => p.publicKey)).toEqual([lab.hub.publicKey])
  })
})
