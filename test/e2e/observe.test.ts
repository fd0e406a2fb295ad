/**
 * Seeing the mesh, in a two-spoke lab: the clients report their paths, `wgnat-server status [--json]` shows the
 * pair as direct, both daemons' /metrics say the same, and the hub's page, rendered by a real headless Chromium,
 * draws the pair as direct.
 */
import { execa } from 'execa'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createLab, labSupport, type Lab } from '../../scripts/lab/lab.js'
import { SERVER_BIN, registerWithHub, startMesh, waitFor, waitForPing, type MeshProcesses } from '../../scripts/lab/mesh.js'

const support = await labSupport()
if (!support.ok) console.warn(`SKIPPING observe e2e tests: ${support.reason}`)
const CHROMIUM = '/usr/bin/chromium'
const haveChromium = existsSync(CHROMIUM)
if (support.ok && !haveChromium) console.warn('SKIPPING the mesh page test: no /usr/bin/chromium (apt-get install chromium)')

const HUB_HTTP = '127.0.0.1:9586'
const CLIENT_HTTP = '127.0.0.1:9587'

const esc = (text: string): string => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')

/** The value of one sample line in Prometheus text, or undefined. */
function sample (text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

interface MeshViewJson {
  nodes: Array<{ publicKey: string, label: string, natClass: string, endpoint: string | null }>
  pairs: Array<{ a: string, b: string, path: string, aSays: string, bSays: string, aEndpoint: string | null, bEndpoint: string | null }>
}

describe.skipIf(!support.ok)('the whole mesh from the hub: status, metrics and the page', () => {
  let lab: Lab
  let mesh: MeshProcesses
  let dir: string
  const statusSocket = (): string => join(dir, 'server.sock')

  async function get (host: string, url: string): Promise<string> {
    const script = `fetch(${JSON.stringify(url)}, { signal: AbortSignal.timeout(5000) }).then(async r => { if (!r.ok) throw new Error(r.status); process.stdout.write(await r.text()) })`
    return (await lab.exec(host, [process.execPath, '-e', script])).stdout
  }
  async function serverStatus (json: boolean): Promise<string> {
    return (await lab.exec('hub', [process.execPath, SERVER_BIN, 'status', '-i', lab.hub.wgIf, '--status-socket', statusSocket(), ...(json ? ['--json'] : [])])).stdout
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wgnat-observe-'))
    lab = await createLab({ sites: [{ name: 'a', kind: 'easy', clients: ['a'] }, { name: 'b', kind: 'easy', clients: ['b'] }] })
    await registerWithHub(lab)
    mesh = startMesh(lab, { clients: [], serverArgs: ['--relay', '--http', HUB_HTTP, '--status-socket', join(dir, 'server.sock')] })
    // Before the clients run, a goes to b through the hub: the relay rule counts it.
    expect(await waitForPing(lab, 'a', lab.clients.b!.tunnelIp, Date.now() + 15_000), mesh.logs()).toBeDefined()
    await lab.ping('a', lab.clients.b!.tunnelIp, { count: 5, intervalS: 0.1, timeoutS: 2 })
    for (const c of ['a', 'b']) mesh.startClient(c, ['--http', CLIENT_HTTP])
  })
  afterAll(async () => {
    await mesh?.cleanup()
    await lab?.destroy()
    if (dir !== undefined) await rm(dir, { recursive: true, force: true })
  })

  it('wgnat-server status --json shows the pair as direct, as both sides report, with NAT classes and endpoints', async () => {
    const a = lab.clients.a!
    const b = lab.clients.b!
    let view: MeshViewJson | undefined
    const ms = await waitFor(async () => {
      view = JSON.parse(await serverStatus(true)) as MeshViewJson
      const p = view.pairs[0]
      return p !== undefined && p.aSays === 'direct' && p.bSays === 'direct' && view.nodes.every((n) => n.natClass === 'easy')
    }, 30_000)
    expect(ms, `${JSON.stringify(view)}\n${mesh.logs()}`).toBeDefined()
    expect(view!.nodes.map((n) => n.publicKey).sort()).toEqual([a.publicKey, b.publicKey].sort())
    expect(view!.pairs).toHaveLength(1)
    const pair = view!.pairs[0]!
    expect(pair.path).toBe('direct')
    // Each side's endpoint for the other is the other's router (its public address).
    const endpointOf = (key: string): string | null => key === pair.a ? pair.aEndpoint : pair.bEndpoint
    expect(endpointOf(a.publicKey)).toMatch(new RegExp(`^${lab.routers.b!.wanIp.replace(/\./g, '\\.')}:\\d+$`))
    expect(endpointOf(b.publicKey)).toMatch(new RegExp(`^${lab.routers.a!.wanIp.replace(/\./g, '\\.')}:\\d+$`))
    // The human view: the matrix, rendered from the same structure.
    const text = await serverStatus(false)
    const [first, second] = [a.publicKey, b.publicKey].sort().map((k) => k.slice(0, 8))
    const lines = text.split('\n')
    // Matrix rows: what the row's peer says about the column's.
    expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^${esc(first!)}\\s+-\\s+direct$`)))
    expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^${esc(second!)}\\s+direct\\s+-$`)))
    expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^${esc(first!)} - ${esc(second!)}\\s+direct\\s+easy/easy\\s+198\\.18\\.`)))
  })

  it('a client cannot report about another peer: the hub knows the reporter by its tunnel address', async () => {
    // b posts a report naming a's key as if it were b's view of... a itself: the hub files it under b, whatever it says.
    const a = lab.clients.a!
    const body = JSON.stringify({ peers: [{ publicKey: a.publicKey, path: 'unreachable', endpoint: null }] })
    const post = async (payload: string): Promise<string> => {
      const script = `fetch('http://${lab.hub.tunnelIp}:${lab.hub.listenPort}/v1/report', { method: 'POST', body: ${JSON.stringify(payload)}, headers: { 'content-type': 'application/json' } }).then(r => console.log(r.status))`
      return (await lab.exec('a', [process.execPath, '-e', script])).stdout.trim()
    }
    // From a, about a itself: accepted but dropped (a peer's path to itself means nothing), so the pair stays direct.
    expect(await post(body)).toBe('204')
    // Almost valid: an extra field, a bad path, a bad key.
    expect(await post(JSON.stringify({ peers: [{ publicKey: a.publicKey, path: 'direct', endpoint: null, extra: 1 }] }))).toBe('400')
    expect(await post(JSON.stringify({ peers: [{ publicKey: a.publicKey, path: 'teleport', endpoint: null }] }))).toBe('400')
    expect(await post(JSON.stringify({ peers: [{ publicKey: 'x', path: 'direct', endpoint: null }] }))).toBe('400')
    const view = JSON.parse(await serverStatus(true)) as MeshViewJson
    expect(view.pairs[0]?.path).toBe('direct')
  })

  it('the metrics of both daemons agree: one direct pair, reports and long-polls on the hub, bytes relayed before', async () => {
    const hub = await get('hub', `http://${HUB_HTTP}/metrics`)
    expect(sample(hub, 'wgnat_registry_peers')).toBe(2)
    expect(sample(hub, 'wgnat_registry_long_polls_open')).toBeGreaterThanOrEqual(1)
    expect(sample(hub, 'wgnat_registry_requests_total{route="POST /v1/report",status="204"}')).toBeGreaterThanOrEqual(2)
    expect(sample(hub, 'wgnat_registry_requests_total{route="POST /v1/report",status="400"}')).toBe(3)
    expect(sample(hub, 'wgnat_registry_requests_total{route="GET /v1/table",status="200"}')).toBeGreaterThanOrEqual(2)
    expect(sample(hub, 'wgnat_stun_requests_total')).toBeGreaterThanOrEqual(2)
    // Six pings a -> b and back went through the hub before the clients ran: at least 6 * 2 * 84 bytes.
    expect(sample(hub, 'wgnat_relayed_bytes_total')).toBeGreaterThanOrEqual(6 * 2 * 84)
    for (const c of ['a', 'b']) {
      const m = await get(c, `http://${CLIENT_HTTP}/metrics`)
      expect(sample(m, 'wgnat_peers{path="direct"}'), `${c}:\n${m}`).toBe(1)
      expect(sample(m, 'wgnat_peers{path="hub"}')).toBe(0)
      expect(sample(m, 'wgnat_time_to_direct_seconds_count')).toBeGreaterThanOrEqual(1)
      expect(sample(m, 'wgnat_time_to_direct_seconds_sum')).toBeLessThan(30)
      expect(sample(m, 'wgnat_path_changes_total{from="trying",to="direct"}')).toBeGreaterThanOrEqual(1)
      expect(sample(m, 'wgnat_nat_class{class="easy"}')).toBe(1)
      expect(sample(m, 'wgnat_stun_round_trip_seconds_count')).toBeGreaterThanOrEqual(1)
      expect(sample(m, 'wgnat_raw_sockets_available')).toBe(1)
      expect(sample(m, 'wgnat_registry_errors_total{op="report"}')).toBe(0)
    }
    // The listener binds where it was told: loopback in the hub's namespace, not the tunnel address.
    const script = `fetch('http://${lab.hub.tunnelIp}:9586/metrics', { signal: AbortSignal.timeout(3000) }).then(r => console.log(r.status), e => console.log(e.cause?.code ?? e.name))`
    expect((await lab.exec('a', [process.execPath, '-e', script])).stdout.trim()).toBe('ECONNREFUSED')
  })

  it.skipIf(!haveChromium)('the hub\'s page, rendered by headless Chromium, draws the pair as direct', async () => {
    // Pairs are (a, b) with a < b by key; the page labels peers by short key.
    const [first, second] = [lab.clients.a!.publicKey, lab.clients.b!.publicKey].sort().map((k) => k.slice(0, 8))
    const chromium = (extra: string[], profile: string) => [CHROMIUM, '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage', `--user-data-dir=${join(dir, profile)}`,
      '--virtual-time-budget=5000', ...extra, `http://${HUB_HTTP}/`]
    const dom = await lab.exec('hub', chromium(['--dump-dom'], 'profile-dom'), { env: { HOME: dir }, timeoutMs: 90_000 })
    const html = dom.stdout
    expect(html, dom.stderr).toContain(`data-pair="${first}-${second}" data-path="direct"`)
    expect(html).toMatch(/<path class="edge direct"[^>]*data-path="direct"/)
    expect(html).toContain('2 peers, 1 pair: 1 direct')
    expect(html).not.toContain('cannot reach wgnat-server')
    const shot = join(dir, 'mesh.png')
    await lab.exec('hub', chromium([`--screenshot=${shot}`, '--window-size=1200,900', '--hide-scrollbars'], 'profile-shot'), { env: { HOME: dir }, timeoutMs: 90_000 })
    expect(existsSync(shot)).toBe(true)
    if (process.env.WGNAT_KEEP_SCREENSHOT !== undefined) await execa('cp', [shot, process.env.WGNAT_KEEP_SCREENSHOT])
  })
})
