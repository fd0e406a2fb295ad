import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { WgError } from '../../src/shared/errors.js'
import { wgCli } from '../../src/shared/wg.js'
import { wgRunner } from '../../src/shared/wg-runner.js'

// `wg` stand-ins: small shell scripts, run for real through the runner (no root needed).
let dir: string
function script (name: string, body: string): string {
  const path = join(dir, name)
  writeFileSync(path, `#!/bin/sh\n${body}\n`)
  chmodSync(path, 0o755)
  return path
}
async function failure (p: Promise<unknown>): Promise<WgError> {
  const err = await p.then(() => undefined, (e: unknown) => e)
  expect(err).toBeInstanceOf(WgError)
  return err as WgError
}

const KEY = 'mBFPUT5Nk0kP1q+1bFAXyGcb3KfnQt8ZlYk1sOHs5xY='
const PEER = 'yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk='
const DUMP = `(hidden)\t${KEY}\t51820\toff\n${PEER}\t(none)\t198.18.0.2:51820\t100.64.0.2/32\t0\t0\t0\toff\n`

beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'wgnat-wg-runner-')) })
afterAll(() => { rmSync(dir, { recursive: true, force: true }) })

describe('wgRunner', () => {
  it('resolves to stdout whole, its final newline kept', async () => {
    const file = join(dir, 'dump.txt')
    writeFileSync(file, DUMP)
    expect(await wgRunner({ wgPath: 'cat' })([file], {})).toBe(DUMP)
  })

  it('gives `wg` no stdin to wait on (reading it ends at once)', async () => {
    // With a stdin pipe left open, `cat -` would wait for input until the timeout.
    const started = Date.now()
    expect(await wgRunner({ wgPath: 'cat', timeoutMs: 3000 })(['-'], {})).toBe('')
    expect(Date.now() - started).toBeLessThan(2500)
  })

  it('passes the arguments through, one by one', async () => {
    const echo = script('args', 'for a in "$@"; do printf "[%s]" "$a"; done')
    expect(await wgRunner({ wgPath: echo })(['set', 'wg 0', 'peer', 'a=b'], {})).toBe('[set][wg 0][peer][a=b]')
  })
})

describe('wgCli through the real runner', () => {
  it('show parses what `wg show <iface> dump` printed', async () => {
    const wg = script('wg-ok', `[ "$1 $2 $3" = "show wg0 dump" ] || exit 3\nprintf '%s' '${DUMP}'`)
    const device = await wgCli({ wgPath: wg }).show('wg0')
    expect(device.publicKey).toBe(KEY)
    expect(device.peers.map((p) => p.publicKey)).toEqual([PEER])
    expect(device.peers[0]?.allowedIps).toEqual(['100.64.0.2/32'])
  })

  it('a failure quotes the first line of stderr, never stdout', async () => {
    const wg = script('wg-fail', `echo 'secret-stdout'\necho 'Line unrecognized: bogus' >&2\necho 'second line' >&2\nexit 1`)
    const err = await failure(wgCli({ wgPath: wg }).show('wg0'))
    expect(err.message).toBe("wg failed on interface 'wg0': 'Line unrecognized: bogus'")
    expect(err.message).not.toContain('secret')
    expect(err.exitCode).toBe(1)
  })

  it('a failure without stderr gives the exit code', async () => {
    const err = await failure(wgCli({ wgPath: script('wg-exit', 'exit 7') }).show('wg0'))
    expect(err.message).toBe("wg failed on interface 'wg0': exit code 7")
  })

  it('a missing interface exits 69, a refused one 77', async () => {
    const missing = await failure(wgCli({ wgPath: script('wg-nodev', "echo 'Unable to access interface: No such device' >&2; exit 1") }).show('wg9'))
    expect([missing.message, missing.exitCode]).toEqual(["interface 'wg9' not found or not a WireGuard interface", 69])
    const refused = await failure(wgCli({ wgPath: script('wg-eperm', "echo 'Unable to access interface: Operation not permitted' >&2; exit 1") }).show('wg0'))
    expect(refused.exitCode).toBe(77)
    expect(refused.message).toContain('run as root or with CAP_NET_ADMIN')
  })

  it('a missing `wg` exits 69 and names the path tried', async () => {
    const err = await failure(wgCli({ wgPath: join(dir, 'no-such-wg') }).show('wg0'))
    expect(err.exitCode).toBe(69)
    expect(err.message).toBe(`wg not found: is wireguard-tools installed? (tried '${join(dir, 'no-such-wg')}')`)
  })

  it('a call past its timeout is stopped and says so', async () => {
    const started = Date.now()
    const err = await failure(wgCli({ wgPath: script('wg-slow', 'exec sleep 20'), timeoutMs: 200 }).show('wg0'))
    expect(err.message).toBe("wg on interface 'wg0' timed out")
    expect(Date.now() - started).toBeLessThan(10_000)
  })

  it('an abort stops the call and says cancelled, for show and set', async () => {
    const wg = wgCli({ wgPath: script('wg-hang', 'exec sleep 20'), timeoutMs: 30_000 })
    const started = Date.now()
    const show = wg.show('wg0', { signal: AbortSignal.timeout(100) })
    expect((await failure(show)).message).toBe('wg: cancelled')
    const set = wg.set('wg0', [{ publicKey: PEER, remove: true }], { signal: AbortSignal.timeout(100) })
    expect((await failure(set)).message).toBe('wg: cancelled')
    expect(Date.now() - started).toBeLessThan(10_000)
  })

  it('a signal that never fires changes nothing', async () => {
    const wg = script('wg-ok2', `printf '%s' '${DUMP}'`)
    const controller = new AbortController()
    expect((await wgCli({ wgPath: wg }).show('wg0', { signal: controller.signal })).peers).toHaveLength(1)
  })
})
