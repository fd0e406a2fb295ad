import { readdirSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createLab, labSupport, NetemUnsupportedError, type Lab } from '../../scripts/lab/lab.js'
import { parsePing } from '../../scripts/lab/ping.js'
import { planLab } from '../../scripts/lab/plan.js'
import { routerRules } from '../../scripts/lab/router-rules.js'
import { parseSiteList } from '../../scripts/lab/site-list.js'
import { LAB_STATE_DIR } from '../../scripts/lab/state-file.js'
import { WG_SOCKET_DIR } from '../../scripts/lab/teardown.js'

/** How long to wait for every client's first handshake with the hub. */
const HANDSHAKE_TIMEOUT_MS = 10_000
const POLL_MS = 100
/** UDP probe: listeners collect source addresses for this long; senders send a round every SEND_INTERVAL_MS. */
const LISTEN_WINDOW_MS = 2_000
const SEND_ROUNDS = 20
const LISTENER_START_MS = 300
const PROBE_PORT = 40000
const PROBE_SOURCE_PORT = 40001
/** A negative ping: two packets, one second each to answer. */
const NO_REPLY = { count: 2, intervalS: 0.2, timeoutS: 1 }

const support = await labSupport()
if (!support.ok) console.warn(`SKIPPING lab tests: ${support.reason}`)
const describeLab = support.ok ? describe : describe.skip

describe('lab plan (pure)', () => {
  it('gives each site its WAN and LAN and each client a tunnel address, with short unique interface names', () => {
    const plan = planLab({ sites: [{ name: 'a', kind: 'easy', clients: ['a1', 'a2'] }, { name: 'b', kind: 'hard', clients: [{ name: 'b', listenPort: 51999 }] }] }, 'abcd1234')
    expect(plan.sites.map(s => [s.wanIp, s.lanSubnet, s.bridged])).toEqual([['198.18.11.2', '198.19.1.0/24', true], ['198.18.12.2', '198.19.2.0/24', false]])
    expect(plan.clients.map(c => [c.name, c.underlayIp, c.tunnelIp, c.listenPort])).toEqual([
      ['a1', '198.19.1.2', '100.64.0.2', 51820], ['a2', '198.19.1.3', '100.64.0.3', 51820], ['b', '198.19.2.2', '100.64.0.4', 51999]
    ])
    expect(new Set(plan.wgInterfaces).size).toBe(plan.wgInterfaces.length)
    for (const name of plan.wgInterfaces) expect(name.length).toBeLessThanOrEqual(15)
    expect(plan.namespaces.every(ns => ns.startsWith('wgn-abcd1234-'))).toBe(true)
  })

  it('rejects bad names and kinds, quoting them', () => {
    expect(() => planLab({ sites: [{ name: 'Bad!', kind: 'easy', clients: [] }] }, 'x')).toThrow(/'Bad!'/)
    expect(() => planLab({ sites: [{ name: 'a', kind: 'cone' as never, clients: [] }] }, 'x')).toThrow(/'cone'/)
    expect(() => planLab({ sites: [{ name: 'a', kind: 'easy', clients: ['c', 'c'] }] }, 'x')).toThrow(/duplicate client name 'c'/)
    expect(() => parseSiteList('a:easy,b')).toThrow(/'b'/)
    expect(parseSiteList('a:easy,b:hard:b1+b2@51821')).toEqual([
      { name: 'a', kind: 'easy', clients: [{ name: 'a' }] },
      { name: 'b', kind: 'hard', clients: [{ name: 'b1' }, { name: 'b2', listenPort: 51821 }] }
    ])
  })

  it('writes the router rules of each kind', () => {
    const ifs = { wanIf: 'wan0', lanIf: 'lan0', hubIp: '198.18.1.2' }
    expect(routerRules('public', ifs)).toBe('')
    expect(routerRules('hard', ifs)).toContain('MASQUERADE --random-fully')
    expect(routerRules('easy', ifs)).toContain('-A FORWARD -i wan0 -j DROP')
    expect(routerRules('clash', ifs)).not.toContain('DROP')
    expect(routerRules('udpblock', ifs)).toContain('-p udp ! -d 198.18.1.2/32 -j DROP')
  })

  it('parses ping output', () => {
    const out = '64 bytes from 1.2.3.4: icmp_seq=1 ttl=62 time=0.5 ms\n\n--- 1.2.3.4 ping statistics ---\n2 packets transmitted, 1 received, 50% packet loss, time 1ms\n'
    expect(parsePing(out, '', '1.2.3.4')).toEqual({ sent: 2, received: 1, rttMs: [0.5], ttls: [62] })
    expect(parsePing('', 'ping: sendmsg: Required key not available', '1.2.3.4').received).toBe(0)
  })
})

