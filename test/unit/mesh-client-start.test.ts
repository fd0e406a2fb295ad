import { createServer, type Server } from 'node:http'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { MeshClient, type MeshClientInit } from '../../src/client/mesh-client.js'
import { NO_RAW_PROBLEM } from '../../src/client/nat/nat-start.js'
import { silentLogger } from '../../src/shared/log.js'
import type { WgDevice } from '../../src/shared/wg-dump.js'

// A MeshClient's first seconds against a stub registry and a fake `wg`: what holds before NAT discovery has started
// (its modules load only then, mesh-client.ts startNat). Everything it sends goes to loopback.

const key = (c: string): string => `${c.repeat(42)}A=`
const SELF = key('A'); const HUB = key('B'); const PEER = key('C')
const entry = (publicKey: string, endpoint: string | null, ip: string): Record<string, unknown> => ({ publicKey, endpoint, allowedIps: [ip], latestHandshake: 0, online: true, announce: null })

let server: Server | undefined
let client: MeshClient | undefined
let stateDir: string | undefined
afterEach(async () => {
  await client?.stop()
  server?.closeAllConnections()
  await new Promise<void>((resolve) => server?.close(() => resolve()) ?? resolve())
  if (stateDir !== undefined) rmSync(stateDir, { recursive: true, force: true })
  client = undefined; server = undefined; stateDir = undefined
})

/** Start a client whose registry serves one peer (at a loopback endpoint); resolves once its first attempt is under way. */
async function startClient (init: Partial<MeshClientInit>, peer = entry(PEER, '127.0.0.1:9', '100.64.0.3/32')): Promise<{ client: MeshClient, sets: Array<Record<string, unknown>> }> {
  server = createServer((req, res) => {
    if (req.url?.startsWith('/v1/table') === true) {
      res.end(JSON.stringify({ epoch: 'e', version: 1, now: Math.floor(Date.now() / 1000), relay: true, full: true, self: entry(SELF, '127.0.0.3:51820', '100.64.0.2/32'), peers: [peer], removed: [] }))
    } else { req.resume(); req.on('end', () => res.end('{}')) }
  })
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  const sets: Array<Record<string, unknown>> = []
  const device: WgDevice = { publicKey: SELF, listenPort: 51820, peers: [{ publicKey: HUB, endpoint: { address: '127.0.0.1', port }, allowedIps: ['100.64.0.0/24', '127.0.0.1/32'], latestHandshake: 0, rxBytes: 0, txBytes: 0, persistentKeepalive: null }] } as unknown as WgDevice
  const wg = { show: async () => device, set: async (_iface: string, changes: Array<Record<string, unknown>>) => { sets.push(...changes) } }
  const nft = { apply: async () => {}, listJson: async () => undefined, listTable: async () => undefined, removeTable: async () => false }
  stateDir = mkdtempSync(join(tmpdir(), 'wgnat-mesh-start-'))
  // The registry listens on loopback here: the hub peer routes it, as it routes the registry's tunnel address.
  client = new MeshClient({ iface: 'wgtest0', registryKey: HUB, intervalMs: 30_000, registryAddress: '127.0.0.1', registryPort: port, stateDir, push: false, portMapping: false, hubStunPort: 0, ...init }, { wg: wg as never, logger: silentLogger(), nft: nft as never })
  await client.start()
  const until = Date.now() + 3000
  while (client.status().peers[0]?.path !== 'trying' && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 10))
  return { client, sets }
}

describe('MeshClient start', () => {
  it('refuses a --registry-address the hub peer does not route: the registry is reached only through the tunnel', async () => {
    await expect(startClient({ registryAddress: '192.0.2.1' })).rejects.toMatchObject({
      exitCode: 64,
      message: expect.stringMatching(/^--registry-address '192\.0\.2\.1' is outside registry peer \S+'s allowed IPs \(100\.64\.0\.0\/24, 127\.0\.0\.1\/32\): the registry is reached only through the tunnel$/)
    })
  })
})

describe('MeshClient before NAT discovery has started', () => {
  it('with --punch-ttl, punches the first attempts (arming) instead of sending them straight off', async () => {
    const { client, sets } = await startClient({ punchTtl: 3 })
    expect(client.status().self.natReason).toMatch(/not checked yet/)
    expect(client.status().peers.map((p) => p.path)).toEqual(['trying'])
    // Arming writes nothing for the peer yet: its endpoint goes on once the punch is answered or the wait is over.
    expect(sets.filter((c) => c.publicKey === PEER)).toEqual([])
  })

  it('with --no-raw as well, says why raw features are off and tries at once', async () => {
    const { client, sets } = await startClient({ punchTtl: 3, raw: false })
    expect(client.status().self.rawProblem).toBe(NO_RAW_PROBLEM)
    expect(client.status().peers.map((p) => [p.path, p.reason])).toEqual([['trying', 'endpoint from the registry']])
    expect(sets.some((c) => c.publicKey === PEER)).toBe(true)
  })
})

describe('MeshClient\'s first attempts see the first table\'s own facts', () => {
  it('where the hub relays, the first attempt keeps the peer\'s routes on the hub path', async () => {
    const { sets } = await startClient({ raw: false })
    const first = sets.find((c) => c.publicKey === PEER)
    expect(first).toMatchObject({ endpoint: { address: '127.0.0.1', port: 9 } })
    expect(first?.allowedIps).toEqual([])
  })

  it('a peer behind our own public address is first tried on its LAN endpoint, not the shared public one', async () => {
    const behindUs = { ...entry(PEER, '127.0.0.3:40000', '100.64.0.3/32'), announce: { natClass: 'easy', mappedEndpoint: '127.0.0.3:40000', lanEndpoints: ['192.168.1.20:51820'], ready: [] } }
    const { sets } = await startClient({ raw: false }, behindUs)
    expect(sets.find((c) => c.publicKey === PEER)).toMatchObject({ endpoint: { address: '192.168.1.20', port: 51820 } })
  })
})
