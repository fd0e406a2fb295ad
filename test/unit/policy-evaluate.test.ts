import { describe, expect, it } from 'vitest'
import { evaluatePolicy, type PolicyPeer } from '../../src/server/policy/evaluate-policy.js'
import { parsePolicy } from '../../src/server/policy/parse-policy.js'
import { testKey } from '../helpers/keys.js'

/** Five peers: a laptop (admin), three devices, a database; names as the hub's name store holds them. */
const KEYS = { laptop: testKey('laptop'), nas: testKey('nas'), cam: testKey('cam'), tv: testKey('tv'), db: testKey('db') }
type Name = keyof typeof KEYS
const ADDR: Record<Name, string> = { laptop: '10.8.0.2', nas: '10.8.0.3', cam: '10.8.0.4', tv: '10.8.0.5', db: '10.8.0.6' }
const PEERS: PolicyPeer[] = (Object.keys(KEYS) as Name[]).map((n) => ({ publicKey: KEYS[n], allowedIps: [`${ADDR[n]}/32`] }))
const NAMES = new Map((Object.keys(KEYS) as Name[]).filter((n) => n !== 'cam').map((n) => [KEYS[n], n]))
const ALL = Object.keys(KEYS) as Name[]

/** Every ordered pair (from, to) the policy allows, as "from>to". */
function allowedPairs (policy: object, peers = PEERS): string[] {
  const ev = evaluatePolicy(parsePolicy(JSON.stringify(policy), 'p.json', NAMES), peers, NAMES)
  const name = (key: string): string => ALL.find((n) => KEYS[n] === key) ?? key
  const out: string[] = []
  for (const a of peers) for (const b of peers) if (a !== b && ev.mayInitiate(a.publicKey, b.publicKey)) out.push(`${name(a.publicKey)}>${name(b.publicKey)}`)
  return out.sort()
}
const both = (a: Name, b: Name): string[] => [`${a}>${b}`, `${b}>${a}`]
const pairsAmong = (xs: Name[]): string[] => xs.flatMap((a) => xs.filter((b) => b !== a).map((b) => `${a}>${b}`))

