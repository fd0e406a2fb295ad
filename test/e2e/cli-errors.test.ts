import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createLab, labSupport, type Lab } from '../../scripts/lab/lab.js'
import { CLIENT_BIN, SERVER_BIN, startMesh, waitFor, type MeshProcesses } from '../../scripts/lab/mesh.js'

const support = await labSupport()
if (!support.ok) console.warn(`SKIPPING cli e2e tests: ${support.reason}`)

/** A key no interface in the lab has. */
const STRANGER = 'yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk='

/** One HTTP request from a namespace; the status code, or the error's code when it could not connect. */
async function httpFrom (lab: Lab, host: string, url: string): Promise<string> {
  const script = `fetch(${JSON.stringify(url)}, { signal: AbortSignal.timeout(3000) }).then(r => console.log(r.status), e => console.log(e.cause?.code ?? e.name))`
  return (await lab.exec(host, [process.execPath, '-e', script])).stdout.trim()
}

describe.skipIf(!support.ok)('the real CLIs: bad input, start-up errors and where the registry listens', () => {
  let lab: Lab
  let mesh: MeshProcesses

  beforeAll(async () => {
    lab = await createLab({ sites: [{ name: 'a', kind: 'easy', clients: ['a'] }] })
    mesh = startMesh(lab, { clients: [] })
  })
  afterAll(async () => {
    await mesh?.cleanup()
    await lab?.destroy()
  })

  it.each([
    ['a missing interface', () => [CLIENT_BIN, '-i', 'nosuchwg0', '-r', lab.hub.publicKey], 69, /interface 'nosuchwg0' not found/],
    ['a registry key that is not a peer', () => [CLIENT_BIN, '-i', lab.clients.a!.wgIf, '-r', STRANGER], 64, /registry peer '.*' is not a peer of/],
    ['a bad interval', () => [CLIENT_BIN, '-i', lab.clients.a!.wgIf, '-r', lab.hub.publicKey, '-t', '1 minute'], 64, /'1 minute'/]
  ])('wgnat-client with %s: one line, the right exit code, nothing changed', async (_name, argv, code, message) => {
    const before = (await lab.exec('a', ['wg', 'show', lab.clients.a!.wgIf, 'dump'])).stdout
    const r = await lab.exec('a', [process.execPath, ...argv(), '--state-dir', `${mesh.stateDir}/x`], { reject: false })
    expect(r.exitCode).toBe(code)
    const lines = r.stderr.trim().split('\n')
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(message)
    expect(r.stderr).not.toMatch(/\n\s+at /)
    expect((await lab.exec('a', ['wg', 'show', lab.clients.a!.wgIf, 'dump'])).stdout).toBe(before)
  })

  it('wgnat-server refuses to start twice on the same port, in one line', async () => {
    expect(await waitFor(async () => (await httpFrom(lab, 'a', `http://${lab.hub.tunnelIp}:${lab.hub.listenPort}/v1/table`)) === '200', 10_000)).toBeDefined()
    const r = await lab.exec('hub', [process.execPath, SERVER_BIN, '-i', lab.hub.wgIf, '--no-stun'], { reject: false })
    expect(r.exitCode).not.toBe(0)
    const errors = r.stderr.trim().split('\n').filter((l) => l.includes('ERROR'))
    expect(errors).toHaveLength(1)
    expect(errors[0]).toMatch(/cannot listen on 100\.64\.0\.1.*EADDRINUSE/)
    expect(r.stderr).not.toMatch(/\n\s+at /)
  })

  it('the registry answers inside the tunnel only, and only to peers', async () => {
    // A peer, through the tunnel.
    expect(await httpFrom(lab, 'a', `http://${lab.hub.tunnelIp}:${lab.hub.listenPort}/v1/table`)).toBe('200')
    // Nothing listens on the hub's public address.
    expect(await httpFrom(lab, 'inet', `http://${lab.hub.underlayIp}:${lab.hub.listenPort}/v1/table`)).toBe('ECONNREFUSED')
    // The hub's own tunnel address is no peer.
    expect(await httpFrom(lab, 'hub', `http://${lab.hub.tunnelIp}:${lab.hub.listenPort}/v1/table`)).toBe('403')
  })
})

describe('the real CLIs: a reader that closes stdout early', () => {
  // `--help` alone is printed by the entry from the text recorded at build time; with another option, by the CLI.
  it.each([['wgnat-client', CLIENT_BIN, '--help'], ['wgnat-server', SERVER_BIN, '--help'], ['wgnat-client', CLIENT_BIN, '--help --log-level info'], ['wgnat-server', SERVER_BIN, '--help --log-level info']])('%s %s | head -c 1: exit 0, nothing on stderr', async (_name, bin, args) => {
    // head exits after its first byte; the rest of the help then meets a closed pipe (EPIPE), 20 times over.
    for (let i = 0; i < 20; i++) {
      const { spawnSync } = await import('node:child_process')
      const r = spawnSync('bash', ['-c', `set -o pipefail; "${process.execPath}" "${bin}" ${args} 2>/tmp/wgnat-epipe-$$.err | head -c 1 >/dev/null; rc=$?; cat /tmp/wgnat-epipe-$$.err; rm -f /tmp/wgnat-epipe-$$.err; exit $rc`], { encoding: 'utf8' })
      expect(r.stdout).toBe('')
      expect(r.status).toBe(0)
    }
  })
})

describe('the real CLIs: the help recorded at build time', () => {
  it.each([['wgnat-client', CLIENT_BIN], ['wgnat-server', SERVER_BIN]])('%s: --help and -h alone print what the CLI itself prints', async (name, bin) => {
    const { spawnSync } = await import('node:child_process')
    const run = (...args: string[]): { stdout: string, status: number | null } => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' })
    // With another option the CLI (commander) prints the help; alone, the entry prints the build's copy.
    const fromCli = run('--help', '--log-level', 'info')
    expect(fromCli.status).toBe(0)
    expect(fromCli.stdout).toMatch(new RegExp(`^Usage: ${name} \\[options\\]\\n[\\s\\S]*--log-level`))
    for (const flag of ['--help', '-h']) {
      const alone = run(flag)
      expect(alone.status).toBe(0)
      expect(alone.stdout).toBe(fromCli.stdout)
    }
  })
})
