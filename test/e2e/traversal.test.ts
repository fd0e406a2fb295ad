import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createLab, labSupport, type Lab } from '../../scripts/lab/lab.js'
import { CLIENT_BIN, clientStatus, type MeshProcesses, pathBetween, registerWithHub, startMesh, waitFor } from '../../scripts/lab/mesh.js'

const support = await labSupport()
if (!support.ok) console.warn(`SKIPPING traversal e2e tests: ${support.reason}`)

/** The endpoint `from`'s interface uses for `to`, per `wg show endpoints`. */
async function endpointFor (lab: Lab, from: string, to: string): Promise<string | undefined> {
  const out = await lab.exec(from, ['wg', 'show', lab.clients[from]!.wgIf, 'endpoints'])
  return out.stdout.split('\n').map((l) => l.split('\t')).find((f) => f[0] === lab.clients[to]!.publicKey)?.[1]
}

describe.skipIf(!support.ok)('NAT traversal matrix, hub relaying (wgnat-server --relay)', () => {
  let lab: Lab
  let mesh: MeshProcesses

  beforeAll(async () => {
    lab = await createLab({
      sites: [
        { name: 'pub', kind: 'public', clients: ['pub'] },
        { name: 'e1', kind: 'easy', clients: ['e1'] },
        { name: 'e2', kind: 'easy', clients: ['e2'] },
        { name: 'h1', kind: 'hard', clients: ['h1'] },
        { name: 'h2', kind: 'hard', clients: ['h2'] },
        { name: 'ub', kind: 'udpblock', clients: ['ub'] },
        { name: 'lan', kind: 'easy', clients: ['l1', 'l2'] }
      ]
    })
    await registerWithHub(lab)
    mesh = startMesh(lab, { serverArgs: ['--relay'], clientArgs: ['--direct-timeout', '4s'] })
    // Long enough for every attempt to succeed or time out once.
    await waitFor(async () => (await pathBetween(lab, 'e1', 'e2')).path === 'direct', 20_000)
    await new Promise((resolve) => setTimeout(resolve, 6000))
  })

  afterAll(async () => {
    await mesh?.cleanup()
    await lab?.destroy()
  })

  it('reports the NAT class of each router kind', async () => {
    const classes = Object.fromEntries(await Promise.all(['pub', 'e1', 'h1'].map(async (c) => [c, (await clientStatus(lab, c)).self.natClass])))
    console.log('[e2e] NAT classes:', JSON.stringify(classes))
    expect(classes, mesh.logs()).toEqual({ pub: 'public', e1: 'easy', h1: 'hard' })
    const e1 = await clientStatus(lab, 'e1')
    expect(e1.self.mappedEndpoint).toMatch(new RegExp(`^${lab.routers.e1!.wanIp.replace(/\./g, '\\.')}:\\d+$`))
  })

  it.each([
    ['e1', 'e2', 'direct'],
    ['pub', 'e1', 'direct'],
    ['l1', 'l2', 'direct'],
    ['e1', 'h1', 'via hub'],
    ['h1', 'h2', 'via hub'],
    ['ub', 'e1', 'via hub'],
    ['ub', 'pub', 'via hub']
  ])('%s -> %s: %s', async (a, b, expected) => {
    const got = await pathBetween(lab, a, b, 2)
    console.log(`[e2e] ${a} -> ${b}: ${got.path}, rtt ${got.rttMs ?? '-'} ms`)
    expect(got.path, mesh.logs()).toBe(expected)
    const back = await pathBetween(lab, b, a, 2)
    expect(back.path).toBe(expected)
  })

  it('two clients behind the same router talk over their LAN', async () => {
    const ep = await endpointFor(lab, 'l1', 'l2')
    expect(ep).toBe(`${lab.clients.l2!.underlayIp}:${lab.clients.l2!.listenPort}`)
  })

  it('status says why each peer is where it is', async () => {
    const h1 = await clientStatus(lab, 'h1')
    const toH2 = h1.peers.find((p) => p.publicKey === lab.clients.h2!.publicKey)
    expect(toH2?.path).toBe('via hub')
    const e1 = await clientStatus(lab, 'e1')
    expect(e1.registry.relay).toBe(true)
    expect(e1.peers.find((p) => p.publicKey === lab.clients.e2!.publicKey)).toMatchObject({ path: 'direct', natClass: 'easy' })
    const text = await lab.exec('e1', [process.execPath, CLIENT_BIN, 'status', '-i', lab.clients.e1!.wgIf])
    expect(text.stdout).toMatch(/PEER\s+PATH\s+ENDPOINT/)
    expect(text.stdout).toContain(lab.clients.e2!.publicKey.slice(0, 8))
  })
})