describeLab('NAT lab: one site per router kind, hub forwarding off', () => {
  let lab: Lab
  const createdMs: number[] = []

  beforeAll(async () => {
    const started = Date.now()
    lab = await createLab({
      sites: [
        { name: 'sa', kind: 'easy', clients: ['a'] },
        { name: 'sb', kind: 'easy', clients: ['b'] },
        { name: 'sc', kind: 'hard', clients: ['c'] },
        { name: 'sd', kind: 'public', clients: ['d'] },
        { name: 'se', kind: 'clash', clients: ['e'] },
        { name: 'sf', kind: 'udpblock', clients: ['f'] }
      ]
    })
    createdMs.push(Date.now() - started)
    await waitForHandshakes(lab)
  })

  afterAll(async () => {
    const started = Date.now()
    await lab?.destroy()
    console.info(`lab ${lab?.id}: created in ${createdMs[0]} ms, destroyed in ${Date.now() - started} ms`)
  })

  it('every client reaches the hub tunnel address through its router, two routed hops away', async () => {
    for (const name of ['a', 'b', 'c', 'd', 'e', 'f']) {
      const result = await lab.ping(name, lab.hub.tunnelIp, { count: 2 })
      expect(result.received, `${name} -> hub tunnel`).toBeGreaterThan(0)
    }
    const underlay = await lab.ping('a', lab.hub.underlayIp, { count: 1 })
    expect(underlay.ttls).toEqual([62])
  })

  it('hub sees each client at its router WAN address', async () => {
    const endpoints = await hubEndpoints(lab)
    expect(endpoints.get(lab.clients.a?.publicKey ?? '')).toMatch(/^198\.18\.11\.2:\d+$/)
    expect(endpoints.get(lab.clients.c?.publicKey ?? '')).toMatch(/^198\.18\.13\.2:\d+$/)
    expect(endpoints.get(lab.clients.d?.publicKey ?? '')).toBe('198.19.4.2:51820')
  })

  it('NAT blocks unsolicited traffic; a public site is reachable', async () => {
    expect((await lab.ping('a', '198.18.1.2', NO_REPLY)).received).toBeGreaterThan(0)
    expect((await lab.ping('a', '198.19.2.2', NO_REPLY)).received).toBe(0)
    expect((await lab.ping('a', '198.19.4.2', NO_REPLY)).received).toBeGreaterThan(0)
    expect((await lab.ping('d', '198.19.1.2', NO_REPLY)).received).toBe(0)
    // easy drops new inbound on its WAN, clash does not.
    expect((await lab.ping('hub', lab.routers.sb?.wanIp ?? '', NO_REPLY)).received).toBe(0)
    expect((await lab.ping('hub', lab.routers.se?.wanIp ?? '', NO_REPLY)).received).toBeGreaterThan(0)
  })

  it('without hub forwarding, clients cannot reach each other through the tunnel', async () => {
    expect((await lab.ping('a', lab.clients.b?.tunnelIp ?? '', NO_REPLY)).received).toBe(0)
    expect((await lab.exec('hub', ['sysctl', '-n', 'net.ipv4.ip_forward'])).stdout.trim()).toBe('0')
  })

  it('easy keeps one mapping for all destinations, hard makes one per destination, udpblock passes only the hub', async () => {
    const listeners = [lab.hub.underlayIp, '198.19.4.2'].map(ip =>
      lab.spawn(ip === lab.hub.underlayIp ? 'hub' : 'd', [process.execPath, '-e', LISTENER, String(PROBE_PORT), String(LISTEN_WINDOW_MS)]))
    await sleep(LISTENER_START_MS)
    await Promise.all(['a', 'c', 'f'].map(async name => await lab.exec(name, [
      process.execPath, '-e', SENDER, String(PROBE_SOURCE_PORT), String(PROBE_PORT), String(SEND_ROUNDS), lab.hub.underlayIp, '198.19.4.2'
    ])))
    const [atHub, atD] = await Promise.all(listeners.map(async l => {
      const result = await l
      expect(result.exitCode, result.all).toBe(0)
      return JSON.parse(result.stdout) as Record<string, number[]>
    }))
    // a behind easy (198.18.11.2): the same single port seen by both destinations.
    expect(atHub?.['198.18.11.2']).toHaveLength(1)
    expect(atD?.['198.18.11.2']).toEqual(atHub?.['198.18.11.2'])
    // c behind hard (198.18.13.2): one port per destination, and they differ.
    expect(atHub?.['198.18.13.2']).toHaveLength(1)
    expect(atD?.['198.18.13.2']).toHaveLength(1)
    expect(atD?.['198.18.13.2']?.[0]).not.toBe(atHub?.['198.18.13.2']?.[0])
    // f behind udpblock (198.18.16.2): UDP reaches the hub only.
    expect(atHub?.['198.18.16.2']).toHaveLength(1)
    expect(atD?.['198.18.16.2']).toBeUndefined()
  })

  it('netem: loss drops packets, clear restores; delay works or is reported unsupported', async () => {
    await lab.netem('a', 'eth0', 'loss 100%')
    expect((await lab.ping('a', lab.hub.underlayIp, NO_REPLY)).received).toBe(0)
    await lab.netem('a', 'eth0', 'clear')
    expect((await lab.ping('a', lab.hub.underlayIp, NO_REPLY)).received).toBeGreaterThan(0)
    try {
      await lab.netem('a', 'eth0', 'delay 40ms')
      const delayed = await lab.ping('a', lab.hub.underlayIp, { count: 2 })
      expect(Math.min(...delayed.rttMs)).toBeGreaterThanOrEqual(40)
    } catch (err) {
      expect(err).toBeInstanceOf(NetemUnsupportedError)
      expect(String(err)).toMatch(/sch_netem/)
    } finally {
      await lab.netem('a', 'eth0', 'clear')
    }
  })
})

