import { request } from 'node:http'
import type { LeanHttpServer } from '../../src/server/registry/lean-http.js'
import { afterEach, describe, expect, it } from 'vitest'
import { clientFilterRuleset } from '../../src/client/policy/policy-filter-ruleset.js'
import { PolicyFilter } from '../../src/client/policy/policy-filter.js'
import { closeAll, listenOn, registryHandler } from '../../src/server/registry/registry-http.js'
import { RegistryService } from '../../src/server/registry/registry-service.js'
import { evaluatePolicy, type PolicyPeer } from '../../src/server/policy/evaluate-policy.js'
import type { LoadedPolicy } from '../../src/server/policy/load-policy.js'
import { parsePolicy } from '../../src/server/policy/parse-policy.js'
import { PolicyError } from '../../src/server/policy/policy-error.js'
import { PolicyReloader } from '../../src/server/policy/policy-reloader.js'
import { relayRuleset } from '../../src/server/policy/relay-ruleset.js'
import { silentLogger, type Logger } from '../../src/shared/log.js'
import type { NftControl } from '../../src/shared/nft.js'
import { tableResponseSchema } from '../../src/shared/protocol.js'
import { FakeWg, ep, newPeer } from '../helpers/fake-wg.js'
import { testKey } from '../helpers/keys.js'

const ADMIN = testKey('admin'); const D1 = testKey('d1'); const D2 = testKey('d2'); const D3 = testKey('d3')
const NAMES = new Map([[ADMIN, 'admin'], [D1, 'd1'], [D2, 'd2'], [D3, 'd3']])
const ADDR = new Map([[ADMIN, '127.0.0.2'], [D1, '127.0.0.3'], [D2, '127.0.0.4'], [D3, '127.0.0.5']])
const ADMIN_CASE = { groups: { admins: ['admin'], devices: ['d1', 'd2', 'd3'] }, rules: [{ between: ['admins', 'devices'] }] }
const ONE_WAY = { groups: { admins: ['admin'], devices: ['d1', 'd2', 'd3'] }, rules: [{ from: ['admins'], to: ['devices'] }] }

function loaded (policy: object, source = 'p.json'): LoadedPolicy {
  const text = JSON.stringify(policy)
  return { policy: parsePolicy(text, source, NAMES), names: NAMES, fingerprint: text }
}

function hub (): FakeWg {
  const wg = new FakeWg()
  wg.addDevice('wg0', { publicKey: testKey('hub'), listenPort: 51820, peers: [...ADDR].map(([key, ip], i) => newPeer(key, { allowedIps: [`${ip}/32`], endpoint: ep(`198.18.1${i}.2:4000${i}`) })) })
  return wg
}

const keysOf = (peers: Buffer[]): Array<{ publicKey: string, mayInitiate?: boolean }> => JSON.parse(`[${Buffer.concat(peers).toString()}]`)

