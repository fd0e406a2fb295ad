import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createLab, labSupport, type Lab } from '../../scripts/lab/lab.js'
import type { SpawnedProcess } from '../../scripts/lab/command.js'
import { SERVER_BIN, registerWithHub, waitFor } from '../../scripts/lab/mesh.js'
import { writePeerNames } from '../../src/server/inventory/peer-names.js'

const support = await labSupport()
if (!support.ok) console.warn(`SKIPPING expose e2e tests: ${support.reason}`)

const HUB_PUBLIC = '198.18.1.2'
const NODE = process.execPath

/** An HTTP server on a tunnel address that says who it is and whom it sees. */
const HTTP_SERVER = `const [name, host, port] = process.argv.slice(1)
require('http').createServer((q, s) => s.end(name + ' sees ' + q.socket.remoteAddress)).listen(Number(port), host)`
/** A UDP echo on a tunnel address: answers `echo <sender address> <payload>`. */
const UDP_ECHO = `const [host, port] = process.argv.slice(1)
const d = require('dgram').createSocket('udp4')
d.on('message', (m, r) => d.send(Buffer.from('echo ' + r.address + ' ' + m), r.port, r.address))
d.bind(Number(port), host)`
/** One HTTP GET; prints the body, exits 1 (message on stderr) on failure or after 2 s. */
const HTTP_GET = `fetch(process.argv[1], { signal: AbortSignal.timeout(2000) }).then(r => r.text()).then(t => process.stdout.write(t), e => { console.error(e.cause?.code ?? e.name); process.exit(1) })`
/** One UDP datagram; prints the answer, exits 1 without one within 2 s. */
const UDP_ASK = `const [host, port, text] = process.argv.slice(1)
const d = require('dgram').createSocket('udp4')
d.on('message', m => { process.stdout.write(m); process.exit(0) })
d.send(Buffer.from(text), Number(port), host)
setTimeout(() => process.exit(1), 2000)`

