import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createLab, labSupport, type Lab } from '../../scripts/lab/lab.js'
import { clientStatus, pathBetween, startMesh, waitFor, type MeshProcesses } from '../../scripts/lab/mesh.js'

const support = await labSupport()
if (!support.ok) console.warn(`SKIPPING punch e2e tests: ${support.reason}`)

const COTURN_PORT = 3479

describe.skipIf(!support.ok)('clash routers, low-TTL punching, and a standard STUN server', () => {
  let lab: Lab
  let mesh: MeshProcesses
  let startedAt = 0

  beforeAll(async () => {
    lab = await createLab({
      sites: [
        { name: 'c1', kind: 'clash', clients: ['c1'] },
        { name: 'c2', kind: 'clash', clients: ['c2'] },
        { name: 's1', kind: 'easy', clients: ['s1'] },
        { name: 'c3', kind: 'clash', clients: ['c3'] },
        { name: 'c4', kind: 'clash', clients: ['c4'] }
      ]
    })
    await Promise.all(Object.keys(lab.clients).map(async (c) => await lab.ping(c, lab.hub.tunnelIp, { count: 1, timeoutS: 2 })))
    // Debian's coturn as a plain STUN server on the hub's public address, beside wgnat-server's own.
    lab.spawn('hub', ['turnserver', '-n', '--stun-only', '--no-cli', '--no-tls', '--no-dtls', '-L', lab.hub.underlayIp, '-p', String(COTURN_PORT), '--log-file', 'stdout'])
    mesh = startMesh(lab, { clients: [] })
    // Two hops: through the client's own router, expiring at the internet router before the far router sees it.
    mesh.startClient('c1', ['--punch-ttl', '2'])
    mesh.startClient('c2', ['--punch-ttl', '2'])
    // The control pair: the same routers, no punching.
    mesh.startClient('c3')
    mesh.startClient('c4')
    startedAt = Date.now()
    mesh.startClient('s1', ['--stun', `${lab.hub.underlayIp}:${COTURN_PORT}`, '--hub-stun-port', '0'])
  })

  afterAll(async () => {
    mesh?.cleanup()
    await lab?.destroy()
  })

  it('two clients behind clash routers connect directly with --punch-ttl', async () => {
    const ms = await waitFor(async () => (await pathBetween(lab, 'c1', 'c2')).path === 'direct', 20_000)
    console.log(`[e2e] clash-clash with --punch-ttl 2: direct after ${ms ?? 'never'} ms`)
    expect(ms, mesh.logs()).toBeDefined()
    expect((await pathBetween(lab, 'c2', 'c1')).path).toBe('direct')
  })

  it('control: without punching, the same routers keep the pair apart (the lab reproduces the clash)', async () => {
    // Longer than the first direct attempt (10 s): it has failed by now.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, startedAt + 12_000 - Date.now())))
    const path = await pathBetween(lab, 'c3', 'c4')
    console.log(`[e2e] clash-clash without punching after 12 s: ${path.path}`)
    expect(path.path).not.toBe('direct')
  })

  it('classifies through a standard STUN server (coturn) from the WireGuard port', async () => {
    const ok = await waitFor(async () => (await clientStatus(lab, 's1')).self.mappedEndpoint !== null, 10_000)
    expect(ok, mesh.logs()).toBeDefined()
    const s1 = await clientStatus(lab, 's1')
    console.log(`[e2e] s1 via coturn: ${s1.self.natClass} ${s1.self.mappedEndpoint ?? ''}`)
    expect(s1.self.natClass).toBe('easy')
    expect(s1.self.mappedEndpoint).toBe(s1.self.endpoint)
    expect(s1.self.mappedEndpoint).toMatch(new RegExp(`^${lab.routers.s1!.wanIp.replace(/\./g, '\\.')}:\\d+$`))
  })
})
