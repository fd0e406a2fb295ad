import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createLab, labSupport, type Lab } from '../../scripts/lab/lab.js'
import { SERVER_BIN, clientStatus, startMesh, waitFor, waitForPing, type MeshProcesses } from '../../scripts/lab/mesh.js'

const support = await labSupport()
if (!support.ok) console.warn(`SKIPPING bootstrap e2e tests: ${support.reason}`)

/** wireguard-go refuses to start without this when a kernel could do WireGuard; wg-quick falls back to it here. */
const WG_ENV = { WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD: '1' }

describe.skipIf(!support.ok)('from nothing: init, add-peer, wg-quick up, mesh, remove-peer', () => {
  let lab: Lab
  let mesh: MeshProcesses | undefined
  let dir: string
  let hubIf: string
  let hubKey: string
  const spokeKeys: Record<string, string> = {}
  const etc = (): string => join(dir, 'hub', 'etc')
  const state = (): string => join(dir, 'hub', 'state')
  const hubConf = (): string => join(etc(), `${hubIf}.conf`)
  const server = async (args: string[]): Promise<{ exitCode: number, stdout: string, stderr: string }> =>
    await lab.exec('hub', [process.execPath, SERVER_BIN, ...args, '--config-dir', etc(), '--state-dir', state()], { reject: false, env: WG_ENV, timeoutMs: 60_000 })
  const hubPeers = async (): Promise<string[]> => (await lab.exec('hub', ['wg', 'show', hubIf, 'peers'])).stdout.split('\n').filter((l) => l !== '')
  const spokePeers = async (name: string): Promise<string[]> => (await lab.exec(name, ['wg', 'show', lab.clients[name]!.wgIf, 'peers'])).stdout.split('\n').filter((l) => l !== '')

  beforeAll(async () => {
    lab = await createLab({ sites: [{ name: 'a', kind: 'easy', clients: ['a'] }, { name: 'b', kind: 'easy', clients: ['b'] }, { name: 'c', kind: 'easy', clients: ['c'] }], bare: true })
    dir = await mkdtemp(join(tmpdir(), `wgnat-bootstrap-${lab.id}-`))
    hubIf = lab.hub.wgIf
  })

  afterAll(async () => {
    await mesh?.cleanup()
    await lab?.destroy()
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  it('the lab is bare: no WireGuard interface anywhere', async () => {
    for (const host of ['hub', 'a', 'b', 'c']) {
      const r = await lab.exec(host, ['ip', '-o', 'link', 'show', 'type', 'wireguard'], { reject: false })
      expect(r.stdout.trim()).toBe('')
    }
    expect((await lab.exec('hub', ['wg', 'show', hubIf], { reject: false })).exitCode).not.toBe(0)
  })

  it('init makes the hub: a 0600 config for plain wg-quick, the interface up, next steps printed', async () => {
    const r = await server(['init', '-i', hubIf, '--endpoint', lab.hub.underlayIp, '--address', '100.64.0.1/24'])
    expect(r.exitCode, r.stderr).toBe(0)
    expect(r.stdout).toContain(`wgnat-server add-peer -i ${hubIf} <name>`)
    const dump = (await lab.exec('hub', ['wg', 'show', hubIf, 'dump'])).stdout.split('\n')[0]!.split('\t')
    hubKey = dump[1]!
    expect(dump[2]).toBe('51820')
    expect(r.stderr).toContain(hubKey)
    const mode = (await lab.exec('hub', ['stat', '-c', '%a', hubConf()])).stdout.trim()
    expect(mode).toBe('600')
    const addr = await lab.exec('hub', ['ip', '-o', 'addr', 'show', 'dev', hubIf])
    expect(addr.stdout).toContain('100.64.0.1/24')
    // The config's PostUp turned on forwarding between peers.
    expect((await lab.exec('hub', ['sysctl', '-n', 'net.ipv4.ip_forward'])).stdout.trim()).toBe('1')
    expect((await lab.exec('hub', ['iptables', '-S', 'FORWARD'])).stdout).toContain(`-A FORWARD -i ${hubIf} -o ${hubIf} -j ACCEPT`)
  })

  it('init again is refused (exit 73) and changes nothing', async () => {
    const before = await readFile(hubConf(), 'utf8')
    const r = await server(['init', '-i', hubIf, '--endpoint', lab.hub.underlayIp])
    expect(r.exitCode).toBe(73)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
    expect(r.stderr).toContain('already exists')
    expect(await readFile(hubConf(), 'utf8')).toBe(before)
  })

  it('add-peer prints each spoke\'s config; plain wg-quick up brings the spokes up and they reach the hub', async () => {
    for (const [host, name] of [['a', 'alice'], ['b', 'bob']] as const) {
      const r = await server(['add-peer', '-i', hubIf, name])
      expect(r.exitCode, r.stderr).toBe(0)
      expect(r.stdout).toContain(`Address = ${lab.clients[host]!.tunnelIp}/24`)
      expect(r.stdout).toContain(`PublicKey = ${hubKey}`)
      expect(r.stdout).toContain(`Endpoint = ${lab.hub.underlayIp}:51820`)
      expect(r.stdout).toContain('AllowedIPs = 100.64.0.0/24')
      expect(r.stdout).toContain('PersistentKeepalive = 25')
      expect(r.stderr).toContain(`wgnat-client -i ${hubIf} -r ${hubKey} -t 1m`)
      // wg-quick takes the interface name from the file name: the lab's unique name for this spoke.
      const spokeDir = join(dir, host)
      await mkdir(spokeDir, { recursive: true, mode: 0o700 })
      const path = join(spokeDir, `${lab.clients[host]!.wgIf}.conf`)
      await writeFile(path, r.stdout, { mode: 0o600 })
      await chmod(path, 0o600)
      const up = await lab.exec(host, ['wg-quick', 'up', path], { reject: false, env: WG_ENV, timeoutMs: 30_000 })
      expect(up.exitCode, up.stderr).toBe(0)
      spokeKeys[name] = (await lab.exec(host, ['wg', 'show', lab.clients[host]!.wgIf, 'public-key'])).stdout.trim()
    }
    expect((await hubPeers()).sort()).toEqual([spokeKeys.alice, spokeKeys.bob].sort())
    const saved = await readFile(hubConf(), 'utf8')
    expect(saved).toContain(`PublicKey = ${spokeKeys.alice}\nAllowedIPs = 100.64.0.2/32`)
    expect(saved).toContain(`PublicKey = ${spokeKeys.bob}\nAllowedIPs = 100.64.0.3/32`)
    for (const host of ['a', 'b']) expect((await lab.ping(host, '100.64.0.1', { count: 2, intervalS: 0.2, timeoutS: 3 })).received).toBeGreaterThan(0)
  })

  it('the daemons start with no other flag; the spokes reach each other directly, with the hub not forwarding', async () => {
    const t0 = Date.now()
    mesh = startMesh(lab, { registryKey: hubKey, serverArgs: ['--config-dir', etc(), '--state-dir', state()], clients: ['a', 'b'] })
    const direct = await waitFor(async () => {
      const dump = (await lab.exec('a', ['wg', 'show', lab.clients.a!.wgIf, 'dump'], { reject: false })).stdout
      return dump.split('\n').some((l) => {
        const f = l.split('\t')
        return f[0] === spokeKeys.bob && (f[3] ?? '').split(',').includes('100.64.0.3/32') && Number(f[4]) > 0
      })
    }, 30_000)
    console.log(`[e2e] bootstrap: alice has bob as a direct peer ${direct ?? 'never'} ms after the daemons started`)
    expect(direct, mesh.logs()).toBeDefined()
    // The direct peer's endpoint is b's router, not the hub.
    const line = (await lab.exec('a', ['wg', 'show', lab.clients.a!.wgIf, 'dump'])).stdout.split('\n').find((l) => l.startsWith(spokeKeys.bob!))
    expect(line?.split('\t')[2]).toMatch(new RegExp(`^${lab.routers.b!.wanIp.replace(/\./g, '\\.')}:\\d+$`))
    // The hub stops forwarding: the spokes still reach each other, so not through the hub.
    await lab.exec('hub', ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=0'])
    const ms = await waitForPing(lab, 'a', '100.64.0.3', Date.now() + 10_000)
    expect(ms, mesh.logs()).toBeDefined()
    expect((await lab.ping('b', '100.64.0.2', { count: 3, intervalS: 0.2, timeoutS: 2 })).received).toBeGreaterThan(0)
    await lab.exec('hub', ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1'])
    console.log(`[e2e] bootstrap: mesh direct ${Date.now() - t0} ms after start`)
  })

  it('the registry serves names: status shows bob, not a key prefix; the daemon relays on an init hub', async () => {
    const ok = await waitFor(async () => (await clientStatus(lab, 'a')).peers.some((p) => p.name === 'bob'), 15_000)
    expect(ok, mesh?.logs()).toBeDefined()
    const status = await clientStatus(lab, 'a')
    expect(status.registry.relay).toBe(true)
    const text = (await lab.exec('a', [process.execPath, SERVER_BIN.replace('wgnat-server', 'wgnat-client'), 'status', '-i', lab.clients.a!.wgIf])).stdout
    expect(text).toMatch(/^bob +direct/m)
    const peers = JSON.parse((await server(['peers', '-i', hubIf, '--json'])).stdout)
    expect(peers.peers.map((p: { name: string, address: string }) => `${p.name} ${p.address}`).sort()).toEqual(['alice 100.64.0.2', 'bob 100.64.0.3'])
    expect(peers.peers.every((p: { endpoint: string | null, latestHandshake: number }) => p.endpoint !== null && p.latestHandshake > 0)).toBe(true)
  })

  it.each([
    [['add-peer', '-i', '%HUB%', 'bob'], 65, "name 'bob' is taken"],
    [['add-peer', '-i', '%HUB%', 'carol', '--address', '100.64.0.2'], 65, 'already taken'],
    [['add-peer', '-i', '%HUB%', 'carol', '--address', '10.8.0.9'], 64, 'not a host address inside the mesh'],
    [['add-peer', '-i', '%HUB%', 'Carol'], 64, "name 'Carol'"],
    [['add-peer', '-i', '%HUB%', 'carol', '--public-key', 'AAAA'], 64, 'not a WireGuard public key'],
    [['add-peer', '-i', '%HUB%', 'carol', '--endpoint', 'hub:99999'], 64, 'is not 1-65535'],
    [['remove-peer', '-i', '%HUB%', 'nobody'], 65, "no peer 'nobody'"],
    [['init', '-i', 'x', '--endpoint', 'a b'], 64, 'is not an IP address or host name'],
    [['init', '-i', 'name-longer-than-15', '--endpoint', 'hub'], 64, 'is not 1-15 of']
  ])('bad input %j: exit %i, one line, nothing changed', async (args, code, message) => {
    const before = await readFile(hubConf(), 'utf8')
    const peers = (await hubPeers()).sort()
    const r = await server(args.map((a) => a === '%HUB%' ? hubIf : a))
    expect(r.exitCode, r.stderr).toBe(code)
    expect(r.stderr).toContain(message)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
    expect(r.stdout).toBe('')
    expect(await readFile(hubConf(), 'utf8')).toBe(before)
    expect((await hubPeers()).sort()).toEqual(peers)
  })

  it('a hand-edited config with an error: exit 65 quoting the line, nothing changed', async () => {
    const badEtc = join(dir, 'bad')
    await mkdir(badEtc, { recursive: true, mode: 0o700 })
    const broken = (await readFile(hubConf(), 'utf8')).replace('ListenPort = 51820', 'ListenPort = 51820x')
    await writeFile(join(badEtc, `${hubIf}.conf`), broken, { mode: 0o600 })
    const peers = (await hubPeers()).sort()
    const r = await lab.exec('hub', [process.execPath, SERVER_BIN, 'add-peer', '-i', hubIf, 'carol', '--config-dir', badEtc, '--state-dir', state()], { reject: false })
    expect(r.exitCode).toBe(65)
    expect(r.stderr).toMatch(/line \d+: ListenPort '51820x' is not a port/)
    expect(await readFile(join(badEtc, `${hubIf}.conf`), 'utf8')).toBe(broken)
    expect((await hubPeers()).sort()).toEqual(peers)
  })

  it('remove-peer takes bob off the hub, its saved config and alice within seconds; alice stays', async () => {
    const t0 = Date.now()
    const r = await server(['remove-peer', '-i', hubIf, 'bob'])
    expect(r.exitCode, r.stderr).toBe(0)
    expect(await hubPeers()).toEqual([spokeKeys.alice])
    const saved = await readFile(hubConf(), 'utf8')
    expect(saved).not.toContain(spokeKeys.bob)
    expect(saved).toContain(spokeKeys.alice)
    const gone = await waitFor(async () => !(await spokePeers('a')).includes(spokeKeys.bob!), 15_000)
    console.log(`[e2e] bootstrap: bob gone from alice ${gone === undefined ? 'never' : Date.now() - t0} ms after remove-peer`)
    expect(gone, mesh?.logs()).toBeDefined()
    expect(Date.now() - t0).toBeLessThan(15_000)
    expect((await spokePeers('a'))).toContain(hubKey)
    expect((await lab.ping('a', '100.64.0.1', { count: 2, intervalS: 0.2, timeoutS: 2 })).received).toBeGreaterThan(0)
  })

  it('the hub survives plain wg-quick down and up with its remaining peer', async () => {
    await mesh?.cleanup()
    mesh = undefined
    const down = await lab.exec('hub', ['wg-quick', 'down', hubConf()], { reject: false, env: WG_ENV })
    expect(down.exitCode, down.stderr).toBe(0)
    expect((await lab.exec('hub', ['iptables', '-S', 'FORWARD'])).stdout).not.toContain(`-i ${hubIf} -o ${hubIf}`)
    const up = await lab.exec('hub', ['wg-quick', 'up', hubConf()], { reject: false, env: WG_ENV, timeoutMs: 30_000 })
    expect(up.exitCode, up.stderr).toBe(0)
    expect(await hubPeers()).toEqual([spokeKeys.alice])
    const back = await waitForPing(lab, 'a', '100.64.0.1', Date.now() + 30_000)
    expect(back).toBeDefined()
  })

  it('--full-tunnel: the spoke sends its internet traffic through the hub, which masquerades it; remove-peer undoes it', async () => {
    const natRule = `-A POSTROUTING -s 100.64.0.3/32 ! -o ${hubIf} -j MASQUERADE`
    const r = await server(['add-peer', '-i', hubIf, 'carol', '--full-tunnel'])
    expect(r.exitCode, r.stderr).toBe(0)
    expect(r.stdout).toContain('AllowedIPs = 0.0.0.0/0')
    expect(r.stdout).toContain('Address = 100.64.0.3/24')
    expect((await lab.exec('hub', ['iptables', '-t', 'nat', '-S', 'POSTROUTING'])).stdout).toContain(natRule)
    const path = join(dir, `${lab.clients.c!.wgIf}.conf`)
    await writeFile(path, r.stdout, { mode: 0o600 })
    const up = await lab.exec('c', ['wg-quick', 'up', path], { reject: false, env: WG_ENV, timeoutMs: 30_000 })
    expect(up.exitCode, up.stderr).toBe(0)
    // 198.18.1.1 is the lab's internet router: it has no route back to 100.64.0.0/24, so a reply proves the
    // hub masqueraded carol's packets; the rule's counter proves they went through the tunnel.
    const ping = await lab.ping('c', '198.18.1.1', { count: 3, intervalS: 0.3, timeoutS: 3 })
    expect(ping.received).toBeGreaterThan(0)
    const counters = (await lab.exec('hub', ['iptables', '-t', 'nat', '-L', 'POSTROUTING', '-v', '-n', '-x'])).stdout
    const line = counters.split('\n').find((l) => l.includes('MASQUERADE') && l.includes('100.64.0.3'))
    expect(Number(line?.trim().split(/\s+/)[0])).toBeGreaterThan(0)
    const removed = await server(['remove-peer', '-i', hubIf, 'carol'])
    expect(removed.exitCode, removed.stderr).toBe(0)
    expect((await lab.exec('hub', ['iptables', '-t', 'nat', '-S', 'POSTROUTING'])).stdout).not.toContain(natRule)
    expect(await readFile(hubConf(), 'utf8')).not.toContain('100.64.0.3')
    expect(await hubPeers()).toEqual([spokeKeys.alice])
  })
})
