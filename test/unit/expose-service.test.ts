import { describe, expect, it } from 'vitest'
import { silentLogger } from '../../src/shared/log.js'
import { createExposeService, type ExposeServiceInit } from '../../src/server/expose/expose-service.js'
import type { Family } from '../../src/server/expose/expose-ruleset.js'
import { parseExposeSpec } from '../../src/server/expose/expose-spec.js'
import type { ForwardingControl } from '../../src/server/expose/ip-forwarding.js'
import type { NftControl } from '../../src/shared/nft.js'
import { testKey } from '../helpers/keys.js'

const NAS = testKey('nas')
const GAME = testKey('game')

function fakes (opts: { forwarding?: Partial<Record<Family, boolean>>, nftFails?: () => boolean, leftover?: unknown } = {}) {
  const scripts: string[] = []
  const state: Partial<Record<Family, boolean>> = { ipv4: false, ipv6: false, ...opts.forwarding }
  const nft: NftControl = {
    async apply (script) {
      if (opts.nftFails?.() === true) throw new Error('nft refused')
      scripts.push(script)
    },
    async listTable () { return opts.leftover }
  }
  const forwarding: ForwardingControl = {
    async get (f) { return state[f] },
    async set (f, on) { state[f] = on }
  }
  const files = new Map<string, string>()
  return { scripts, state, nft, forwarding, files }
}

function service (f: ReturnType<typeof fakes>, init: Partial<ExposeServiceInit> = {}) {
  return createExposeService({
    iface: 'wg0',
    specs: [],
    preserveSource: false,
    reserved: [{ port: 51820, proto: 'udp', what: 'WireGuard\'s listen port' }],
    ...init
  }, {
    logger: silentLogger(),
    nft: f.nft,
    forwarding: f.forwarding,
    peers: () => [{ publicKey: NAS, allowedIps: ['10.8.0.2/32'] }, { publicKey: GAME, allowedIps: ['10.8.0.5/32'] }],
    names: async () => new Map([[NAS, 'nas']]),
    readText: async (path) => {
      const text = f.files.get(path)
      if (text === undefined) throw new Error('ENOENT: no such file')
      return text
    }
  })
}