describe('evaluatePolicy: who may open connections to whom', () => {
  const devices = ['nas', ADDR.cam, KEYS.tv]
  it.each([
    { what: 'no rules: nobody', policy: { rules: [] }, pairs: [] },
    { what: 'between two groups (admin case): both ways, devices apart', policy: { groups: { admins: ['laptop'], devices }, rules: [{ between: ['admins', 'devices'] }] }, pairs: [...both('laptop', 'nas'), ...both('laptop', 'cam'), ...both('laptop', 'tv')] },
    { what: 'between one group: among themselves', policy: { groups: { devices }, rules: [{ between: ['devices'] }] }, pairs: pairsAmong(['nas', 'cam', 'tv']) },
    { what: 'one way: from admins to devices only', policy: { groups: { admins: ['laptop'], devices }, rules: [{ from: ['admins'], to: ['devices'] }] }, pairs: ['laptop>cam', 'laptop>nas', 'laptop>tv'] },
    { what: '"*" among everyone', policy: { rules: [{ between: ['*'] }] }, pairs: pairsAmong(ALL) },
    { what: '"*" as a target of one way', policy: { rules: [{ from: ['db'], to: ['*'] }] }, pairs: ['db>cam', 'db>laptop', 'db>nas', 'db>tv'] },
    { what: 'members named directly in rules: name, address, key', policy: { rules: [{ between: ['laptop', ADDR.db] }, { from: [KEYS.tv], to: ['nas'] }] }, pairs: [...both('laptop', 'db'), 'tv>nas'] },
    { what: 'a side listing several groups and members is their union', policy: { groups: { a: ['laptop'], b: ['db'] }, rules: [{ from: ['a', 'b', 'tv'], to: ['nas'] }] }, pairs: ['db>nas', 'laptop>nas', 'tv>nas'] },
    { what: 'overlapping rules: a one way rule and a between on the same pair add up to both ways', policy: { groups: { admins: ['laptop'], servers: ['db'] }, rules: [{ from: ['admins'], to: ['servers'] }, { between: ['servers', 'admins'] }] }, pairs: both('laptop', 'db') },
    { what: 'overlapping groups: a peer in two groups gets both groups\' rights', policy: { groups: { admins: ['laptop', 'nas'], storage: ['nas'] }, rules: [{ from: ['admins'], to: ['db'] }, { from: ['storage'], to: ['tv'] }] }, pairs: ['laptop>db', 'nas>db', 'nas>tv'] },
    { what: 'a member without a peer (yet) names nobody', policy: { rules: [{ from: ['laptop'], to: ['10.8.0.99', testKey('gone')] }] }, pairs: [] }
  ])('$what', ({ policy, pairs }) => {
    expect(allowedPairs(policy)).toEqual([...pairs].sort())
  })

  it('an address member is the peer whose allowed IPs hold it (longest prefix, as WireGuard routes)', () => {
    const peers = [...PEERS, { publicKey: testKey('site'), allowedIps: ['10.9.0.0/24'] }, { publicKey: testKey('host'), allowedIps: ['10.9.0.7/32'] }]
    const ev = evaluatePolicy(parsePolicy(JSON.stringify({ rules: [{ from: ['10.9.0.8'], to: ['10.9.0.7'] }] }), 'p', NAMES), peers, NAMES)
    expect(ev.mayInitiate(testKey('site'), testKey('host'))).toBe(true)
    expect(ev.mayInitiate(testKey('host'), testKey('site'))).toBe(false)
  })

  it('a name follows the name store: the same file names another peer when the name moves', () => {
    const policy = parsePolicy(JSON.stringify({ rules: [{ between: ['laptop', 'db'] }] }), 'p', NAMES)
    const moved = new Map([...NAMES].filter(([, n]) => n !== 'laptop')).set(KEYS.tv, 'laptop')
    const ev = evaluatePolicy(policy, PEERS, moved)
    expect(ev.mayInitiate(KEYS.tv, KEYS.db)).toBe(true)
    expect(ev.mayInitiate(KEYS.laptop, KEYS.db)).toBe(false)
  })

  it('a view holds every peer reachable in either direction, and flags who may open connections to the caller', () => {
    const ev = evaluatePolicy(parsePolicy(JSON.stringify({ groups: { admins: ['laptop'], devices }, rules: [{ from: ['admins'], to: ['devices'] }, { between: ['laptop', 'db'] }] }), 'p', NAMES), PEERS, NAMES)
    const nas = ev.view(KEYS.nas)
    expect([...nas.visible]).toEqual([KEYS.laptop])
    expect([...nas.inbound]).toEqual([KEYS.laptop])
    const laptop = ev.view(KEYS.laptop)
    expect([...laptop.visible].sort()).toEqual([KEYS.nas, KEYS.cam, KEYS.tv, KEYS.db].sort())
    expect([...laptop.inbound]).toEqual([KEYS.db])
    expect(ev.view(testKey('stranger'))).toEqual({ visible: new Set(), inbound: new Set() })
  })

  it('shares one set between rule sides naming the same peers; its signature changes with membership only', () => {
    const policy = parsePolicy(JSON.stringify({ groups: { a: ['laptop'], b: ['laptop'] }, rules: [{ from: ['a'], to: ['db'] }, { from: ['b'], to: ['db'] }] }), 'p', NAMES)
    const ev = evaluatePolicy(policy, PEERS, NAMES)
    expect(ev.sets.map((s) => s.labels)).toEqual([['a', 'b'], ['db']])
    expect(ev.edges).toEqual([{ from: 0, to: 1, rules: [0, 1] }])
    const moved = PEERS.map((p) => p.publicKey === KEYS.tv ? { ...p, allowedIps: ['10.8.0.50/32'] } : p)
    expect(evaluatePolicy(policy, moved, NAMES).signature).toBe(ev.signature)
    expect(evaluatePolicy(policy, PEERS.filter((p) => p.publicKey !== KEYS.laptop), NAMES).signature).not.toBe(ev.signature)
  })
})

