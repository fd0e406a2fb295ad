import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createLab, labSupport, type Lab } from '../../scripts/lab/lab.js'
import { clientStatus, type MeshProcesses, pathBetween, registerWithHub, startMesh, waitFor } from '../../scripts/lab/mesh.js'

const support = await labSupport()
if (!support.ok) console.warn(`SKIPPING punch e2e tests: ${support.reason}`)

const COTURN_PORT = 3479
/** Two hops: through the client's own router, expiring at the internet router before the far router sees it. */
const PUNCH_TTL = ['--punch-ttl', '2']

async function routerState (lab: Lab, sites: string[]): Promise<string> {
  const out: string[] = []
  for (const r of sites) {
    const ct = await lab.exec(`router:${r}`, ['cat', '/proc/net/nf_conntrack'], { reject: false })
    out.push(`conntrack of router ${r}:\n${ct.stdout.split('\n').filter((l) => l.includes('udp') && l.includes('51820')).join('\n')}`)
  }
  return out.join('\n')
}

describe.skipIf(!support.ok)('clash routers with low-TTL punching, and a standard STUN server', () => {
  let lab: Lab
  let mesh: MeshProcesses

  beforeAll(async () => {
    lab = await createLab({
      sites: [
        { name: 'c1', kind: 'clash', clients: ['c1'] },
        { name: 'c2', kind: 'clash', clients: ['c2'] },
        { name: 's1', kind: 'easy', clients: ['s1'] }
      ]
    })
    await registerWithHub(lab)
    // Debian's coturn as a plain STUN server on the hub's public address, beside wgnat-server's own.
    lab.spawn('hub', ['turnserver', '-n', '--stun-only', '--no-cli', '--no-tls', '--no-dtls', '-L', lab.hub.underlayIp, '-p', String(COTURN_PORT), '--log-file', 'stdout'])
    mesh = startMesh(lab, { clients: [] })
    mesh.startClient('c1', PUNCH_TTL)
    mesh.startClient('c2', PUNCH_TTL)
    mesh.startClient('s1', [...PUNCH_TTL, '--stun', `${lab.hub.underlayIp}:${COTURN_PORT}`, '--hub-stun-port', '0'])
  })

  afterAll(async () => {
    await mesh?.cleanup()
    await lab?.destroy()
  })

  it('two clients behind clash routers connect directly with --punch-ttl', async () => {
    const ms = await waitFor(async () => (await pathBetween(lab, 'c1', 'c2')).path === 'direct', 20_000)
    console.log(`[e2e] clash-clash with --punch-ttl 2: direct after ${ms ?? 'never'} ms`)
    expect(ms, ms === undefined ? `${await routerState(lab, ['c1', 'c2'])}\n${mesh.logs()}` : '').toBeDefined()
    expect((await pathBetween(lab, 'c2', 'c1')).path).toBe('direct')
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

describe.skipIf(!support.ok)('control: clash routers without punching', () => {
  let lab: Lab
  let mesh: MeshProcesses

  beforeAll(async () => {
    lab = await createLab({ sites: [{ name: 'c3', kind: 'clash', clients: ['c3'] }, { name: 'c4', kind: 'clash', clients: ['c4'] }] })
    await registerWithHub(lab)
    mesh = startMesh(lab)
  })

  afterAll(async () => {
    await mesh?.cleanup()
    await lab?.destroy()
  })

  it('the same routers keep the pair apart past the first attempt (the lab reproduces the clash)', async () => {
    // Longer than the first direct attempt (10 s): it has failed by now.
    const ms = await waitFor(async () => (await pathBetween(lab, 'c3', 'c4')).path === 'direct', 12_000)
    console.log(`[e2e] clash-clash without punching: ${ms === undefined ? 'no direct path within 12 s' : `direct after ${ms} ms`}`)
    expect(ms).toBeUndefined()
  })
})
