import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createLab, labSupport, type Lab } from '../../scripts/lab/lab.js'
import { type MeshProcesses, registerWithHub, startMesh, waitFor } from '../../scripts/lab/mesh.js'

const support = await labSupport()
let goBinary: string | undefined
const goDir = mkdtempSync(join(tmpdir(), 'wgnat-go-'))
try {
  // A stand-in for wg-nat's client (its registry call, decoded with Go's encoding/json into wgtypes' shapes).
  // Go is 335 MB of Debian packages, so setup does not install it: where it is missing this test is skipped loudly.
  execFileSync('go', ['build', '-o', join(goDir, 'wgnat-go-client'), '.'], { cwd: new URL('../../scripts/compat/wgnat-go-client', import.meta.url).pathname, stdio: 'pipe' })
  goBinary = join(goDir, 'wgnat-go-client')
} catch (err) {
  console.warn(`SKIPPING wg-nat Go client test: cannot build it (${(err as Error).message.split('\n')[0] ?? ''}); apt-get install golang-go to run it`)
}
if (!support.ok) console.warn(`SKIPPING wg-nat Go client test: ${support.reason}`)
// A skipped block runs no afterAll: its build directory goes now (every run of the suite left one behind before).
if (!support.ok || goBinary === undefined) rmSync(goDir, { recursive: true, force: true })

describe.skipIf(!support.ok || goBinary === undefined)('a wg-nat-style Go client against wgnat-server', () => {
  let lab: Lab
  let mesh: MeshProcesses

  beforeAll(async () => {
    lab = await createLab({ sites: [{ name: 'a', kind: 'easy', clients: ['a'] }, { name: 'b', kind: 'easy', clients: ['b'] }] })
    await registerWithHub(lab)
    mesh = startMesh(lab, { clients: [] })
  })
  afterAll(async () => {
    await mesh?.cleanup()
    await lab?.destroy()
    rmSync(goDir, { recursive: true, force: true })
  })

  it('decodes the keepalive answer: the other peer, its endpoint, 25 s keepalive, no preshared key', async () => {
    const url = `http://${lab.hub.tunnelIp}:${lab.hub.listenPort}`
    const run = async (key: string): Promise<{ exitCode: number, stdout: string, stderr: string }> => await lab.exec('a', [goBinary!, url, key], { reject: false })
    expect(await waitFor(async () => (await run(lab.clients.a!.publicKey)).exitCode === 0, 10_000), mesh.logs()).toBeDefined()
    const r = await run(lab.clients.a!.publicKey)
    console.log(`[e2e] wg-nat Go client: ${r.stdout.trim()}`)
    expect(r.stdout.trim()).toBe(`peer ${lab.clients.b!.publicKey} endpoint ${lab.routers.b!.wanIp}:${lab.clients.b!.listenPort} keepalive 25s psk unchanged replace true allowed-ips ${lab.clients.b!.tunnelIp}/32`)
    // Another peer's key from a's address is refused.
    const spoof = await run(lab.clients.b!.publicKey)
    expect(spoof.exitCode).toBe(1)
    expect(spoof.stderr).toContain('status 403')
  })
})
