import { describe, expect, it } from 'vitest'
import { labSupport } from '../../scripts/lab/lab.js'
import { pathBetween, waitForParked, waitForPing } from '../../scripts/lab/mesh.js'
import { labMesh, TWO_EASY_SITES } from './lab-mesh.js'

const support = await labSupport()
if (!support.ok) console.warn(`SKIPPING late-start e2e tests: ${support.reason}`)

/** Attempts give up after 2 s: `a` parks `b` after 4 of them, on retry slots of 15, 30 and 60 s (about a minute). */
const CLIENT_ARGS = ['--direct-timeout', '2s']
/**
 * After parking, `a`'s WireGuard goes on resending its last handshake for up to 90 s, and its router keeps the mapping
 * 30 s more: after this long `b`'s handshakes meet a closed door, as after days of `b` away.
 */
const QUIET_MS = 150_000

describe.skipIf(!support.ok)('a peer whose wgnat starts long after the other side parked it', () => {
  // The hub runs no STUN server (a cloud firewall that lets only WireGuard's port through) and does not relay: both
  // NAT classes stay unknown, so nothing but b's own first announcement can wake the pair on a's side.
  const m = labMesh(TWO_EASY_SITES, { clients: ['a'], serverArgs: ['--no-stun'], clientArgs: CLIENT_ARGS })

  it('is tried again by the side that did not change as soon as it announces: both directions go direct', async () => {
    const { lab, mesh } = m
    const b = lab.clients.b!
    const parked = await waitForParked(lab, 'a', b.publicKey, 240_000)
    expect(parked, mesh.logs()).toBeDefined()
    await new Promise((resolve) => setTimeout(resolve, QUIET_MS))
    expect((await pathBetween(lab, 'a', 'b')).path, 'a must still have b parked').toBe('none')

    const t0 = Date.now()
    mesh.startClient('b')
    // The hub does not relay: a reply means a direct path. a is the side that changed nothing.
    const aToB = await waitForPing(lab, 'a', b.tunnelIp, t0 + 30_000, t0)
    expect(aToB, mesh.logs()).toBeDefined()
    expect(await waitForPing(lab, 'b', lab.clients.a!.tunnelIp, t0 + 30_000, t0), mesh.logs()).toBeDefined()
    expect((await pathBetween(lab, 'a', 'b')).path).toBe('direct')
    console.log(`[e2e] late start: a parked b after ${Math.round((parked ?? 0) / 1000)} s; b launched ${QUIET_MS / 1000} s later; a -> b direct after ${((aToB ?? 0) / 1000).toFixed(2)} s`)
  }, 480_000)
})