describeLab('NAT lab: hub forwarding on, two clients behind one router', () => {
  let lab: Lab

  beforeAll(async () => {
    lab = await createLab({
      hubForwarding: true,
      sites: [{ name: 'x', kind: 'easy', clients: ['x1', 'x2'] }, { name: 'y', kind: 'hard', clients: ['y'] }]
    })
    await waitForHandshakes(lab)
  })

  afterAll(async () => { await lab?.destroy() })

  it('a client reaches another through the hub, one routed hop in the tunnel', async () => {
    const result = await lab.ping('x1', lab.clients.y?.tunnelIp ?? '', { count: 3 })
    expect(result.received).toBeGreaterThan(0)
    expect(result.ttls[0]).toBe(63)
  })

  it('two clients on one LAN reach each other directly and share the router WAN address with different ports', async () => {
    const direct = await lab.ping('x1', lab.clients.x2?.underlayIp ?? '', { count: 2 })
    expect(direct.received).toBe(2)
    expect(direct.ttls).toEqual([64, 64])
    const endpoints = await hubEndpoints(lab)
    const x1 = endpoints.get(lab.clients.x1?.publicKey ?? '')
    const x2 = endpoints.get(lab.clients.x2?.publicKey ?? '')
    expect(x1).toMatch(/^198\.18\.11\.2:\d+$/)
    expect(x2).toMatch(/^198\.18\.11\.2:\d+$/)
    expect(x1).not.toBe(x2)
  })
})

