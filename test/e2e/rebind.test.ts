import { describe, expect, it } from 'vitest'
import { labSupport, type Lab } from '../../scripts/lab/lab.js'
import { pathBetween, waitFor } from '../../scripts/lab/mesh.js'
import { labMesh, TWO_EASY_SITES } from './lab-mesh.js'
import { pingGaps } from '../../scripts/lab/ping-gaps.js'

const support = await labSupport()
if (!support.ok) console.warn(`SKIPPING rebind e2e tests: ${support.reason}`)

/** The port the rebooted router hands out for the client's WireGuard port (then the next, on a second reboot). */
const NEW_PORT = 31000
/** The goal: the direct path back within this long of the reboot, whichever side sends. */
const REBIND_GOAL_MS = 5000

/**
 * A home router that reboots: it forgets every mapping, and the client's WireGuard port now maps to another public
 * port (the same for every destination, as before: still endpoint-independent).
 */
async function rebootRouter (lab: Lab, site: string, client: string, port = NEW_PORT): Promise<void> {
  const { wanIf, wanIp } = lab.routers[site]!
  const c = lab.clients[client]!
  await lab.exec(`router:${site}`, ['iptables', '-w', '-t', 'nat', '-I', 'POSTROUTING', '1', '-o', wanIf, '-s', c.underlayIp, '-p', 'udp', '--sport', String(c.listenPort), '-j', 'SNAT', '--to-source', `${wanIp}:${port}`])
  await lab.exec(`router:${site}`, ['conntrack', '-F'], { reject: false })
}

describe.skipIf(!support.ok)('a router that loses its mappings (reboot, new ports)', () => {
  const setup = labMesh(TWO_EASY_SITES)

  it('gets the direct path back within seconds', async () => {
    const { lab, mesh } = setup
    expect(await waitFor(async () => (await pathBetween(lab, 'a', 'b')).path === 'direct', 15_000), mesh.logs()).toBeDefined()
    await rebootRouter(lab, 'a', 'a')
    const t0 = Date.now()
    // The hub does not forward: a reply proves the direct path.
    const lost = await lab.ping('a', lab.clients.b!.tunnelIp, { count: 1, timeoutS: 1 })
    const back = await waitFor(async () => (await lab.ping('a', lab.clients.b!.tunnelIp, { count: 1, timeoutS: 1 })).received > 0, 30_000)
    const ms = back === undefined ? undefined : Date.now() - t0
    const endpoint = (await lab.exec('b', ['wg', 'show', lab.clients.b!.wgIf, 'endpoints'])).stdout.split('\n').find((l) => l.startsWith(lab.clients.a!.publicKey))?.split('\t')[1]
    console.log(`[e2e] rebind: first ping after the reboot ${lost.received > 0 ? 'answered' : 'lost'}; direct path back after ${ms ?? 'never'} ms; b now sends to ${endpoint ?? '?'}`)
    expect(ms, mesh.logs()).toBeDefined()
    expect(ms!, mesh.logs()).toBeLessThan(10_000)
    expect(endpoint).toBe(`${lab.routers.a!.wanIp}:${NEW_PORT}`)
  })

  it('gets it back within 5 s when only the side that did NOT move sends (a ping every 0.5 s)', async () => {
    const { lab, mesh } = setup
    expect(await waitFor(async () => (await pathBetween(lab, 'b', 'a')).path === 'direct', 15_000), mesh.logs()).toBeDefined()
    // b pings a for 20 s; 3 s in, a's router reboots again (a new port). a sends nothing of its own accord: only
    // its client can re-open its router towards b, and b follows a's new endpoint once the registry has it.
    const aIp = lab.clients.a!.tunnelIp
    const pinging = lab.exec('b', ['ping', '-n', '-i', '0.5', '-W', '1', '-c', '40', aIp], { reject: false, timeoutMs: 30_000 })
    await new Promise((resolve) => setTimeout(resolve, 3000))
    await rebootRouter(lab, 'a', 'a', NEW_PORT + 1)
    const gaps = pingGaps((await pinging).stdout, 0.5)
    const endpoint = (await lab.exec('b', ['wg', 'show', lab.clients.b!.wgIf, 'endpoints'])).stdout.split('\n').find((l) => l.startsWith(lab.clients.a!.publicKey))?.split('\t')[1]
    console.log(`[e2e] rebind seen from the quiet side: ${gaps.received}/${gaps.sent} answered, longest outage ${gaps.longestGapMs} ms (${gaps.longestGap} pings); b now sends to ${endpoint ?? '?'}`)
    expect(gaps.sent).toBe(40)
    // Measured to within one ping interval; the hub does not forward, so every answer came over the direct path.
    expect(gaps.longestGapMs, mesh.logs()).toBeLessThanOrEqual(REBIND_GOAL_MS + 1000)
    expect(endpoint).toBe(`${lab.routers.a!.wanIp}:${NEW_PORT + 1}`)
  })
})

// A direct path that dies (cut between the routers, the hub still reaching both): test/e2e/dead-path.test.ts.