describe('expose service', () => {
  it('installs the rules, then turns forwarding on; stop turns it off and removes the table', async () => {
    const f = fakes()
    const s = service(f, { specs: [parseExposeSpec('8080/tcp=nas:80')] })
    await s.start()
    expect(f.scripts).toHaveLength(1)
    expect(f.scripts[0]).toContain('dnat ip to 10.8.0.2:80')
    expect(f.scripts[0]).toContain('drop comment "wgnat guard ipv4"')
    expect(f.state.ipv4).toBe(true)
    await s.stop()
    expect(f.state.ipv4).toBe(false)
    expect(f.scripts[1]).toBe('table inet wgnat_expose_wg0 {}\ndelete table inet wgnat_expose_wg0\n')
  })

  it('leaves forwarding that was already on as it was, and adds no guard', async () => {
    const f = fakes({ forwarding: { ipv4: true } })
    const s = service(f, { specs: [parseExposeSpec('8080/tcp=nas:80')] })
    await s.start()
    expect(f.scripts[0]).not.toContain('guard')
    await s.stop()
    expect(f.state.ipv4).toBe(true)
  })

  it('a spec for a missing peer fails start with exit 64, nothing installed, forwarding untouched', async () => {
    const f = fakes()
    const s = service(f, { specs: [parseExposeSpec('8080/tcp=nas:80'), parseExposeSpec('9090/tcp=ghost:80')] })
    await expect(s.start()).rejects.toMatchObject({ exitCode: 64, message: expect.stringMatching(/'9090\/tcp=ghost:80': no peer named 'ghost'/) })
    expect(f.scripts).toEqual([])
    expect(f.state.ipv4).toBe(false)
  })

  it('reads the file at start; a bad reload keeps the old set; a good one replaces it', async () => {
    const f = fakes()
    f.files.set('/e', '# games\n27015/udp=10.8.0.5:27015\n')
    const s = service(f, { specs: [parseExposeSpec('8080/tcp=nas:80')], file: '/e' })
    await s.start()
    expect(s.exposes.map((e) => e.spec.text)).toEqual(['8080/tcp=nas:80', '27015/udp=10.8.0.5:27015'])

    f.files.set('/e', '27015/udp=10.8.0.5:27015\n51820/udp=nas:51820\n')
    expect(await s.reload()).toBe(false)
    f.files.set('/e', '8080/tcp=game:80\n')
    expect(await s.reload()).toBe(false)
    f.files.set('/e', '27015/udp=10.8.0.5\n')
    expect(await s.reload()).toBe(false)
    f.files.delete('/e')
    expect(await s.reload()).toBe(false)
    expect(f.scripts).toHaveLength(1)
    expect(s.exposes.map((e) => e.spec.text)).toEqual(['8080/tcp=nas:80', '27015/udp=10.8.0.5:27015'])

    f.files.set('/e', '27016/udp=10.8.0.5:27016\n')
    expect(await s.reload()).toBe(true)
    expect(s.exposes.map((e) => e.spec.text)).toEqual(['8080/tcp=nas:80', '27016/udp=10.8.0.5:27016'])
    expect(f.scripts[1]).toContain('udp dport 27016')
    expect(f.scripts[1]).not.toContain('27015')
    // forwarding wgnat turned on stays guarded after the reload
    expect(f.scripts[1]).toContain('guard')
    await s.stop()
    expect(f.state.ipv4).toBe(false)
  })

  it('takes over forwarding that a killed run left on (its guard rules say so), but only once its own rules are in', async () => {
    const leftover = { nftables: [{ rule: { comment: 'wgnat guard ipv4', expr: [] } }, { rule: { comment: 'wgnat conn 1/tcp=10.8.0.2:1', expr: [] } }] }
    const failing = fakes({ forwarding: { ipv4: true }, leftover })
    await expect(service(failing, { specs: [parseExposeSpec('8080/tcp=ghost:80')] }).start()).rejects.toMatchObject({ exitCode: 64 })
    expect(failing.state.ipv4).toBe(true)
    expect(failing.scripts).toEqual([])

    const f = fakes({ forwarding: { ipv4: true }, leftover })
    const s = service(f, { specs: [parseExposeSpec('8080/tcp=nas:80')] })
    await s.start()
    expect(f.scripts[0]).toContain('wgnat guard ipv4')
    await s.stop()
    expect(f.state.ipv4).toBe(false)
  })

  it('a reload asked for during start waits for it; one asked for after stop puts nothing back', async () => {
    const f = fakes()
    f.files.set('/e', '9000/tcp=nas:9000\n')
    const s = service(f, { file: '/e' })
    const started = s.start()
    const reloaded = s.reload()
    await started
    expect(await reloaded).toBe(true)
    expect(f.scripts).toHaveLength(2)
    const stopping = s.stop()
    expect(await s.reload()).toBe(false)
    await stopping
    expect(f.scripts.at(-1)).toContain('delete table')
    expect(f.scripts).toHaveLength(3)
    expect(f.state.ipv4).toBe(false)
  })

  it('no reload after a failed start', async () => {
    const f = fakes()
    f.files.set('/e', '9000/tcp=ghost:9000\n')
    const s = service(f, { file: '/e' })
    await expect(s.start()).rejects.toMatchObject({ exitCode: 64 })
    f.files.set('/e', '9000/tcp=nas:9000\n')
    expect(await s.reload()).toBe(false)
    expect(f.scripts).toEqual([])
  })

  it('when nft refuses a reload, the old set stays', async () => {
    let fail = false
    const f = fakes({ nftFails: () => fail })
    const s = service(f, { specs: [parseExposeSpec('8080/tcp=nas:80')] })
    await s.start()
    fail = true
    expect(await s.reload()).toBe(false)
    expect(s.exposes).toHaveLength(1)
  })
})