describe.skipIf(!support.ok)('upgrade from hub to direct while pinging', () => {
  let lab: Lab
  let mesh: MeshProcesses | undefined

  beforeAll(async () => {
    lab = await createLab({ sites: [{ name: 'a', kind: 'easy', clients: ['a'] }, { name: 'b', kind: 'easy', clients: ['b'] }] })
  })
  afterAll(async () => {
    await mesh?.cleanup()
    await lab?.destroy()
  })

  it('loses at most one ping as the pair moves from the hub to the direct path', async () => {
    mesh = startMesh(lab, { serverArgs: ['--relay'], clients: [] })
    // The relay is up once a ping through the hub works.
    expect(await waitFor(async () => (await lab.ping('a', lab.clients.b!.tunnelIp, { count: 1, timeoutS: 1 })).received > 0, 10_000)).toBeDefined()
    const pinging = lab.ping('a', lab.clients.b!.tunnelIp, { count: 60, intervalS: 0.1, timeoutS: 12 })
    await new Promise((resolve) => setTimeout(resolve, 500))
    mesh.startClient('a')
    mesh.startClient('b')
    const ping = await pinging
    const direct = await pathBetween(lab, 'a', 'b')
    console.log(`[e2e] upgrade: ${ping.sent - ping.received} of ${ping.sent} pings lost; path now ${direct.path}`)
    expect(direct.path, mesh.logs()).toBe('direct')
    expect(ping.sent).toBe(60)
    expect(ping.sent - ping.received).toBeLessThanOrEqual(1)
  })
})

describe.skipIf(!support.ok)('a pair that cannot go direct stays on the hub without loss', () => {
  let lab: Lab
  let mesh: MeshProcesses | undefined

  beforeAll(async () => {
    lab = await createLab({ sites: [{ name: 'e', kind: 'easy', clients: ['e'] }, { name: 'h', kind: 'hard', clients: ['h'] }] })
  })
  afterAll(async () => {
    await mesh?.cleanup()
    await lab?.destroy()
  })

  it('easy-hard: no ping lost after the first success while the direct attempt fails', async () => {
    mesh = startMesh(lab, { serverArgs: ['--relay'], clients: [], clientArgs: ['--direct-timeout', '3s'] })
    expect(await waitFor(async () => (await lab.ping('e', lab.clients.h!.tunnelIp, { count: 1, timeoutS: 1 })).received > 0, 10_000)).toBeDefined()
    const pinging = lab.ping('e', lab.clients.h!.tunnelIp, { count: 50, intervalS: 0.1, timeoutS: 10 })
    mesh.startClient('e')
    mesh.startClient('h')
    const ping = await pinging
    const status = await clientStatus(lab, 'e')
    const toH = status.peers.find((p) => p.publicKey === lab.clients.h!.publicKey)
    console.log(`[e2e] easy-hard: ${ping.sent - ping.received} of ${ping.sent} pings lost while trying; path now ${toH?.path ?? '?'} (${toH?.reason ?? ''})`)
    expect(ping.sent).toBe(50)
    expect(ping.received, mesh.logs()).toBe(50)
    // Traffic is on the hub either way: between attempts ('via hub') or during a timed retry ('trying', no routes).
    expect(['via hub', 'trying']).toContain(toH?.path)
  })
})