describe('registry under a policy', () => {
  let service: RegistryService | undefined
  let servers: LeanHttpServer[] = []
  afterEach(async () => { service?.stop(); await closeAll(servers); servers = [] })

  it('serves each caller only the peers it may reach, flagging who may open connections to it', async () => {
    service = new RegistryService({ iface: 'wg0', pollMs: 1000 }, { wg: hub(), logger: silentLogger() })
    service.setPolicy(loaded(ADMIN_CASE))
    await service.start()
    const t = service.table
    const forD1 = keysOf(t.since(0, D1, service.view(D1)).peers)
    expect(forD1).toEqual([expect.objectContaining({ publicKey: ADMIN, mayInitiate: true })])
    const forAdmin = keysOf(t.since(0, ADMIN, service.view(ADMIN)).peers)
    expect(forAdmin.map((p) => p.publicKey).sort()).toEqual([D1, D2, D3].sort())
    expect(forAdmin.every((p) => p.mayInitiate === true)).toBe(true)
  })

  it('a policy change reaches long-polls as a delta: newly forbidden peers removed, the one-way flag set', async () => {
    service = new RegistryService({ iface: 'wg0', pollMs: 1000 }, { wg: hub(), logger: silentLogger() })
    service.setPolicy(loaded({ rules: [{ between: ['*'] }] }))
    await service.start()
    const v = service.table.version
    expect(keysOf(service.table.since(0, D1, service.view(D1)).peers)).toHaveLength(3)
    const woken = service.changedSince(v, 5000)
    service.setPolicy(loaded(ONE_WAY))
    await woken
    const d1 = service.table.since(v, D1, service.view(D1))
    expect(d1.full).toBe(false)
    expect(keysOf(d1.peers)).toEqual([expect.objectContaining({ publicKey: ADMIN, mayInitiate: true })])
    expect(d1.removed.sort()).toEqual([D2, D3].sort())
    const admin = service.table.since(v, ADMIN, service.view(ADMIN))
    expect(keysOf(admin.peers).map((p) => p.mayInitiate)).toEqual([false, false, false])
  })

  it('a new policy reaches long-polls only once onPolicy\'s work (the relay\'s filter) is done', async () => {
    let filterApplied = false
    let release = (): void => {}
    const gate = new Promise<void>((resolve) => { release = resolve })
    let policies = 0
    service = new RegistryService({ iface: 'wg0', pollMs: 1000 }, {
      wg: hub(),
      logger: silentLogger(),
      // The first policy applies at once; the second waits on the gate, as an `nft -f` takes its time.
      onPolicy: async () => { if (++policies > 1) { await gate; filterApplied = true } }
    })
    await service.setPolicy(loaded({ rules: [{ between: ['*'] }] }))
    await service.start()
    const v = service.table.version
    let wokenWhileFiltering: boolean | undefined
    const woken = service.changedSince(v, 5000).then(() => { wokenWhileFiltering = !filterApplied })
    const set = service.setPolicy(loaded(ONE_WAY))
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(wokenWhileFiltering).toBeUndefined()
    release()
    await set
    await woken
    expect(wokenWhileFiltering).toBe(false)
    expect(service.table.since(v, D1, service.view(D1)).removed.sort()).toEqual([D2, D3].sort())
  })

  it('a peer whose own address moves into a rule gets the peers it may now reach, though they did not change', async () => {
    const wg = hub()
    service = new RegistryService({ iface: 'wg0', pollMs: 20 }, { wg, logger: silentLogger() })
    service.setPolicy(loaded({ rules: [{ between: ['admin', '127.0.0.9'] }] }))
    await service.start()
    const v = service.table.version
    expect(keysOf(service.table.since(0, D2, service.view(D2)).peers)).toEqual([])
    wg.devices.get('wg0')!.peers.find((p) => p.publicKey === D2)!.allowedIps = ['127.0.0.9/32']
    await service.changedSince(v, 2000)
    const delta = service.table.since(v, D2, service.view(D2))
    expect(keysOf(delta.peers).map((p) => p.publicKey)).toEqual([ADMIN])
  })

  it('over HTTP: says a policy is in force, and the wg-nat compatibility answer is filtered too', async () => {
    const port = 20000 + Math.floor(Math.random() * 20000)
    service = new RegistryService({ iface: 'wg0', pollMs: 1000 }, { wg: hub(), logger: silentLogger() })
    service.setPolicy(loaded(ADMIN_CASE))
    await service.start()
    servers = await listenOn(['127.0.0.1'], port, registryHandler(service, silentLogger()))
    const get = async (from: string, method: string, path: string): Promise<string> => await new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, method, path, localAddress: from, agent: false }, (res) => { let b = ''; res.on('data', (c) => { b += String(c) }); res.on('end', () => resolve(b)) })
      req.on('error', reject); req.end()
    })
    const table = tableResponseSchema.parse(JSON.parse(await get('127.0.0.3', 'GET', '/v1/table')))
    expect(table.policy).toBe(true)
    expect(table.peers.map((p) => p.publicKey)).toEqual([ADMIN])
    const compat = JSON.parse(await get('127.0.0.3', 'POST', `/keepalive?pubkey=${encodeURIComponent(D1)}`)) as Array<{ PublicKey: number[] }>
    expect(compat.map((p) => Buffer.from(p.PublicKey).toString('base64'))).toEqual([ADMIN])
  })
})

