import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createLab, labSupport, type Lab } from '../../scripts/lab/lab.js'
import { type MeshProcesses, registerWithHub, startMesh, waitFor, waitForPing } from '../../scripts/lab/mesh.js'

const support = await labSupport()
if (!support.ok) console.warn(`SKIPPING mesh e2e tests: ${support.reason}`)

/** Peers of `host`'s interface as `wg show dump` prints them: key -> fields. */
async function peersOf (lab: Lab, host: string): Promise<Map<string, { endpoint: string, allowedIps: string, keepalive: string }>> {
  const ifname = host === 'hub' ? lab.hub.wgIf : lab.clients[host]?.wgIf ?? ''
  const out = await lab.exec(host, ['wg', 'show', ifname, 'dump'])
  const peers = new Map<string, { endpoint: string, allowedIps: string, keepalive: string }>()
  for (const line of out.stdout.trim().split('\n').slice(1)) {
    const f = line.split('\t')
    peers.set(f[0] ?? '', { endpoint: f[2] ?? '', allowedIps: f[3] ?? '', keepalive: f[7] ?? '' })
  }
  return peers
}

describe.skipIf(!support.ok).each([
  { hubAllowedIps: 'subnet' as const },
  { hubAllowedIps: 'host' as const }
])('two clients behind home routers, hub not forwarding, hub peer = $hubAllowedIps', ({ hubAllowedIps }) => {
  let lab: Lab
  let mesh: MeshProcesses
  let startedAt: number

  beforeAll(async () => {
    lab = await createLab({ sites: [{ name: 'a', kind: 'easy', clients: ['a'] }, { name: 'b', kind: 'easy', clients: ['b'] }], hubAllowedIps })
    // Let both clients register with the hub (their first handshake) before the registry starts, as on a real hub.
    await registerWithHub(lab)
    startedAt = Date.now()
    mesh = startMesh(lab)
  })

  afterAll(async () => {
    await mesh?.cleanup()
    await lab?.destroy()
  })

  it('the clients ping each other\'s tunnel address directly within 5 s, with -t 1m', async () => {
    const b = lab.clients.b!
    const ms = await waitForPing(lab, 'a', b.tunnelIp, startedAt + 15_000, startedAt)
    console.log(`[e2e] hub peer ${hubAllowedIps}: a -> b direct ping after ${ms ?? 'never'} ms`)
    expect(ms, mesh.logs()).toBeDefined()
    expect(ms!).toBeLessThan(5000)
    const back = await lab.ping('b', lab.clients.a!.tunnelIp, { count: 3, intervalS: 0.2, timeoutS: 2 })
    expect(back.received).toBeGreaterThan(0)
  })

  it('configures the other client with its public endpoint, allowed IPs and keepalive, and leaves the hub peer alone', async () => {
    const a = lab.clients.a!; const b = lab.clients.b!
    const peers = await peersOf(lab, 'a')
    const toB = peers.get(b.publicKey)
    expect(toB).toBeDefined()
    expect(toB!.endpoint).toMatch(new RegExp(`^${lab.routers.b!.wanIp.replace(/\./g, '\\.')}:\\d+$`))
    expect(toB!.allowedIps).toBe(`${b.tunnelIp}/32`)
    expect(toB!.keepalive).toBe('25')
    const hub = peers.get(lab.hub.publicKey)
    expect(hub?.allowedIps).toBe(hubAllowedIps === 'subnet' ? '100.64.0.0/24' : `${lab.hub.tunnelIp}/32`)
    expect(hub?.endpoint).toBe(`${lab.hub.underlayIp}:${lab.hub.listenPort}`)
    expect(peers.size).toBe(2)
    expect(a.publicKey).not.toBe(b.publicKey)
  })

  it('a change on the hub reaches the client at once, not after -t (1m)', async () => {
    const b = lab.clients.b!
    // The operator removes b from the hub: a must drop its direct peer for b, pushed by the registry.
    await lab.exec('hub', ['wg', 'set', lab.hub.wgIf, 'peer', b.publicKey, 'remove'])
    const ms = await waitFor(async () => !(await peersOf(lab, 'a')).has(b.publicKey), 10_000)
    console.log(`[e2e] hub peer ${hubAllowedIps}: peer removal reached a after ${ms ?? 'never'} ms`)
    expect(ms, mesh.logs()).toBeDefined()
    expect(ms!).toBeLessThan(5000)
    expect((await peersOf(lab, 'a')).has(lab.hub.publicKey)).toBe(true)
  })

  it('exits within a second on SIGTERM', async () => {
    const r = await mesh.stopClient('a')
    console.log(`[e2e] client stopped in ${r.ms} ms`)
    expect(r.exitCode).toBe(0)
    expect(r.ms).toBeLessThan(1000)
  })
})