describe.skipIf(!support.ok)('wgnat-server --expose: public ports of the hub forwarded into the tunnel', () => {
  let lab: Lab
  let stateDir: string
  let exposeFile: string
  const spawned: SpawnedProcess[] = []
  const output = new Map<SpawnedProcess, string[]>()
  let server: SpawnedProcess | undefined

  const startServer = (args: string[]): SpawnedProcess => {
    const p = lab.spawn('hub', [NODE, SERVER_BIN, '-i', lab.hub.wgIf, '--state-dir', stateDir, ...args])
    const lines: string[] = []
    output.set(p, lines)
    p.all?.on('data', (chunk: Buffer) => { lines.push(String(chunk)) })
    spawned.push(p)
    return p
  }
  const logs = (p = server): string => (p === undefined ? [] : output.get(p) ?? []).join('').split('\n').slice(-60).join('\n')
  const get = async (port: number, host = HUB_PUBLIC): Promise<string | undefined> => {
    const r = await lab.exec('inet', [NODE, '-e', HTTP_GET, `http://${host}:${port}/`], { reject: false })
    return r.exitCode === 0 ? r.stdout : undefined
  }
  const ask = async (port: number, text: string, host = HUB_PUBLIC): Promise<string | undefined> => {
    const r = await lab.exec('inet', [NODE, '-e', UDP_ASK, host, String(port), text], { reject: false })
    return r.exitCode === 0 ? r.stdout : undefined
  }
  const table = async (): Promise<{ exists: boolean, text: string }> => {
    const r = await lab.exec('hub', ['nft', 'list', 'tables'], { reject: false })
    return { exists: r.stdout.includes('wgnat_expose_'), text: r.stdout }
  }
  const ipForward = async (): Promise<string> => (await lab.exec('hub', ['cat', '/proc/sys/net/ipv4/ip_forward'])).stdout.trim()
  const exposes = async (): Promise<import('../../src/server/expose/expose-counters.js').ExposeStatus> =>
    JSON.parse((await lab.exec('hub', [NODE, SERVER_BIN, 'exposes', '-i', lab.hub.wgIf, '--json'])).stdout)
  const stop = async (p: SpawnedProcess | undefined): Promise<number | undefined> => {
    p?.kill('SIGTERM')
    return (await p)?.exitCode
  }

  beforeAll(async () => {
    lab = await createLab({ sites: [{ name: 'web', kind: 'easy', clients: ['web'] }, { name: 'game', kind: 'hard', clients: ['game'] }] })
    stateDir = mkdtempSync(join(tmpdir(), `wgnat-e2e-expose-${lab.id}-`))
    exposeFile = join(stateDir, 'expose.conf')
    await writePeerNames(stateDir, lab.hub.wgIf, new Map([[lab.clients.web!.publicKey, 'web']]))
    await registerWithHub(lab)
    const web = lab.clients.web!.tunnelIp
    const game = lab.clients.game!.tunnelIp
    // web serves on 8080 (exposed) and on 9090 (never exposed); game echoes on 7000 (exposed as 27015).
    spawned.push(lab.spawn('web', [NODE, '-e', HTTP_SERVER, 'web', web, '8080']))
    spawned.push(lab.spawn('web', [NODE, '-e', HTTP_SERVER, 'web-private', web, '9090']))
    spawned.push(lab.spawn('game', [NODE, '-e', UDP_ECHO, game, '7000']))
    // A service of the hub itself on all its addresses (think sshd): an expose must not hide it.
    spawned.push(lab.spawn('hub', [NODE, '-e', HTTP_SERVER, 'hub', '0.0.0.0', '2222']))
    // The internet host can route to the tunnel's addresses through the hub, as a neighbour on its segment could.
    await lab.exec('inet', ['ip', 'route', 'add', '100.64.0.0/24', 'via', HUB_PUBLIC])
    writeFileSync(exposeFile, '# reloaded on SIGHUP\n8081/tcp=web:8080\n')
  })

  afterAll(async () => {
    for (const p of spawned) p.kill('SIGTERM')
    await lab?.destroy()
    if (stateDir !== undefined) rmSync(stateDir, { recursive: true, force: true })
  })

  it('bad specs are refused at start: one line quoting the spec, exit 64, nothing installed', async () => {
    for (const [spec, why] of [
      ['8080/tcp=nobody:8080', /'8080\/tcp=nobody:8080': no peer named 'nobody'/],
      [`51820/udp=web:8080`, /port 51820\/udp is WireGuard's listen port/],
      ['3478/udp=web:3478', /port 3478\/udp is the STUN server's port/],
      ['8080/tcp=100.64.0.99:80', /no peer has '100.64.0.99'/],
      ['2200-2300/tcp=web:8000', /port 2222\/tcp is in use on the hub \(a socket on 0.0.0.0:2222\)/],
      ['8080/tcp=web', /no :<port>/]
    ] as const) {
      const p = startServer(['--expose', '27015/udp=100.64.0.3:7000', '--expose', spec])
      const r = await p
      const lines = String(r.all ?? '').split('\n').filter((l) => l.trim() !== '')
      expect(r.exitCode, logs(p)).toBe(64)
      expect(lines.filter((l) => /ERROR|error/.test(l) || /--expose/.test(l)).at(-1), logs(p)).toMatch(why)
      expect(lines.some((l) => /\n|^\s+at /.test(l))).toBe(false)
    }
    expect((await table()).exists).toBe(false)
    expect(await ipForward()).toBe('0')
  })

  it('an HTTP service behind an easy NAT and a UDP echo behind a hard NAT answer on the hub\'s public address', async () => {
    server = startServer(['--expose', '8080/tcp=web:8080', '--expose', `27015/udp=${lab.clients.game!.tunnelIp}:7000`, '--expose-file', exposeFile])
    expect(await waitFor(async () => (await get(8080)) !== undefined, 20_000), logs()).toBeDefined()
    // Masqueraded: the service sees the hub's tunnel address, and answers through the tunnel whatever its default route.
    expect(await get(8080)).toBe(`web sees ${lab.hub.tunnelIp}`)
    expect(await get(8081)).toBe(`web sees ${lab.hub.tunnelIp}`)
    expect(await ask(27015, 'ping')).toBe(`echo ${lab.hub.tunnelIp} ping`)
    expect(await ipForward()).toBe('1')
  })

  it('only the listed port reaches only the listed peer and port', async () => {
    // Another port of the same spoke, through the hub's public address: nothing there.
    expect(await get(9090)).toBeUndefined()
    // The same spoke's ports straight at its tunnel address, routed through the hub (forwarding is on now): the
    // guard drops them at the hub, where they would otherwise be forwarded into the tunnel.
    const dropsBefore = (await exposes()).guardDrops ?? 0
    expect(await get(9090, lab.clients.web!.tunnelIp)).toBeUndefined()
    expect(await get(8080, lab.clients.web!.tunnelIp)).toBeUndefined()
    expect(await ask(7000, 'direct', lab.clients.game!.tunnelIp)).toBeUndefined()
    expect((await exposes()).guardDrops).toBeGreaterThanOrEqual(dropsBefore + 3)
    // The exposed UDP port is not open on TCP, nor the TCP one on UDP.
    expect(await get(27015)).toBeUndefined()
    expect(await ask(8080, 'x')).toBeUndefined()
    // ... while the exposes still work.
    expect(await get(8080)).toBe(`web sees ${lab.hub.tunnelIp}`)
  })

  it('`wgnat-server exposes` lists each expose with connection and byte counters', async () => {
    const s = await exposes()
    const web = s.exposes.find((e) => e.expose === `8080/tcp=${lab.clients.web!.tunnelIp}:8080`)
    const game = s.exposes.find((e) => e.expose === `27015/udp=${lab.clients.game!.tunnelIp}:7000`)
    expect(s.installed).toBe(true)
    expect(s.masquerade).toBe(true)
    expect(web?.connections).toBeGreaterThanOrEqual(3)
    expect(web?.toPeer.bytes).toBeGreaterThan(0)
    expect(web?.fromPeer.bytes).toBeGreaterThan(0)
    expect(game?.connections).toBeGreaterThanOrEqual(1)
    expect(game?.fromPeer.packets).toBeGreaterThanOrEqual(1)
    expect(s.guardDrops).toBeGreaterThan(0)
    const text = (await lab.exec('hub', [NODE, SERVER_BIN, 'exposes', '-i', lab.hub.wgIf])).stdout
    expect(text).toMatch(/^EXPOSE\s+CONNECTIONS/)
    expect(text).toContain(`8080/tcp=${lab.clients.web!.tunnelIp}:8080`)
  })

  it('SIGHUP reloads the file; a bad file keeps the old set', async () => {
    writeFileSync(exposeFile, '8082/tcp=web:8080\n')
    server!.kill('SIGHUP')
    expect(await waitFor(async () => (await get(8082)) !== undefined, 10_000), logs()).toBeDefined()
    expect(await get(8081)).toBeUndefined()
    expect(await get(8080)).toBeDefined()

    writeFileSync(exposeFile, '8083/tcp=web:8080\n8084/tcp=nobody:1\n')
    server!.kill('SIGHUP')
    expect(await waitFor(async () => logs().includes("'8084/tcp=nobody:1': no peer named 'nobody'"), 10_000), logs()).toBeDefined()
    expect(await get(8082)).toBe(`web sees ${lab.hub.tunnelIp}`)
    expect(await get(8083)).toBeUndefined()
  })

  it('keeps working after the spokes\' routers lose their mappings (new public ports)', async () => {
    const { wanIf, wanIp } = lab.routers.web!
    const web = lab.clients.web!
    await lab.exec('router:web', ['iptables', '-w', '-t', 'nat', '-I', 'POSTROUTING', '1', '-o', wanIf, '-s', web.underlayIp, '-p', 'udp', '--sport', String(web.listenPort), '-j', 'SNAT', '--to-source', `${wanIp}:31000`])
    await lab.exec('router:web', ['conntrack', '-F'], { reject: false })
    await lab.exec('router:game', ['conntrack', '-F'], { reject: false })
    const t0 = Date.now()
    // The hub learns the new endpoint from the spoke's next packet: at the latest its keepalive (25 s in the lab).
    const httpMs = await waitFor(async () => (await get(8080)) !== undefined, 45_000)
    const udpMs = await waitFor(async () => (await ask(27015, 'again')) !== undefined, 45_000)
    console.log(`[e2e] expose after rebind: HTTP answers again after ${httpMs ?? 'never'} ms, UDP after ${Date.now() - t0} ms`)
    expect(httpMs, logs()).toBeDefined()
    expect(udpMs, logs()).toBeDefined()
    const endpoints = (await lab.exec('hub', ['wg', 'show', lab.hub.wgIf, 'endpoints'])).stdout
    expect(endpoints).toContain(`${wanIp}:31000`)
  })

  it('after wgnat-server stops: nothing answers, the table is gone, forwarding is off again', async () => {
    expect(await stop(server)).toBe(0)
    expect(await get(8080)).toBeUndefined()
    expect(await ask(27015, 'late')).toBeUndefined()
    expect((await table()).exists).toBe(false)
    expect(await ipForward()).toBe('0')
    expect((await exposes()).installed).toBe(false)
  })

  it('after SIGKILL the next start replaces the table it left, and cleans up on exit', async () => {
    const killed = startServer(['--expose', '8085/tcp=web:8080'])
    expect(await waitFor(async () => (await get(8085)) !== undefined, 20_000), logs(killed)).toBeDefined()
    killed.kill('SIGKILL')
    await killed
    expect((await table()).exists).toBe(true)
    expect(await ipForward()).toBe('1')

    server = startServer(['--expose', '8086/tcp=web:8080'])
    expect(await waitFor(async () => (await get(8086)) !== undefined, 20_000), logs()).toBeDefined()
    expect(await get(8085)).toBeUndefined()
    expect(logs()).toContain('an earlier run left table')
    expect(await stop(server)).toBe(0)
    expect((await table()).exists).toBe(false)
    expect(await ipForward()).toBe('0')
  })

  it('--expose-preserve-source: the service sees the client\'s real address when the spoke routes replies through the tunnel', async () => {
    const web = lab.clients.web!
    server = startServer(['--expose', '8080/tcp=web:8080', '--expose-preserve-source'])
    expect(await waitFor(async () => (await exposes()).installed, 20_000), logs()).toBeDefined()
    // Without the spoke's set-up, its replies to the real client leave through its own NAT: nothing comes back.
    expect(await get(8080)).toBeUndefined()
    // The spoke side of the documented set-up: the hub peer may carry any source (AllowedIPs 0.0.0.0/0), and
    // whatever leaves from the tunnel address goes into the tunnel (policy routing); the default route is untouched.
    await lab.exec('web', ['wg', 'set', web.wgIf, 'peer', lab.hub.publicKey, 'allowed-ips', '0.0.0.0/0'])
    await lab.exec('web', ['ip', 'route', 'add', 'default', 'dev', web.wgIf, 'table', '200'])
    await lab.exec('web', ['ip', 'rule', 'add', 'from', web.tunnelIp, 'lookup', '200', 'priority', '100'])
    expect(await waitFor(async () => (await get(8080)) !== undefined, 20_000), logs()).toBeDefined()
    expect(await get(8080)).toBe('web sees 198.18.1.1')
    expect((await exposes()).masquerade).toBe(false)
    expect(await stop(server)).toBe(0)
  })
})
