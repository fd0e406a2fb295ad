import { mkdtemp, readFile, readdir, rm, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { runAddPeer } from '../../src/server/bootstrap/add-peer-command.js'
import { runInit } from '../../src/server/bootstrap/init-command.js'
import { publicKeyOf } from '../../src/server/bootstrap/key-pair.js'
import { runPeers } from '../../src/server/bootstrap/peers-command.js'
import { runRemovePeer } from '../../src/server/bootstrap/remove-peer-command.js'
import { readPeerNames } from '../../src/server/inventory/peer-names.js'
import { parseWgQuickConfig, peersOf } from '../../src/shared/wg-quick-config.js'
import { FakeWg } from '../helpers/fake-wg.js'
import { testKey } from '../helpers/keys.js'

/** The bootstrap commands against temp dirs and an in-memory interface (no root, no wg-quick). */
describe('bootstrap commands (fake interface)', () => {
  let dir: string
  let wg: FakeWg
  const IF = 'wgtest0'
  const dirs = (): string[] => ['--config-dir', join(dir, 'etc'), '--state-dir', join(dir, 'state')]
  const conf = (): string => join(dir, 'etc', `${IF}.conf`)

  async function cmd (run: typeof runAddPeer, args: string[]): Promise<{ code: number, out: string, err: string[] }> {
    let out = ''
    const err: string[] = []
    const code = await run(['node', 'x', ...args, ...dirs()], { stdout: (t) => { out += t }, stderr: (l) => err.push(l) }, { wg })
    return { code, out, err }
  }

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wgnat-bootstrap-'))
    wg = new FakeWg()
    const up = async (path: string): Promise<void> => {
      const priv = /PrivateKey = (\S+)/.exec(await readFile(path, 'utf8'))?.[1] ?? ''
      wg.addDevice(IF, { publicKey: publicKeyOf(priv), listenPort: 51820, peers: [] })
    }
    const code = await runInit(['node', 'x', '-i', IF, '--endpoint', 'hub.example.com', '--no-forward', ...dirs()], { stdout: () => {}, stderr: () => {} }, { wg, up })
    expect(code).toBe(0)
  })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  it('init refuses an IPv6 mesh subnet (exit 64)', async () => {
    const r = await cmd(runInit as typeof runAddPeer, ['-i', 'wgtest1', '--endpoint', 'x.example', '--no-forward', '--address', 'fd00::1/64'])
    expect(r.code).toBe(64)
    expect(r.err[0]).toMatch(/must be IPv4/)
  })

  it('init refuses an existing config (exit 73) and leaves it alone', async () => {
    const before = await readFile(conf(), 'utf8')
    const r = await cmd(runInit as typeof runAddPeer, ['-i', IF, '--endpoint', 'x.example', '--no-forward'])
    expect(r.code).toBe(73)
    expect(r.err.join('\n')).toMatch(/already exists: not overwriting it/)
    expect(await readFile(conf(), 'utf8')).toBe(before)
  })

  it('eight add-peer at once get eight different addresses, in the config, live and named', async () => {
    const results = await Promise.all(Array.from({ length: 8 }, async (_, i) => await cmd(runAddPeer, ['-i', IF, `spoke${i}`])))
    expect(results.map((r) => r.code)).toEqual(Array(8).fill(0))
    const addresses = results.map((r) => /^Address = (\S+)$/m.exec(r.out)?.[1])
    expect(new Set(addresses).size).toBe(8)
    expect(addresses.every((a) => /^10\.8\.0\.([2-9])\/24$/.test(a ?? ''))).toBe(true)
    const saved = peersOf(parseWgQuickConfig(await readFile(conf(), 'utf8')))
    expect(saved).toHaveLength(8)
    expect(wg.devices.get(IF)?.peers).toHaveLength(8)
    expect([...(await readPeerNames(join(dir, 'state'), IF)).values()].sort()).toEqual(Array.from({ length: 8 }, (_, i) => `spoke${i}`))
    const printed = results[0]!.out
    expect(printed).toContain('Endpoint = hub.example.com:51820')
    expect(printed).toContain(`PublicKey = ${wg.devices.get(IF)?.publicKey ?? ''}`)
    // The spoke's private key is printed, never stored on the hub.
    const spokePriv = /PrivateKey = (\S+)/.exec(printed)?.[1] ?? ''
    for (const f of ['etc/wgtest0.conf', 'state/wgtest0.names.json']) expect(await readFile(join(dir, f), 'utf8')).not.toContain(spokePriv)
  })

  it.each([
    [['dup'], 'name \'dup\' is taken', 65],
    [['x', '--address', '10.8.0.2'], 'already taken', 65],
    [['x', '--address', '10.8.0.1'], 'already taken', 65],
    [['x', '--address', '10.9.0.5'], 'not a host address inside the mesh', 64],
    [['x', '--public-key', 'not-a-key'], 'not a WireGuard public key', 64],
    [['Bad_Name'], 'name \'Bad_Name\'', 64],
    [['x', '--endpoint', 'bad host'], 'is not an IP address or host name', 64],
    [['x', '--full-tunnel'], 'does not forward', 65]
  ])('add-peer %j fails with one line and changes nothing', async (args, message, code) => {
    expect((await cmd(runAddPeer, ['-i', IF, 'dup'])).code).toBe(0)
    const before = await readFile(conf(), 'utf8')
    const names = await readFile(join(dir, 'state', `${IF}.names.json`), 'utf8')
    const r = await cmd(runAddPeer, ['-i', IF, ...args])
    expect(r.code).toBe(code)
    expect(r.err).toHaveLength(1)
    expect(r.err[0]).toContain(message)
    expect(r.out).toBe('')
    expect(await readFile(conf(), 'utf8')).toBe(before)
    expect(await readFile(join(dir, 'state', `${IF}.names.json`), 'utf8')).toBe(names)
    expect(wg.devices.get(IF)?.peers).toHaveLength(1)
  })

  it('a full subnet is exit 65', async () => {
    await writeFile(conf(), (await readFile(conf(), 'utf8')).replace('10.8.0.1/24', '10.8.0.1/30'))
    expect((await cmd(runAddPeer, ['-i', IF, 'a'])).code).toBe(0)
    const r = await cmd(runAddPeer, ['-i', IF, 'b'])
    expect(r.code).toBe(65)
    expect(r.err[0]).toMatch(/no free address left in '10.8.0.0\/30'/)
  })

  it('a hand-edited config with an error is exit 65, quoting the line', async () => {
    await writeFile(conf(), (await readFile(conf(), 'utf8')) + '\n[Peer]\nPublicKey = oops\n')
    for (const run of [runAddPeer, runRemovePeer]) {
      const r = await cmd(run, ['-i', IF, 'alice'])
      expect(r.code).toBe(65)
      expect(r.err[0]).toMatch(/wgtest0\.conf line \d+: PublicKey 'oops' is not a WireGuard key/)
    }
  })

  it('a device that brought its own key: the config has a placeholder, the peer its key', async () => {
    const r = await cmd(runAddPeer, ['-i', IF, 'phone', '--public-key', testKey('phone')])
    expect(r.code).toBe(0)
    expect(r.out).toContain('PrivateKey = <the private key of this device>')
    expect(wg.peer(IF, testKey('phone'))?.allowedIps).toEqual(['10.8.0.2/32'])
  })

  it('a bad endpoint in the hub\'s state file is named as such, not as an --endpoint nobody gave', async () => {
    const state = join(dir, 'state', `${IF}.hub.json`)
    await writeFile(state, (await readFile(state, 'utf8')).replace('hub.example.com', 'bad endpoint'))
    const r = await cmd(runAddPeer, ['-i', IF, 'carol'])
    expect(r.code).toBe(64)
    expect(r.err[0]).toMatch(new RegExp(`^wgnat-server add-peer: the endpoint in ${state.replace(/[.]/g, '\\.')} 'bad endpoint:51820'|^wgnat-server add-peer: the endpoint in ${state.replace(/[.]/g, '\\.')} 'bad endpoint'`))
  })

  it('refuses the hub\'s own key as a spoke\'s, in one line, exit 64', async () => {
    const { publicKeyOf } = await import('../../src/server/bootstrap/key-pair.js')
    const hubKey = publicKeyOf(/PrivateKey = (\S+)/.exec(await readFile(conf(), 'utf8'))![1]!)
    const r = await cmd(runAddPeer, ['-i', IF, 'hubself', '--public-key', hubKey])
    expect(r.code).toBe(64)
    expect(r.err).toEqual([`wgnat-server add-peer: --public-key '${hubKey}' is the hub's own key, not a spoke's`])
  })

  it('remove-peer by name, key or address; an unknown peer is exit 65', async () => {
    for (const n of ['a', 'b', 'c']) expect((await cmd(runAddPeer, ['-i', IF, n])).code).toBe(0)
    const keyOf = (addr: string): string => wg.devices.get(IF)!.peers.find((p) => p.allowedIps[0] === addr)!.publicKey
    const bKey = keyOf('10.8.0.3/32')
    expect((await cmd(runRemovePeer, ['-i', IF, 'a'])).code).toBe(0)
    expect((await cmd(runRemovePeer, ['-i', IF, bKey])).code).toBe(0)
    expect((await cmd(runRemovePeer, ['-i', IF, '10.8.0.4'])).code).toBe(0)
    expect(wg.devices.get(IF)?.peers).toEqual([])
    expect(peersOf(parseWgQuickConfig(await readFile(conf(), 'utf8')))).toEqual([])
    expect((await readPeerNames(join(dir, 'state'), IF)).size).toBe(0)
    const r = await cmd(runRemovePeer, ['-i', IF, 'a'])
    expect(r.code).toBe(65)
    expect(r.err[0]).toContain("no peer 'a' on wgtest0")
    // A freed address is handed out again.
    expect(/^Address = (\S+)$/m.exec((await cmd(runAddPeer, ['-i', IF, 'd'])).out)?.[1]).toBe('10.8.0.2/24')
  })

  it('killed half-way: the next command notices, repairs and says so', async () => {
    expect((await cmd(runAddPeer, ['-i', IF, 'a'])).code).toBe(0)
    const aKey = wg.devices.get(IF)!.peers[0]!.publicKey
    // An add-peer killed after writing the config, before the live interface and before printing.
    const ghost = testKey('ghost')
    await writeFile(conf(), (await readFile(conf(), 'utf8')) + `\n[Peer]\nPublicKey = ${ghost}\nAllowedIPs = 10.8.0.3/32\n`)
    await writeFile(join(dir, 'state', `${IF}.pending.json`), JSON.stringify({ op: 'add-peer', publicKey: ghost, name: 'ghost', allowedIps: ['10.8.0.3/32'] }))
    // And a peer that is in the config but was lost from the live interface.
    await wg.set(IF, [{ publicKey: aKey, remove: true }])
    const r = await cmd(runAddPeer, ['-i', IF, 'b'])
    expect(r.code).toBe(0)
    expect(r.err.join('\n')).toMatch(/repair: an interrupted add-peer of 'ghost' was undone/)
    expect(r.err.join('\n')).toMatch(/repair: peer \S+ was in the saved config but not on wgtest0: added it/)
    const saved = peersOf(parseWgQuickConfig(await readFile(conf(), 'utf8'))).map((p) => p.publicKey)
    expect(saved).not.toContain(ghost)
    expect(wg.peer(IF, aKey)?.allowedIps).toEqual(['10.8.0.2/32'])
    // b got the address the ghost held.
    expect(/^Address = (\S+)$/m.exec(r.out)?.[1]).toBe('10.8.0.3/24')
    const again = await cmd(runAddPeer, ['-i', IF, 'c'])
    expect(again.err.join('\n')).not.toMatch(/repair/)
  })

  it('peers --json lists names, addresses and keys', async () => {
    expect((await cmd(runAddPeer, ['-i', IF, 'alice'])).code).toBe(0)
    await wg.set(IF, [{ publicKey: testKey('byhand'), allowedIps: ['10.8.0.50/32'] }])
    const r = await cmd(runPeers, ['-i', IF, '--json'])
    expect(r.code).toBe(0)
    const report = JSON.parse(r.out)
    expect(report.up).toBe(true)
    expect(report.peers.map((p: { name: string | null, address: string, saved: boolean }) => [p.name, p.address, p.saved])).toEqual([['alice', '10.8.0.2', true], [null, '10.8.0.50', false]])
  })
})

