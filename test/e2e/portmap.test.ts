import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createLab, labSupport, type Lab } from '../../scripts/lab/lab.js'
import { run } from '../../scripts/lab/command.js'
import { miniupnpdConfig, portMappingRouterRules } from '../../scripts/lab/miniupnpd.js'
import { planLab } from '../../scripts/lab/plan.js'
import { parseSiteList } from '../../scripts/lab/site-list.js'
import { CLIENT_BIN, clientStatus, type MeshProcesses, pathBetween, registerWithHub, startMesh, waitFor } from '../../scripts/lab/mesh.js'

const support = await labSupport()
const miniupnpd = (await run(['miniupnpd', '--version'], { reject: false })).exitCode === 0
const ok = support.ok && miniupnpd
if (!ok) console.warn(`SKIPPING port mapping e2e tests: ${support.ok ? 'miniupnpd (Debian miniupnpd-nftables) not installed' : support.reason}`)

/** The port-mapping rules miniupnpd keeps in the router's nftables (DNAT in prerouting_miniupnpd). */
async function dnatRules (lab: Lab, site: string): Promise<string[]> {
  const out = await lab.exec(`router:${site}`, ['nft', 'list', 'chain', 'inet', 'filter', 'prerouting_miniupnpd'])
  return out.stdout.split('\n').filter((l) => l.includes('dnat'))
}