describe('relayRuleset: the hub\'s forward filter', () => {
  const peersOf = (n: number): PolicyPeer[] => Array.from({ length: n }, (_, i) => ({ publicKey: testKey(`p${i}`), allowedIps: [`10.${(i >> 8) & 255}.${i & 255}.1/32`] }))

  it('grows with rules, not with peers: admin case at 4 and at 1,000 peers has the same rules', () => {
    const sizes = [4, 1000].map((n) => {
      const peers = peersOf(n)
      const policy = parsePolicy(JSON.stringify({ groups: { admins: [peers[0]!.publicKey], devices: peers.slice(1).map((p) => p.publicKey) }, rules: [{ between: ['admins', 'devices'] }] }), 'p', new Map())
      return relayRuleset('wg0', evaluatePolicy(policy, peers, new Map()), peers)
    })
    expect(sizes.map((s) => s.rules)).toEqual([3, 3])
    expect(sizes.map((s) => s.elements)).toEqual([4, 1000])
    expect(sizes[1]!.script).toContain('counter name denied drop')
  })

  it('a one-way rule lets replies back only for established connections; both ways needs no reply rule', () => {
    const peers = peersOf(3)
    const ev = (rules: object[]): string => relayRuleset('wg0', evaluatePolicy(parsePolicy(JSON.stringify({ rules }), 'p', new Map()), peers, new Map()), peers).script
    const oneWay = ev([{ from: [peers[0]!.publicKey], to: [peers[1]!.publicKey] }])
    expect(oneWay).toMatch(/ip saddr @s0_v4 ip daddr @s1_v4 accept/)
    expect(oneWay).toMatch(/ct state established,related ip saddr @s1_v4 ip daddr @s0_v4 accept/)
    const between = ev([{ between: [peers[0]!.publicKey, peers[1]!.publicKey] }])
    expect(between).not.toContain('ct state')
    expect(between).toMatch(/ip saddr @s1_v4 ip daddr @s0_v4 accept/)
  })

  it('replaces the table in one transaction, keeps the denied counter, merges nested prefixes', () => {
    const peers = [{ publicKey: testKey('gw'), allowedIps: ['10.9.0.0/24', '10.9.0.7/32', 'fd00::/64'] }, { publicKey: testKey('x'), allowedIps: ['10.8.0.2/32'] }]
    const policy = parsePolicy(JSON.stringify({ rules: [{ between: ['*'] }] }), 'p', new Map())
    const r = relayRuleset('wg-lab.0', evaluatePolicy(policy, peers, new Map()), peers, { packets: 7, bytes: 588 })
    expect(r.script.split('\n').slice(0, 3)).toEqual(['table inet wgnat_policy_wg_lab_0 {}', 'delete table inet wgnat_policy_wg_lab_0', 'table inet wgnat_policy_wg_lab_0 {'])
    expect(r.script).toContain('counter denied { packets 7 bytes 588 }')
    expect(r.script).toContain('elements = { 10.9.0.0/24, 10.8.0.2 }')
    expect(r.script).toContain('elements = { fd00::/64 }')
    expect(r.script).toContain('iifname "wg-lab.0" oifname "wg-lab.0" jump relay')
  })
})

describe('clientFilterRuleset: the spoke\'s one-way filter', () => {
  it('drops new connections only from peers that may not open them, on this interface', () => {
    const script = clientFilterRuleset('wg0', [
      { allowedIps: ['100.64.0.3/32'], mayInitiate: false },
      { allowedIps: ['100.64.0.4/32'], mayInitiate: true },
      { allowedIps: ['100.64.1.0/24', 'fd00::5/128'], mayInitiate: false }
    ])
    expect(script).toContain('elements = { 100.64.0.3, 100.64.1.0/24 }')
    expect(script).not.toContain('100.64.0.4')
    expect(script).toContain('iifname "wg0" ct state new ip saddr @no_initiate_v4 counter drop')
    expect(script).toContain('iifname "wg0" ct state new ip6 saddr @no_initiate_v6 counter drop')
    expect(script).toMatch(/^table inet wgnat_client_wg0 \{\}\ndelete table inet wgnat_client_wg0\n/)
  })

  it('is nothing at all when every peer may open connections (no policy, or two-way rules only)', () => {
    expect(clientFilterRuleset('wg0', [{ allowedIps: ['100.64.0.3/32'], mayInitiate: true }])).toBeUndefined()
    expect(clientFilterRuleset('wg0', [])).toBeUndefined()
  })
})

describe('PolicyFilter: keeps the spoke\'s table in step', () => {
  it('applies on the first one-way peer, replaces on change, removes when none is left and on stop', async () => {
    const scripts: string[] = []
    const stale: string[] = []
    const nft = { apply: async (s: string) => { scripts.push(s) }, listJson: async () => undefined, removeStale: async (f: string, t: string) => { stale.push(`${f} ${t}`); return true } }
    const f = new PolicyFilter({ iface: 'wg0', staleCheckDelayMs: 0 }, { nft, logger: silentLogger() })
    const settle = async (): Promise<void> => { for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve)) }
    f.update([{ allowedIps: ['100.64.0.3/32'], mayInitiate: true }])
    await settle()
    expect(scripts).toEqual([])
    expect(stale).toEqual(['inet wgnat_client_wg0'])
    f.update([{ allowedIps: ['100.64.0.3/32'], mayInitiate: false }])
    await settle()
    expect(scripts).toHaveLength(1)
    expect(scripts[0]).toContain('100.64.0.3')
    f.update([{ allowedIps: ['100.64.0.3/32'], mayInitiate: false }])
    await settle()
    expect(scripts).toHaveLength(1)
    f.update([{ allowedIps: ['100.64.0.3/32'], mayInitiate: false }, { allowedIps: ['100.64.0.4/32'], mayInitiate: false }])
    await settle()
    expect(scripts).toHaveLength(2)
    f.update([])
    await settle()
    expect(scripts.at(-1)).toBe('table inet wgnat_client_wg0 {}\ndelete table inet wgnat_client_wg0\n')
    f.update([{ allowedIps: ['100.64.0.3/32'], mayInitiate: false }])
    await settle()
    await f.stop()
    expect(scripts).toHaveLength(5)
    expect(scripts.at(-1)).toContain('delete table inet wgnat_client_wg0')
  })
})

