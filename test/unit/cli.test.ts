import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { run as runClient } from '../../src/client/cli.js'
import { run as runServer } from '../../src/server/cli.js'
import { testKey } from '../helpers/keys.js'

async function capture (run: typeof runClient, args: string[], env: Record<string, string> = {}): Promise<{ code: number, err: string[], out: string }> {
  const err: string[] = []
  let out = ''
  const saved = { ...process.env }
  Object.assign(process.env, env)
  try {
    const code = await run(['node', 'x', ...args], { stderr: (l) => err.push(l), stdout: (t) => { out += t }, stopSignal: Promise.resolve('test') })
    return { code, err, out }
  } finally {
    for (const k of Object.keys(env)) delete process.env[k]
    Object.assign(process.env, saved)
  }
}

const KEY = testKey('hub')

describe('command-line errors: one line, the value quoted, exit 64', () => {
  it.each([
    ['a bad interval', ['-i', 'wg0', '-r', KEY, '-t', '5x'], /'5x'.*Go syntax/],
    ['a duration without unit', ['-i', 'wg0', '-r', KEY, '-t', '5'], /'5'/],
    ['a bad registry key', ['-i', 'wg0', '-r', 'not-a-key'], /'not-a-key' is not a WireGuard public key/],
    ['a bad keepalive', ['-i', 'wg0', '-r', KEY, '--keepalive', '-3'], /'-3' is not a whole number/],
    ['a bad registry address', ['-i', 'wg0', '-r', KEY, '--registry-address', '10.0.0.300'], /'10.0.0.300' is not an IP address/],
    ['a missing interface', ['-r', KEY], /--interface/],
    ['an unknown option', ['-i', 'wg0', '-r', KEY, '--frobnicate'], /unknown option '--frobnicate'/]
  ])('client: %s', async (_name, args, message) => {
    const r = await capture(runClient, args)
    expect(r.code).toBe(64)
    expect(r.err).toHaveLength(1)
    expect(r.err[0]).toMatch(message)
    expect(r.err[0]).not.toMatch(/\n|at .*\.ts:/)
  })

  it('server: a bad port', async () => {
    const r = await capture(runServer, ['-i', 'wg0', '--port', '70000'])
    expect(r.code).toBe(64)
    expect(r.err[0]).toMatch(/'70000' is not a whole number from 1 to 65535/)
  })

  it('takes every option from a WGNAT_* variable too, checked the same way', async () => {
    const r = await capture(runClient, ['-i', 'wg0', '-r', KEY], { WGNAT_INTERVAL: 'soon' })
    expect(r.code).toBe(64)
    expect(r.err[0]).toMatch(/WGNAT_INTERVAL.*'soon'/)
  })

  it('--help reads like wg-nat plus the new options and exits 0', async () => {
    const r = await capture(runClient, ['--help'])
    expect(r.code).toBe(0)
    for (const flag of ['-i, --interface', '-r, --registry', '-t, --interval', '--keepalive', '--state-dir', 'env: WGNAT_INTERVAL']) expect(r.out).toContain(flag)
  })

  it('a start-up failure is one line with its own exit code, no stack trace', async () => {
    // wg is asked about an interface that does not exist: not found, or wg missing, or not permitted; all one line.
    const r = await capture(runServer, ['-i', `nonexistent${process.pid}`, '--log-format', 'json'])
    expect([69, 77, 1]).toContain(r.code)
  })
})

describe('commands, --version and help', () => {
  it.each([
    [runServer, ['iniy', '-i', 'wg0'], "wgnat-server: unknown command 'iniy' (commands: init, add-peer, remove-peer, peers, policy, exposes, install-service, status; `wgnat-server --help` for the daemon's options)"],
    [runClient, ['stauts', '-i', 'wg0'], "wgnat-client: unknown command 'stauts' (commands: status, install-service; `wgnat-client --help` for the daemon's options)"]
  ])('a mistyped command is named, with the commands there are, exit 64', async (run, args, line) => {
    const r = await capture(run, args)
    expect(r.code).toBe(64)
    expect(r.err).toEqual([line])
  })

  it.each([[runServer, 'wgnat-server'], [runClient, 'wgnat-client']])('--version prints the package version, and help the help', async (run, name) => {
    const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
    const v = await capture(run, ['--version'])
    expect(v).toMatchObject({ code: 0, out: `${name} ${version}\n`, err: [] })
    const h = await capture(run, ['help'])
    expect(h.code).toBe(0)
    expect(h.out).toContain(`Usage: ${name} [options]`)
    expect(h.out).toContain('install-service -i <interface>')
  })
})

describe('wgnat-server policy', () => {
  it('--help prints the help of its check subcommand; a wrong subcommand says which there is', async () => {
    const h = await capture(runServer, ['policy', '--help'])
    expect(h.code).toBe(0)
    expect(h.out).toContain('Usage: wgnat-server policy check [options] <file>')
    const bad = await capture(runServer, ['policy', 'chek'])
    expect(bad.code).toBe(64)
    expect(bad.err).toEqual(["wgnat-server policy: unknown subcommand 'chek': use 'wgnat-server policy check <file> -i <interface>'"])
  })
})
