import { describe, expect, it } from 'vitest'
import { RunFileError, runFile } from '../../src/shared/run-file.js'
import { explain } from '../../src/shared/wg.js'

const failure = async (p: Promise<unknown>): Promise<RunFileError> => await p.then(() => { throw new Error('resolved') }, (e: unknown) => e as RunFileError)

describe('runFile', () => {
  it('resolves with stdout as printed (final newline kept)', async () => {
    expect(await runFile('printf', ['a\\tb\\n'], { timeoutMs: 5000 })).toBe('a\tb\n')
  })

  it('a non-zero exit carries the exit code and stderr, and explain() quotes stderr\'s first line', async () => {
    const err = await failure(runFile('sh', ['-c', 'echo "Unable to modify interface: Operation not permitted" >&2; exit 1'], { timeoutMs: 5000 }))
    expect(err).toBeInstanceOf(RunFileError)
    expect(err.exitCode).toBe(1)
    expect(err.timedOut).toBe(false)
    expect(explain(err, 'wg0').exitCode).toBe(77)
    const other = await failure(runFile('sh', ['-c', 'echo "boom" >&2; exit 3'], { timeoutMs: 5000 }))
    expect(explain(other, 'wg0').message).toBe("wg failed on interface 'wg0': 'boom'")
  })

  it('a missing program is ENOENT, and explain() says to install wireguard-tools (exit 69)', async () => {
    const err = await failure(runFile('/nonexistent/wg', ['show'], { timeoutMs: 5000 }))
    expect(err.code).toBe('ENOENT')
    const e = explain(err, 'wg0', '/nonexistent/wg')
    expect(e.exitCode).toBe(69)
    expect(e.message).toMatch(/wg not found/)
  })

  it('kills a program that runs past its timeout', async () => {
    const t0 = Date.now()
    const err = await failure(runFile('sleep', ['10'], { timeoutMs: 200 }))
    expect(err.timedOut).toBe(true)
    expect(Date.now() - t0).toBeLessThan(5000)
    expect(explain(err, 'wg0').message).toMatch(/timed out/)
  })

  it('stops when its signal aborts, as cancelled (not a timeout)', async () => {
    const ac = new AbortController()
    const p = failure(runFile('sleep', ['10'], { timeoutMs: 5000, signal: ac.signal }))
    setTimeout(() => { ac.abort() }, 100)
    const err = await p
    expect(err.isCanceled).toBe(true)
    expect(err.timedOut).toBe(false)
    expect(explain(err, 'wg0').message).toBe('wg: cancelled')
  })
})