describe('PolicyFilter: the look for a stale table waits until the first attempts are out', () => {
  const settle = async (): Promise<void> => { for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve)) }
  const fake = (): { nft: NftControl, scripts: string[], stale: string[] } => {
    const scripts: string[] = []
    const stale: string[] = []
    return { scripts, stale, nft: { apply: async (s: string) => { scripts.push(s) }, listJson: async () => undefined, listTable: async () => undefined, removeStale: async (f: string, t: string) => { stale.push(`${f} ${t}`); return true } } }
  }

  it('runs no nft at the first vetting without one-way peers, and removes a stale table after the delay', async () => {
    const { nft, scripts, stale } = fake()
    const f = new PolicyFilter({ iface: 'wg0', staleCheckDelayMs: 40 }, { nft, logger: silentLogger() })
    f.update([{ allowedIps: ['100.64.0.3/32'], mayInitiate: true }])
    await settle()
    expect(stale).toEqual([])
    await new Promise((resolve) => setTimeout(resolve, 80))
    await settle()
    expect(stale).toEqual(['inet wgnat_client_wg0'])
    expect(scripts).toEqual([])
    await f.stop()
  })

  it('does not delete the table it has just put in place when the delay ends', async () => {
    const { nft, scripts, stale } = fake()
    const f = new PolicyFilter({ iface: 'wg0', staleCheckDelayMs: 40 }, { nft, logger: silentLogger() })
    f.update([{ allowedIps: ['100.64.0.3/32'], mayInitiate: false }])
    await settle()
    expect(scripts).toHaveLength(1)
    await new Promise((resolve) => setTimeout(resolve, 80))
    await settle()
    expect(stale).toEqual([])
    expect(scripts).toHaveLength(1)
    await f.stop()
  })

  it('looks for none after stop()', async () => {
    const { nft, stale } = fake()
    const f = new PolicyFilter({ iface: 'wg0', staleCheckDelayMs: 20 }, { nft, logger: silentLogger() })
    f.update([])
    await f.stop()
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(stale).toEqual([])
  })
})

describe('PolicyReloader', () => {
  function recorder (): { logger: Logger, lines: string[] } {
    const lines: string[] = []
    const logger = silentLogger()
    logger.error = ((msg: string) => { lines.push(`error ${msg}`) }) as Logger['error']
    logger.info = ((a: unknown, b?: string) => { lines.push(`info ${typeof a === 'string' ? a : b ?? ''}`) }) as Logger['info']
    return { logger, lines }
  }

  it('applies a changed file, skips an unchanged one, refuses a broken one with one line and keeps the policy', async () => {
    const { logger, lines } = recorder()
    const applied: LoadedPolicy[] = []
    let next: () => LoadedPolicy = () => loaded(ADMIN_CASE)
    const r = new PolicyReloader({ file: 'p.json', stateDir: '/nonexistent', iface: 'wg0' }, loaded(ADMIN_CASE), { logger, apply: (p) => applied.push(p), load: async () => next() })
    r.reload(); await r.settled()
    expect(applied).toHaveLength(0)
    next = () => loaded(ONE_WAY)
    r.reload(); await r.settled()
    expect(applied.map((p) => p.policy.rules[0]?.kind)).toEqual(['oneway'])
    next = () => { throw new PolicyError('policy p.json: rules[0].to[0]: unknown group or member "devcies"') }
    r.reload(); await r.settled()
    expect(applied).toHaveLength(1)
    expect(lines.at(-1)).toBe('error policy reload refused, the policy in force stays: policy p.json: rules[0].to[0]: unknown group or member "devcies"')
    await r.stop()
  })
})
