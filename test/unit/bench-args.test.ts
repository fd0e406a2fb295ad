import { afterEach, describe, expect, it, vi } from 'vitest'
import { benchArgs } from '../../scripts/bench/bench-args.js'

class Exit extends Error { constructor (readonly code: number | undefined) { super(`exit ${String(code)}`) } }

const OPTIONS = { runs: { type: 'string', default: '5' }, verbose: { type: 'boolean', default: false }, 'before-bin': { type: 'string' } } as const

function capture (): { out: string[], err: string[] } {
  const out: string[] = []
  const err: string[] = []
  vi.spyOn(process, 'exit').mockImplementation((code?: string | number | null) => { throw new Exit(code === null ? undefined : Number(code)) })
  vi.spyOn(console, 'log').mockImplementation((s: string) => { out.push(s) })
  vi.spyOn(console, 'error').mockImplementation((s: string) => { err.push(s) })
  return { out, err }
}

describe('benchArgs (the bench scripts\' options)', () => {
  afterEach(() => { vi.restoreAllMocks() })

  it('parses good options as parseArgs does', () => {
    expect(benchArgs({ args: ['--runs', '3', '--verbose'], options: OPTIONS }).values).toEqual({ runs: '3', verbose: true })
  })

  it('--help lists every option with its default and exits 0', () => {
    const { out } = capture()
    expect(() => benchArgs({ args: ['--runs', '3', '--help'], options: OPTIONS })).toThrow(new Exit(0))
    const text = out.join('\n')
    expect(text).toContain('--runs <value> (default: 5)')
    expect(text).toContain('--before-bin <value>\n')
    expect(text).toMatch(/--verbose\n/)
  })

  it('an unknown option is one line on stderr and exit 2, not a stack trace', () => {
    const { err } = capture()
    expect(() => benchArgs({ args: ['--runz', '3'], options: OPTIONS })).toThrow(new Exit(2))
    expect(err).toHaveLength(1)
    expect(err[0]).toMatch(/Unknown option '--runz'.*--help lists the options/)
    expect(err[0]).not.toContain('\n')
  })

  it('a string option without its value fails the same way', () => {
    const { err } = capture()
    expect(() => benchArgs({ args: ['--runs'], options: OPTIONS })).toThrow(new Exit(2))
    expect(err[0]).toMatch(/--runs <value>' argument missing/)
  })
})