describeLab('NAT lab: lifecycle', () => {
  it("with hubAllowedIps 'host' a client routes only the hub into the tunnel, and destroy removes everything, twice", async () => {
    const lab = await createLab({ hubForwarding: true, hubAllowedIps: 'host', sites: [{ name: 'p', kind: 'public', clients: ['p'] }, { name: 'q', kind: 'easy', clients: ['q'] }] })
    try {
      await waitForHandshakes(lab)
      const allowed = await lab.exec('p', ['wg', 'show', lab.clients.p?.wgIf ?? '', 'allowed-ips'])
      expect(allowed.stdout.trim().split('\t')[1]).toBe('100.64.0.1/32')
      expect((await lab.ping('p', lab.clients.q?.tunnelIp ?? '', NO_REPLY)).received).toBe(0)
      const sleeper = lab.spawn('q', ['sleep', '60'])
      await lab.destroy()
      const ended = await sleeper
      expect(ended.isTerminated).toBe(true)
    } finally {
      await lab.destroy()
    }
    expectNothingLeft(lab.id)
  })

  it('cleans up after a failure halfway through createLab', async () => {
    const id = `t${Math.random().toString(16).slice(2, 7)}`
    // A namespace that already exists makes `ip netns add` fail while the others succeed.
    execFileSync('ip', ['netns', 'add', `wgn-${id}-b`])
    await expect(createLab({ id, sites: [{ name: 'a', kind: 'easy', clients: ['a'] }, { name: 'b', kind: 'hard', clients: ['b'] }] }))
      .rejects.toThrow(/wgn-.*-b/)
    expectNothingLeft(id)
  })
})

/** Distinct source ports per source address, printed as JSON after the window. */
const LISTENER = `
const dgram = require('node:dgram')
const [port, windowMs] = process.argv.slice(1).map(Number)
const seen = {}
const s = dgram.createSocket('udp4')
s.on('message', (m, r) => { const ports = seen[r.address] ??= []; if (!ports.includes(r.port)) ports.push(r.port) })
s.bind(port, () => setTimeout(() => { console.log(JSON.stringify(seen)); s.close() }, windowMs))
`

/** From one bound source port, send a datagram to each destination every 50 ms. */
const SENDER = `
const dgram = require('node:dgram')
const [srcPort, dstPort, rounds, ...dests] = process.argv.slice(1)
const s = dgram.createSocket('udp4')
s.on('error', () => {})
s.bind(Number(srcPort), () => {
  let n = 0
  const t = setInterval(() => {
    for (const d of dests) s.send('probe', Number(dstPort), d)
    if (++n >= Number(rounds)) { clearInterval(t); setTimeout(() => s.close(), 50) }
  }, 50)
})
`

async function hubEndpoints (lab: Lab): Promise<Map<string, string>> {
  const { stdout } = await lab.exec('hub', ['wg', 'show', lab.hub.wgIf, 'endpoints'])
  return new Map(stdout.trim().split('\n').map(line => line.split('\t') as [string, string]))
}

async function waitForHandshakes (lab: Lab): Promise<void> {
  const deadline = Date.now() + HANDSHAKE_TIMEOUT_MS
  for (;;) {
    const { stdout } = await lab.exec('hub', ['wg', 'show', lab.hub.wgIf, 'latest-handshakes'])
    const times = stdout.trim().split('\n').map(line => Number(line.split('\t')[1]))
    if (times.length === Object.keys(lab.clients).length && times.every(t => t > 0)) return
    if (Date.now() > deadline) throw new Error(`lab ${lab.id}: not every client shook hands with the hub within ${HANDSHAKE_TIMEOUT_MS} ms: ${JSON.stringify(stdout)}`)
    await sleep(POLL_MS)
  }
}

function expectNothingLeft (id: string): void {
  const namespaces = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
  expect(namespaces).not.toContain(`wgn-${id}-`)
  expect(readdirSync(WG_SOCKET_DIR).filter(f => f.startsWith(`wg${id}-`))).toEqual([])
  expect(readdirSync(LAB_STATE_DIR).filter(f => f.startsWith(id))).toEqual([])
  let pgrep = ''
  try {
    pgrep = execFileSync('pgrep', ['-af', `wireguard-go -f wg${id}-`], { encoding: 'utf8' })
  } catch {
    // pgrep exits 1 when nothing matches.
  }
  expect(pgrep.split('\n').filter(line => line !== '' && !line.includes('<defunct>'))).toEqual([])
}

async function sleep (ms: number): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, ms))
}
