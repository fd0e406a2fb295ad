import { mkdtempSync, rmSync, writeFileSync, renameSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createLab, labSupport, type Lab } from '../../scripts/lab/lab.js'
import { clientStatus, type MeshProcesses, pathBetween, registerWithHub, SERVER_BIN, startMesh, waitFor } from '../../scripts/lab/mesh.js'
import { writePeerNames } from '../../src/server/inventory/peer-names.js'

const support = await labSupport()
if (!support.ok) console.warn(`SKIPPING policy e2e tests: ${support.reason}`)

const DEVICES = ['d1', 'd2', 'd3'] as const
const ADMIN_CASE = { groups: { admins: ['admin'], devices: [...DEVICES] }, rules: [{ between: ['admins', 'devices'] }] }
const ONE_WAY = { groups: { admins: ['admin'], devices: [...DEVICES] }, rules: [{ from: ['admins'], to: ['devices'] }] }

/** Write the policy file as an editor would: a new file renamed over the old one. */
function writePolicy (file: string, content: object | string): void {
  writeFileSync(`${file}.tmp`, typeof content === 'string' ? content : JSON.stringify(content, null, 2))
  renameSync(`${file}.tmp`, file)
}

describe.skipIf(!support.ok)('access policy: one admin, three devices, hub relaying (wgnat-server --relay --policy)', () => {
  let lab: Lab
  let mesh: MeshProcesses
  let dir: string
  let file: string

  /** Does a fresh ping from `from` to `to` get any answer? */
  const reaches = async (from: string, to: string, count = 3): Promise<boolean> =>
    (await lab.ping(from, lab.clients[to]!.tunnelIp, { count, intervalS: 0.3, timeoutS: 1 })).received > 0
  const hubCheck = async (): Promise<{ allowed: Array<[string, string]>, peers: Array<{ id: string, label: string }>, denied?: { packets: number } }> => {
    const out = await lab.exec('hub', [process.execPath, SERVER_BIN, 'policy', 'check', file, '-i', lab.hub.wgIf, '--state-dir', dir, '--json'])
    return JSON.parse(out.stdout)
  }
  const serverLog = (): string => mesh.logs().split('--- wgnat-client')[0] ?? ''

  beforeAll(async () => {
    lab = await createLab({
      sites: [
        { name: 'admin', kind: 'easy', clients: ['admin'] },
        { name: 'd1', kind: 'easy', clients: ['d1'] },
        { name: 'd2', kind: 'easy', clients: ['d2'] },
        // Behind a symmetric NAT: the admin reaches it only through the hub's relay.
        { name: 'd3', kind: 'hard', clients: ['d3'] }
      ]
    })
    dir = mkdtempSync(join(tmpdir(), `wgnat-policy-${lab.id}-`))
    file = join(dir, 'policy.json')
    await writePeerNames(dir, lab.hub.wgIf, new Map(['admin', ...DEVICES].map((n) => [lab.clients[n]!.publicKey, n])))
    writePolicy(file, ADMIN_CASE)
    await registerWithHub(lab)
    mesh = startMesh(lab, { serverArgs: ['--relay', '--policy', file, '--state-dir', dir], clientArgs: ['--direct-timeout', '4s'] })
    await waitFor(async () => (await pathBetween(lab, 'admin', 'd1')).path === 'direct' && (await pathBetween(lab, 'admin', 'd2')).path === 'direct', 30_000)
  })

  afterAll(async () => {
    await mesh?.cleanup()
    await lab?.destroy()
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
  })

  it('the admin reaches every device and every device the admin (direct, and d3 through the relay)', async () => {
    for (const d of DEVICES) {
      expect(await reaches('admin', d), `admin -> ${d}\n${mesh.logs()}`).toBe(true)
      expect(await reaches(d, 'admin'), `${d} -> admin\n${mesh.logs()}`).toBe(true)
    }
    expect((await pathBetween(lab, 'admin', 'd1')).path).toBe('direct')
    expect((await pathBetween(lab, 'admin', 'd3', 2)).path).toBe('via hub')
  })

  it('no device reaches another: none is a peer of another, and the relay drops and counts what they send', async () => {
    const before = (await hubCheck()).denied?.packets ?? 0
    for (const [a, b] of [['d1', 'd2'], ['d2', 'd1'], ['d1', 'd3'], ['d3', 'd2']] as const) {
      expect(await reaches(a, b, 2), `${a} -> ${b} must fail`).toBe(false)
    }
    for (const d of DEVICES) {
      const dump = (await lab.exec(d, ['wg', 'show', lab.clients[d]!.wgIf, 'peers'])).stdout
      for (const other of DEVICES.filter((o) => o !== d)) expect(dump, `${d} has ${other} as a peer`).not.toContain(lab.clients[other]!.publicKey)
    }
    const check = await hubCheck()
    expect(check.denied?.packets ?? 0).toBeGreaterThanOrEqual(before + 8)
    const label = new Map(check.peers.map((p) => [p.id, p.label]))
    expect(check.allowed.map(([f, t]) => `${label.get(f) ?? f}>${label.get(t) ?? t}`).sort()).toEqual(DEVICES.flatMap((d) => [`admin>${d}`, `${d}>admin`]).sort())
  })

  it('nor after a device\'s operator adds another device as a peer by hand: the other side has no such peer', async () => {
    const d1 = lab.clients.d1!; const d2 = lab.clients.d2!
    const endpoints = (await lab.exec('hub', ['wg', 'show', lab.hub.wgIf, 'endpoints'])).stdout
    const d2Endpoint = endpoints.split('\n').map((l) => l.split('\t')).find((f) => f[0] === d2.publicKey)?.[1]
    expect(d2Endpoint).toMatch(/^\d+\.\d+\.\d+\.\d+:\d+$/)
    await lab.exec('d1', ['wg', 'set', d1.wgIf, 'peer', d2.publicKey, 'endpoint', d2Endpoint!, 'allowed-ips', `${d2.tunnelIp}/32`, 'persistent-keepalive', '1'])
    try {
      expect(await reaches('d1', 'd2', 4)).toBe(false)
      const d2Peers = (await lab.exec('d2', ['wg', 'show', d2.wgIf, 'peers'])).stdout
      expect(d2Peers).not.toContain(d1.publicKey)
    } finally {
      await lab.exec('d1', ['wg', 'set', d1.wgIf, 'peer', d2.publicKey, 'remove'])
    }
    // The admin is untouched by all this.
    expect(await reaches('admin', 'd2')).toBe(true)
  })

  it('the clients show who may open connections to them', async () => {
    const d1 = await clientStatus(lab, 'd1')
    expect(d1.peers.map((p) => [p.publicKey, p.mayInitiate])).toEqual([[lab.clients.admin!.publicKey, true]])
    const admin = await clientStatus(lab, 'admin')
    expect(admin.peers.map((p) => p.publicKey).sort()).toEqual(DEVICES.map((d) => lab.clients[d]!.publicKey).sort())
    expect(admin.peers.every((p) => p.mayInitiate)).toBe(true)
  })

  it('changed to one way (file rewritten): within seconds the devices can no longer open connections to the admin, the admin still can to them', async () => {
    const t0 = Date.now()
    writePolicy(file, ONE_WAY)
    // One ping at a time (each waits up to 1 s for its answer); the time is when the first unanswered one was sent.
    let sentAt = 0
    const ms = await waitFor(async () => { sentAt = Date.now(); return !(await reaches('d1', 'admin', 1)) }, 10_000)
    console.log(`[e2e] one-way policy in force on d1 -> admin: first unanswered ping sent ${ms === undefined ? 'never' : sentAt - t0} ms after the file was written`)
    expect(ms, mesh.logs()).toBeDefined()
    console.log(`[e2e] file written at ${new Date(t0).toISOString().slice(11, 23)}; then:\n${mesh.logs().split('\n').filter((l) => /reloaded|relay policy filter|policy filter installed/.test(l)).join('\n')}`)
    expect(sentAt - t0).toBeLessThan(8000)
    for (const d of DEVICES) {
      expect(await reaches('admin', d), `admin -> ${d}\n${mesh.logs()}`).toBe(true)
      expect(await reaches(d, 'admin', 2), `${d} -> admin must fail`).toBe(false)
    }
    const admin = await clientStatus(lab, 'admin')
    expect(admin.peers.map((p) => p.mayInitiate)).toEqual([false, false, false])
    const table = await lab.exec('admin', ['nft', 'list', 'table', 'inet', `wgnat_client_${lab.clients.admin!.wgIf.replace(/[^A-Za-z0-9_]/g, '_')}`])
    expect(table.stdout).toContain(lab.clients.d1!.tunnelIp)
    expect(table.stdout).not.toContain(lab.clients.admin!.tunnelIp)
    // The devices' own spokes need no filter: the admin may open connections to them.
    expect((await lab.exec('d1', ['nft', 'list', 'tables'])).stdout).not.toContain('wgnat_client')
    expect(serverLog()).toContain('reloaded: 1 rules')
  })

  it('a broken file is refused with one line, on change and on SIGHUP; the one-way policy stays in force', async () => {
    const broken = { groups: { admins: ['admin'], devices: [...DEVICES] }, rules: [{ between: ['admins', 'devcies'] }] }
    writePolicy(file, broken)
    const refused = await waitFor(async () => serverLog().includes('unknown group or member \\"devcies\\"') || serverLog().includes('unknown group or member "devcies"'), 5000)
    expect(refused, serverLog()).toBeDefined()
    mesh.server!.kill('SIGHUP')
    await waitFor(async () => serverLog().split('policy reload refused').length >= 3, 5000)
    const lines = serverLog().split('\n').filter((l) => l.includes('policy reload refused'))
    expect(lines.length, serverLog()).toBeGreaterThanOrEqual(2)
    expect(lines[0]).toContain(`policy ${file}: rules[0].between[1]: unknown group or member "devcies"`)
    expect(mesh.server!.exitCode).toBeNull()
    // Still one way: admin -> device works, device -> admin does not, devices still apart.
    expect(await reaches('admin', 'd2')).toBe(true)
    expect(await reaches('d2', 'admin', 2)).toBe(false)
    expect(await reaches('d1', 'd2', 2)).toBe(false)
  })

  it('a newly forbidden pair is removed from both spokes\' interfaces and cut on the relay', async () => {
    writePolicy(file, { groups: { admins: ['admin'], kept: ['d2', 'd3'] }, rules: [{ between: ['admins', 'kept'] }] })
    const has = async (host: string, other: string): Promise<boolean> =>
      (await lab.exec(host, ['wg', 'show', lab.clients[host]!.wgIf, 'peers'])).stdout.includes(lab.clients[other]!.publicKey)
    const ms = await waitFor(async () => !(await has('admin', 'd1')) && !(await has('d1', 'admin')), 10_000)
    console.log(`[e2e] admin and d1 removed from each other's interfaces after ${ms ?? 'never'} ms`)
    expect(ms, mesh.logs()).toBeDefined()
    expect(await reaches('admin', 'd1', 2)).toBe(false)
    expect(await reaches('d1', 'admin', 2)).toBe(false)
    // The pairs still allowed are untouched, both ways again (the one-way filter is gone).
    expect(await reaches('admin', 'd2')).toBe(true)
    expect(await reaches('d2', 'admin')).toBe(true)
    expect(await has('admin', 'd2')).toBe(true)
  })

  it('a bad file at start-up: exit 64 with one line naming the file, the place and the value', async () => {
    writePolicy(file, { groups: { admins: ['admin'], devices: [...DEVICES] }, rules: [{ between: ['admins', 'devcies'] }] })
    const r = await lab.exec('hub', [process.execPath, SERVER_BIN, '-i', lab.hub.wgIf, '--policy', file, '--state-dir', dir, '--no-stun', '--port', '1'], { reject: false })
    expect(r.exitCode).toBe(64)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
    expect(r.stderr).toContain(`policy ${file}: rules[0].between[1]: unknown group or member "devcies"`)
  })
})
