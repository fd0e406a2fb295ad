import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
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

// Every test below runs with both ways of starting `wg`: a process per call, and through one kept shell (daemons).
describe.each([['a process per call', false], ['through a kept shell', true]] as const)('wgRunner, %s', (_, persistent) => {
  it('resolves to stdout whole, its final newline kept', async () => {
    const file = join(dir, 'dump.txt')
    writeFileSync(file, DUMP)
    expect(await wgRunner({ wgPath: 'cat', persistent })([file], {})).toBe(DUMP)
  })

  it('gives `wg` no stdin to wait on (reading it ends at once)', async () => {
    // With a stdin pipe left open, `cat -` would wait for input until the timeout.
    const started = Date.now()
    expect(await wgRunner({ wgPath: 'cat', timeoutMs: 3000, persistent })(['-'], {})).toBe('')
    expect(Date.now() - started).toBeLessThan(2500)
  })

  it('passes the arguments through, one by one', async () => {
    const echo = script('args', 'for a in "$@"; do printf "[%s]" "$a"; done')
    expect(await wgRunner({ wgPath: echo, persistent })(['set', 'wg 0', 'peer', 'a=b'], {})).toBe('[set][wg 0][peer][a=b]')
  })

  it('passes shell syntax in an argument through as text, never running it', async () => {
    const echo = script('args-literal', 'for a in "$@"; do printf "[%s]" "$a"; done')
    const marker = join(dir, 'must-not-exist')
    const args = [`'; touch ${marker}; '`, `$(touch ${marker})`, `\`touch ${marker}\``, `a\nb`, '"x"', '\\', '*', '']
    expect(await wgRunner({ wgPath: echo, persistent })(args, {})).toBe(args.map((a) => `[${a}]`).join(''))
    expect(existsSync(marker)).toBe(false)
  })

  it('keeps output with no final newline, an empty one, and a large one as they are', async () => {
    const run = wgRunner({ wgPath: script('out', 'case "$1" in none) printf "a\\tb";; empty) ;; big) head -c 1500000 /dev/zero | tr "\\0" x;; esac'), persistent })
    expect(await run(['none'], {})).toBe('a\tb')
    expect(await run(['empty'], {})).toBe('')
    const big = await run(['big'], {})
    expect(big.length).toBe(1_500_000)
    expect(big).toBe('x'.repeat(1_500_000))
    expect(await run(['none'], {})).toBe('a\tb')
  })

  it('decodes UTF-8 split across reads', async () => {
    const file = join(dir, 'utf8.txt')
    const text = 'é€'.repeat(50_000) + '\n'
    writeFileSync(file, text)
    expect(await wgRunner({ wgPath: 'cat', persistent })([file], {})).toBe(text)
  })
})

describe('wgRunner through a kept shell', () => {
  it('runs every call through the same shell, one at a time, each answer to its own call', async () => {
    const wg = script('ppid', 'sleep 0.0$(($1 % 3)); printf "%s %s" "$1" "$PPID"; echo "err $1" >&2; [ "$1" -lt 5 ] || exit 1')
    const run = wgRunner({ wgPath: wg, persistent: true })
    const calls = Array.from({ length: 8 }, async (_, i) => await run([String(i)], {}).then((out) => out, (err: unknown) => err))
    const results = await Promise.all(calls)
    const shells = new Set<string>()
    for (const [i, r] of results.entries()) {
      if (i < 5) {
        const [n, ppid] = String(r).split(' ')
        expect(n).toBe(String(i))
        shells.add(ppid ?? '')
      } else {
        expect(r).toMatchObject({ exitCode: 1, stderr: `err ${i}\n` })
      }
    }
    expect(shells.size).toBe(1)
    expect(Number([...shells][0])).not.toBe(process.pid)
  })

  it('outlives a SIGTERM to its process group (a service stop): the daemon\'s last calls still run', async () => {
    const wg = script('ppid2', 'printf "%s" "$PPID"')
    const run = wgRunner({ wgPath: wg, persistent: true })
    const shell = Number(await run([], {}))
    process.kill(-shell, 'SIGTERM')
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(Number(await run([], {}))).toBe(shell)
  })

  it('after a timeout, a killed shell or close(), the next call starts a new shell and works', async () => {
    const wg = script('ppid3', '[ "$1" = slow ] && exec sleep 20; printf "%s" "$PPID"')
    const run = wgRunner({ wgPath: wg, persistent: true, timeoutMs: 300 }) as ReturnType<typeof wgRunner> & { close: () => void }
    const first = Number(await run([], {}))
    await expect(run(['slow'], {})).rejects.toMatchObject({ timedOut: true })
    const second = Number(await run([], {}))
    expect(second).not.toBe(first)
    expect(() => process.kill(first, 0)).toThrow() // the timed-out shell is gone
    process.kill(second, 'SIGKILL')
    await new Promise((resolve) => setTimeout(resolve, 100))
    const third = Number(await run([], {}))
    expect(third).not.toBe(second)
    run.close()
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(() => process.kill(third, 0)).toThrow()
    expect(Number(await run([], {}))).not.toBe(third)
    run.close()
  })

  it('an answer waiting while the event loop was held past the timeout wins', async () => {
    const run = wgRunner({ wgPath: 'echo', persistent: true, timeoutMs: 300 })
    await run(['warm'], {})
    const answered = run(['ready'], {})
    // Held a little past the deadline (less than counts as a held loop): the timer comes due before the pipe is read.
    const held = Date.now(); while (Date.now() - held < 420) { /* a start compiling its code on a starved machine */ }
    expect(await answered).toBe('ready\n')
  })

  it('a deadline passed while the event loop was held gives the call one more timeout, once', async () => {
    // Timeout 1 s; the loop held until 1.5 s; `wg` answers at about 1.8 s, inside the second timeout (2.5 s).
    const late = wgRunner({ wgPath: script('wg-late', 'sleep 1.8; echo late'), persistent: true, timeoutMs: 1000 })
    const answer = late([], {})
    const held = Date.now(); while (Date.now() - held < 1500) { /* held past the deadline */ }
    expect(await answer).toBe('late\n')
    // Not held: a call past its timeout fails at its timeout.
    const started = Date.now()
    await expect(wgRunner({ wgPath: script('wg-later', 'sleep 3'), persistent: true, timeoutMs: 500 })([], {})).rejects.toMatchObject({ timedOut: true })
    expect(Date.now() - started).toBeLessThan(1500)
  })

  it('refuses an argument holding a NUL byte', async () => {
    await expect(wgRunner({ wgPath: 'echo', persistent: true })(['a\0b'], {})).rejects.toThrow('NUL')
  })
})