describe('port-mapping lab routers (pure)', () => {
  it('parses kind+upnp in --sites and accepts it only for easy and hard routers', () => {
    expect(parseSiteList('e:easy,h:hard+upnp:h1+h2')).toEqual([
      { name: 'e', kind: 'easy', clients: [{ name: 'e' }] },
      { name: 'h', kind: 'hard', clients: [{ name: 'h1' }, { name: 'h2' }], portMapping: true }
    ])
    expect(() => planLab({ sites: parseSiteList('p:public+upnp') }, 'x')).toThrow(/easy or hard router, not 'public'/)
    expect(() => parseSiteList('p:cone+upnp')).toThrow(/unknown router kind 'cone'/)
    expect(planLab({ sites: [{ name: 'h', kind: 'hard', clients: ['h'], portMapping: true }] }, 'x').sites[0]?.portMapping).toBe(true)
    expect(() => planLab({ sites: [{ name: 'c', kind: 'clash', clients: ['c'], portMapping: true }] }, 'x')).toThrow(/easy or hard router, not 'clash'/)
  })

  it('router rules: miniupnpd\'s chains in inet filter, NEW inbound only when DNATed, LAN-only masquerade', () => {
    const rules = portMappingRouterRules({ kind: 'hard', wanIf: 'wan0', lanSubnet: '198.19.2.0/24' })
    expect(rules).toMatch(/^table inet filter \{/)
    for (const chain of ['miniupnpd', 'prerouting_miniupnpd', 'postrouting_miniupnpd']) expect(rules).toContain(`chain ${chain} {`)
    expect(rules).toContain('iifname "wan0" jump miniupnpd')
    expect(rules).toContain('iifname "wan0" ct state new ct status dnat accept\n    iifname "wan0" drop')
    // The router's own traffic (miniupnpd's STUN check) keeps its address and port.
    expect(rules).toContain('oifname "wan0" ip saddr 198.19.2.0/24 masquerade fully-random')
    expect(portMappingRouterRules({ kind: 'easy', wanIf: 'wan0', lanSubnet: '198.19.1.0/24' })).toMatch(/ip saddr 198\.19\.1\.0\/24 masquerade\n/)
    expect(() => portMappingRouterRules({ kind: 'public', wanIf: 'wan0', lanSubnet: '198.19.1.0/24' })).toThrow(/'public'/)
  })

  it('miniupnpd config: all three protocols, STUN check, LAN-only mappings of unprivileged ports', () => {
    const conf = miniupnpdConfig({ wanIf: 'wan0', lanIf: 'lan0', lanSubnet: '198.19.2.0/24' }, { host: '198.18.1.1', port: 3478 }, 'u')
    expect(conf.split('\n')).toEqual(expect.arrayContaining([
      'ext_ifname=wan0', 'listening_ip=lan0', 'enable_natpmp=yes', 'enable_upnp=yes', 'ext_perform_stun=yes',
      'ext_stun_host=198.18.1.1', 'ext_stun_port=3478', 'secure_mode=yes', 'uuid=u',
      'allow 1024-65535 198.19.2.0/24 1024-65535', 'deny 0-65535 0.0.0.0/0 0-65535'
    ]))
  })
})

/** The sites of both tests: `e` behind an easy NAT, `h` behind a symmetric NAT whose router runs miniupnpd. */
const SITES = [
  { name: 'e', kind: 'easy' as const, clients: ['e'] },
  { name: 'h', kind: 'hard' as const, clients: ['h'], portMapping: true }
]

describe.skipIf(!ok)('port mapping: easy - hard with miniupnpd on the hard side, hub not forwarding', () => {
  let lab: Lab
  let mesh: MeshProcesses
  let startedMs = 0

  beforeAll(async () => {
    lab = await createLab({ sites: SITES })
    await registerWithHub(lab)
    startedMs = Date.now()
    mesh = startMesh(lab, { clientArgs: ['--direct-timeout', '4s'] })
  })

  afterAll(async () => {
    await mesh?.cleanup()
    await lab?.destroy()
  })

  it('maps the WireGuard port on the router and shows it in status', async () => {
    const h = lab.clients.h!
    const took = await waitFor(async () => (await clientStatus(lab, 'h').catch(() => undefined))?.self.portMapping != null, 15_000)
    expect(took, mesh.logs()).toBeDefined()
    const s = await clientStatus(lab, 'h')
    console.log(`[e2e] port mapping after ${Date.now() - startedMs} ms: ${JSON.stringify(s.self.portMapping)}`)
    expect(s.self.natClass).toBe('hard')
    expect(s.self.portMapping).toMatchObject({ endpoint: `${lab.routers.h!.wanIp}:${h.listenPort}`, gateway: '198.19.2.1' })
    expect(['pcp', 'nat-pmp', 'upnp']).toContain(s.self.portMapping?.protocol)
    expect(await dnatRules(lab, 'h')).toEqual([expect.stringContaining(`dnat ip to ${h.underlayIp}:${h.listenPort}`)])
    const text = await lab.exec('h', [process.execPath, CLIENT_BIN, 'status', '-i', h.wgIf])
    expect(text.stdout).toContain(`port mapping ${lab.routers.h!.wanIp}:${h.listenPort}`)
  })

  it('goes direct through the mapping (ping both ways), and status says the mapped candidate won', async () => {
    const took = await waitFor(async () => (await pathBetween(lab, 'e', 'h')).path === 'direct', 30_000)
    console.log(`[e2e] easy -> hard+mapping direct after ${Date.now() - startedMs} ms from the clients' start`)
    expect(took, mesh.logs()).toBeDefined()
    const there = await lab.ping('e', lab.clients.h!.tunnelIp, { count: 3, timeoutS: 2 })
    const back = await lab.ping('h', lab.clients.e!.tunnelIp, { count: 3, timeoutS: 2 })
    expect(there.received).toBeGreaterThan(0)
    expect(back.received).toBeGreaterThan(0)
    // The hub does not forward: these pings can only have taken the direct path.
    expect((await pathBetween(lab, 'h', 'e')).path).toBe('direct')
    const e = await clientStatus(lab, 'e')
    const toH = e.peers.find((p) => p.publicKey === lab.clients.h!.publicKey)
    expect(toH, mesh.logs()).toMatchObject({ path: 'direct', candidate: 'mapped', endpoint: `${lab.routers.h!.wanIp}:${lab.clients.h!.listenPort}`, natClass: 'hard' })
    const text = await lab.exec('e', [process.execPath, CLIENT_BIN, 'status', '-i', lab.clients.e!.wgIf])
    expect(text.stdout).toMatch(/direct\s.*\smapped\s/)
  })

  it('deletes the mapping on the router when the client exits (SIGTERM)', async () => {
    expect(await dnatRules(lab, 'h')).toHaveLength(1)
    const stopped = await mesh.stopClient('h')
    console.log(`[e2e] client h stopped in ${stopped.ms} ms`)
    expect(stopped.exitCode).toBe(0)
    expect(await dnatRules(lab, 'h'), mesh.logs()).toEqual([])
    const out = await lab.exec('h', ['upnpc', '-i', '-l'], { reject: false })
    expect(out.stdout).not.toMatch(/UDP\s+51820->/)
  })
})

describe.skipIf(!ok)('port mapping control: the same pair with --no-port-mapping does not go direct', () => {
  let lab: Lab
  let mesh: MeshProcesses

  beforeAll(async () => {
    lab = await createLab({ sites: SITES })
    await registerWithHub(lab)
    mesh = startMesh(lab, { clientArgs: ['--direct-timeout', '4s', '--no-port-mapping'] })
  })

  afterAll(async () => {
    await mesh?.cleanup()
    await lab?.destroy()
  })

  it('asks for no mapping, and the pair stays apart (the hub does not forward)', async () => {
    // Long enough for both sides to try and give up at least once (direct timeout 4 s).
    const deadline = Date.now() + 14_000
    let sawAttempt = false
    while (Date.now() < deadline) {
      expect((await pathBetween(lab, 'e', 'h')).path, mesh.logs()).toBe('none')
      const e = await clientStatus(lab, 'e').catch(() => undefined)
      if (e?.peers.some((p) => p.publicKey === lab.clients.h!.publicKey && p.reason !== 'not tried yet')) sawAttempt = true
      await new Promise((resolve) => setTimeout(resolve, 500))
    }
    expect(sawAttempt, mesh.logs()).toBe(true)
    expect((await clientStatus(lab, 'h')).self.portMapping).toBeNull()
    expect(await dnatRules(lab, 'h')).toEqual([])
  })
})