describe('parsePolicy: refused files, one line naming the file, the place and the value', () => {
  const src = '/etc/wgnat/policy.json'
  it.each([
    { what: 'unknown group or member in a rule', text: { groups: { servers: ['db'] }, rules: [{ between: ['laptop'] }, { from: ['laptop'], to: ['srvers'] }] }, message: 'policy /etc/wgnat/policy.json: rules[1].to[0]: unknown group or member "srvers"' },
    { what: 'unknown second side of between', text: { groups: { admins: ['laptop'] }, rules: [{ between: ['admins', 'devcies'] }] }, message: 'policy /etc/wgnat/policy.json: rules[0].between[1]: unknown group or member "devcies"' },
    { what: 'unknown member in a group', text: { groups: { devices: ['nas', 'nsa'] }, rules: [] }, message: 'policy /etc/wgnat/policy.json: groups.devices[1]: unknown member "nsa" (not a known peer name, a public key or a tunnel address)' },
    { what: 'a peer without a name is not a name', text: { rules: [{ between: ['cam'] }] }, message: 'rules[0].between[0]: unknown group or member "cam"' },
    { what: 'a rule naming nothing: empty side', text: { rules: [{ between: [] }] }, message: 'rules[0].between: names nothing: give at least one group or member (found [])' },
    { what: 'a rule naming nothing: no fields', text: { rules: [{}] }, message: 'rules[0]: names nothing' },
    { what: 'a rule naming nothing: an empty group', text: { groups: { servers: [] }, rules: [{ from: ['laptop'], to: ['servers'] }] }, message: 'rules[0].to[0]: group "servers" has no members: the rule names nothing' },
    { what: 'one way without its other half', text: { rules: [{ from: ['laptop'] }] }, message: 'rules[0]: "from" without "to"' },
    { what: 'between mixed with from', text: { rules: [{ between: ['laptop'], from: ['db'], to: ['nas'] }] }, message: 'rules[0]: "between" cannot be combined' },
    { what: 'between of three', text: { rules: [{ between: ['laptop', 'db', 'nas'] }] }, message: 'rules[0].between: takes one or two groups or members' },
    { what: 'a misspelt field', text: { rules: [{ form: ['laptop'], to: ['db'] }] }, message: 'rules[0]: unknown field "form"' },
    { what: 'a bad group name', text: { groups: { '1st': ['laptop'] }, rules: [] }, message: 'groups: "1st" is not a group name' },
    { what: 'a member of the wrong type', text: { rules: [{ between: ['laptop', 42] }] }, message: 'rules[0].between[1]: must be a string' },
    { what: 'no rules', text: { groups: {} }, message: 'policy /etc/wgnat/policy.json: rules: missing' }
  ])('$what', ({ text, message }) => {
    expect(() => parsePolicy(JSON.stringify(text), src, NAMES)).toThrow(message)
    try { parsePolicy(JSON.stringify(text), src, NAMES) } catch (err) {
      expect((err as Error).message).not.toContain('\n')
      expect((err as { exitCode: number }).exitCode).toBe(64)
    }
  })

  it('refuses a key given twice in one object, which JSON.parse would silently resolve to the last', () => {
    expect(() => parsePolicy('{"rules":[{"between":["laptop"]}],"rules":[]}', src, NAMES)).toThrow('policy /etc/wgnat/policy.json: "rules" appears twice (again at line 1, column 35); JSON would keep only the last')
    expect(() => parsePolicy('{"groups":{"admins":["laptop"],\n "admins":["nas"]},"rules":[]}', src, NAMES)).toThrow(/^policy \/etc\/wgnat\/policy.json: groups: "admins" appears twice \(again at line 2, column 2\)/)
    // The same key in different objects is fine.
    expect(parsePolicy('{"groups":{"a":["laptop"],"b":["nas"]},"rules":[{"between":["a","b"]},{"between":["a","b"]}]}', src, NAMES).rules).toHaveLength(2)
  })

  it('reads a file that starts with a byte order mark', () => {
    expect(parsePolicy('\uFEFF{"rules":[{"between":["laptop","nas"]}]}', src, NAMES).rules).toHaveLength(1)
  })

  it('says where JSON syntax breaks', () => {
    expect(() => parsePolicy('{"rules": [\n  {"between": ["laptop"],}\n]}', src, NAMES)).toThrow(/^policy \/etc\/wgnat\/policy.json: not valid JSON at line 2 column 26: /)
  })

  it('accepts the issue\'s example (with a public key member), and a group named like a peer wins over the peer', () => {
    const p = parsePolicy(JSON.stringify({ groups: { admins: ['laptop'], devices: ['nas', '10.8.0.4', KEYS.tv], servers: ['db'], laptop: ['db'] }, rules: [{ between: ['admins', 'devices'] }, { from: ['admins'], to: ['servers'] }, { between: ['laptop'] }] }), src, NAMES)
    expect(p.rules.map((r) => [r.kind, r.a.label, r.b.label])).toEqual([['between', 'admins', 'devices'], ['oneway', 'admins', 'servers'], ['between', 'laptop', 'laptop']])
    expect(p.rules[2]?.a.members).toEqual([{ kind: 'name', name: 'db' }])
  })
})

describe('reachReport: `wgnat-server policy check` before deploying', () => {
  it('without the interface, shows who may open connections to whom among the members the file names', async () => {
    const { reachReport, renderReach } = await import('../../src/server/policy/reach-report.js')
    const policy = parsePolicy(JSON.stringify({ groups: { admins: ['laptop'], devices: ['nas', '10.8.0.4', KEYS.tv] }, rules: [{ from: ['admins'], to: ['devices'] }, { between: ['laptop', 'db'] }] }), 'p.json', NAMES)
    const report = reachReport(policy, NAMES)
    expect(report.peersFrom).toBe('file')
    const label = new Map(report.peers.map((p) => [p.id, p.label]))
    expect(report.allowed.map(([a, b]) => `${label.get(a)}>${label.get(b)}`).sort()).toEqual(['10.8.0.4', 'db', 'nas', 'tv'].map((t) => `laptop>${t}`).concat('db>laptop').sort())
    const text = renderReach(report)
    expect(text).toContain('rule 1: from admins to devices (one way)')
    expect(text).toMatch(/^ {2}laptop +\S+ +yes/m)
  })

  it('with the interface\'s peers, labels them by name or short key and address', async () => {
    const { reachReport } = await import('../../src/server/policy/reach-report.js')
    const policy = parsePolicy(JSON.stringify({ rules: [{ between: ['laptop', ADDR.cam] }] }), 'p.json', NAMES)
    const report = reachReport(policy, NAMES, PEERS)
    expect(report.peersFrom).toBe('interface')
    expect(report.peers.map((p) => p.label)).toContain(`${KEYS.cam.slice(0, 8)} (10.8.0.4/32)`)
    expect(report.allowed).toHaveLength(2)
  })
})