describe.each([['a process per call', false], ['through a kept shell', true]] as const)('wgCli through the real runner, %s', (_, persistent) => {
  it('show parses what `wg show <iface> dump` printed', async () => {
    const wg = script('wg-ok', `[ "$1 $2 $3" = "show wg0 dump" ] || exit 3\nprintf '%s' '${DUMP}'`)
    const device = await wgCli({ wgPath: wg, persistent }).show('wg0')
    expect(device.publicKey).toBe(KEY)
    expect(device.peers.map((p) => p.publicKey)).toEqual([PEER])
    expect(device.peers[0]?.allowedIps).toEqual(['100.64.0.2/32'])
  })

  it('a failure quotes the first line of stderr, never stdout', async () => {
    const wg = script('wg-fail', `echo 'secret-stdout'\necho 'Line unrecognized: bogus' >&2\necho 'second line' >&2\nexit 1`)
    const err = await failure(wgCli({ wgPath: wg, persistent }).show('wg0'))
    expect(err.message).toBe("wg failed on interface 'wg0': 'Line unrecognized: bogus'")
    expect(err.message).not.toContain('secret')
    expect(err.exitCode).toBe(1)
  })

  it('a failure without stderr gives the exit code', async () => {
    const err = await failure(wgCli({ wgPath: script('wg-exit', 'exit 7'), persistent }).show('wg0'))
    expect(err.message).toBe("wg failed on interface 'wg0': exit code 7")
  })

  it('a missing interface exits 69, a refused one 77', async () => {
    const missing = await failure(wgCli({ wgPath: script('wg-nodev', "echo 'Unable to access interface: No such device' >&2; exit 1"), persistent }).show('wg9'))
    expect([missing.message, missing.exitCode]).toEqual(["interface 'wg9' not found or not a WireGuard interface", 69])
    const refused = await failure(wgCli({ wgPath: script('wg-eperm', "echo 'Unable to access interface: Operation not permitted' >&2; exit 1"), persistent }).show('wg0'))
    expect(refused.exitCode).toBe(77)
    expect(refused.message).toContain('run as root or with CAP_NET_ADMIN')
  })

  it('a missing `wg` exits 69 and names the path tried', async () => {
    const err = await failure(wgCli({ wgPath: join(dir, 'no-such-wg'), persistent }).show('wg0'))
    expect(err.exitCode).toBe(69)
    expect(err.message).toBe(`wg not found: is wireguard-tools installed? (tried '${join(dir, 'no-such-wg')}')`)
  })

  it('a call past its timeout is stopped and says so', async () => {
    const started = Date.now()
    const err = await failure(wgCli({ wgPath: script('wg-slow', 'exec sleep 20'), timeoutMs: 200, persistent }).show('wg0'))
    expect(err.message).toBe("wg on interface 'wg0' timed out")
    expect(Date.now() - started).toBeLessThan(10_000)
  })

  it('an abort stops the call and says cancelled, for show and set', async () => {
    const wg = wgCli({ wgPath: script('wg-hang', 'exec sleep 20'), timeoutMs: 30_000, persistent })
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
    expect((await wgCli({ wgPath: wg, persistent }).show('wg0', { signal: controller.signal })).peers).toHaveLength(1)
  })
})