describe('state lock', () => {
  it('takes over a lock whose owner died, and waits for a live one', async () => {
    const { lockState } = await import('../../src/server/bootstrap/state-lock.js')
    const { spawnSync } = await import('node:child_process')
    const dir = await mkdtemp(join(tmpdir(), 'wgnat-lock-'))
    try {
      const dead = spawnSync(process.execPath, ['-e', '0']).pid
      await writeFile(join(dir, 'wg0.lock'), `${dead}\n`)
      const lock = await lockState(dir, 'wg0', { waitMs: 2000 })
      expect((await readFile(join(dir, 'wg0.lock'), 'utf8')).trim()).toBe(String(process.pid))
      // Held by a live process (this one): a second taker waits, then gives up with exit 73.
      const t0 = Date.now()
      await expect(lockState(dir, 'wg0', { waitMs: 300 })).rejects.toMatchObject({ exitCode: 73 })
      expect(Date.now() - t0).toBeGreaterThanOrEqual(300)
      await lock.release()
      await (await lockState(dir, 'wg0', { waitMs: 300 })).release()
      expect(await readdir(dir)).toEqual([])
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  /** A state dir holding an empty lock (a command killed while making it), `ageMs` old; removed after `fn`. */
  async function withEmptyLock (ageMs: number, fn: (dir: string, path: string) => Promise<void>): Promise<void> {
    const dir = await mkdtemp(join(tmpdir(), 'wgnat-lock-'))
    try {
      const path = join(dir, 'wg0.lock')
      await writeFile(path, '')
      await age(path, ageMs)
      await fn(dir, path)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  }
  const age = async (path: string, ms: number): Promise<void> => { const t = new Date(Date.now() - ms); await utimes(path, t, t) }

  it('commands taking over one stale lock at once hold it one at a time', async () => {
    const { lockState } = await import('../../src/server/bootstrap/state-lock.js')
    await withEmptyLock(60_000, async (dir) => {
      let holding = 0
      let most = 0
      await Promise.all(Array.from({ length: 12 }, async () => {
        const lock = await lockState(dir, 'wg0', { waitMs: 10_000 })
        most = Math.max(most, ++holding)
        await new Promise((resolve) => setTimeout(resolve, 15))
        holding--
        await lock.release()
      }))
      expect(most).toBe(1)
      expect(await readdir(dir)).toEqual([])
    })
  })

  it('an empty lock (a command killed while making it) blocks for a few seconds, not for good', async () => {
    const { lockState } = await import('../../src/server/bootstrap/state-lock.js')
    await withEmptyLock(0, async (dir, path) => {
      await expect(lockState(dir, 'wg0', { waitMs: 200 })).rejects.toThrow(/is held by a command that has not written a pid in it/)
      await age(path, 60_000)
      const lock = await lockState(dir, 'wg0', { waitMs: 200 })
      expect((await readFile(path, 'utf8')).trim()).toBe(String(process.pid))
      await lock.release()
      expect(await readdir(dir)).toEqual([])
    })
  })
})

describe('add-peer --qr', () => {
  it('renders the config as a terminal QR code that holds the whole config', async () => {
    const { qrForTerminal } = await import('../../src/server/bootstrap/qr-terminal.js')
    const QRCode = (await import('qrcode')).default
    const text = '[Interface]\nPrivateKey = x\n'
    const qr = await qrForTerminal(text)
    expect(qr).toMatch(/[▀▄█]/)
    expect(qr).not.toContain('PrivateKey')
    // The code's size grows with the text: it encodes it, not a fixed picture.
    expect((await qrForTerminal(text.repeat(8))).length).toBeGreaterThan(qr.length)
    expect(QRCode.create(text, { errorCorrectionLevel: 'L' }).segments.map((s: { data: Uint8Array }) => Buffer.from(s.data).toString()).join('')).toBe(text)
  })
})
