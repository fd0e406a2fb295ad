import { afterEach, describe, expect, it } from 'vitest'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CommandShell, shellQuote } from '../../src/shared/command-shell.js'
import { RunFileError } from '../../src/shared/run-file.js'

const shells: CommandShell[] = []
const shell = (timeoutMs = 5000): CommandShell => { const s = new CommandShell({ timeoutMs }); shells.push(s); return s }
afterEach(() => { for (const s of shells.splice(0)) s.close() })

describe('CommandShell', () => {
  it('returns stdout exactly as printed, over many commands, large and small', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wgnat-shell-'))
    try {
      const big = Array.from({ length: 20_000 }, (_, i) => `peer-${i}\t(none)\t198.18.1.${i % 250}:51820\t100.64.0.${i % 250}/32\t0\t0\t0\toff`).join('\n') + '\n'
      writeFileSync(join(dir, 'big'), big)
      writeFileSync(join(dir, 'no-newline'), 'abc')
      const s = shell()
      for (let i = 0; i < 3; i++) {
        expect(await s.run('cat', [join(dir, 'big')])).toBe(big)
        expect(await s.run('printf', ['a\\tb\\n'])).toBe('a\tb\n')
        expect(await s.run('cat', [join(dir, 'no-newline')])).toBe('abc')
        expect(await s.run('true', [])).toBe('')
      }
    } finally { rmSync(dir, { recursive: true, force: true }) }
  })

  it('passes every argument as one word, quotes and all, and runs commands one at a time', async () => {
    const s = shell()
    const odd = ["it's", 'a b', '$HOME', '`id`', '"x"', '; echo no']
    expect(await s.run('printf', ['%s|', ...odd])).toBe(odd.map((w) => `${w}|`).join(''))
    const all = await Promise.all([1, 2, 3, 4, 5].map(async (i) => await s.run('sh', ['-c', `sleep 0.0${6 - i}; echo ${i}`])))
    expect(all).toEqual(['1\n', '2\n', '3\n', '4\n', '5\n'])
  })

  it('a command that fails or is missing gives undefined (the caller runs it the ordinary way); the shell goes on', async () => {
    const s = shell()
    expect(await s.run('sh', ['-c', 'echo partial; exit 3'])).toBeUndefined()
    expect(await s.run('/nonexistent/wg', ['show'])).toBeUndefined()
    expect(await s.run('echo', ['still here'])).toBe('still here\n')
  })

  it('does not let a command read the commands that follow it', async () => {
    const s = shell()
    expect(await s.run('cat', [])).toBe('')
    expect(await s.run('echo', ['next'])).toBe('next\n')
  })

  it('times out a command that hangs, then starts afresh', async () => {
    const s = shell(200)
    const err = await s.run('sleep', ['10']).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(RunFileError)
    expect((err as RunFileError).timedOut).toBe(true)
    expect(await s.run('echo', ['again'])).toBe('again\n')
  })

  it('stops when the signal aborts, as cancelled', async () => {
    const s = shell()
    const ac = new AbortController()
    setTimeout(() => { ac.abort() }, 100)
    const err = await s.run('sleep', ['10'], ac.signal).catch((e: unknown) => e)
    expect((err as RunFileError).isCanceled).toBe(true)
    expect(await s.run('echo', ['ok'])).toBe('ok\n')
  })

  it('without a shell to run, gives undefined', async () => {
    const s = new CommandShell({ timeoutMs: 1000, shell: '/nonexistent/sh' })
    shells.push(s)
    expect(await s.run('echo', ['x'])).toBeUndefined()
  })

  it('shellQuote', () => {
    expect(shellQuote("a'b")).toBe("'a'\\''b'")
  })
})
