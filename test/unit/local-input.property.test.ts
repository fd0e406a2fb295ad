import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { clientProgram } from '../../src/client/cli.js'
import { parseStateFile } from '../../src/client/state-store.js'
import { serverProgram } from '../../src/server/cli.js'
import { runDaemon } from '../../src/shared/cli.js'
import { WgnatError } from '../../src/shared/errors.js'
import { mutated, returnsOrOwnError, TEXT_RUNS } from '../helpers/hostile.js'
import { testKey } from '../helpers/keys.js'

const KEY = testKey('hub')

describe('client state file (property)', { timeout: 180_000 }, () => {
  const valid = fc.array(fc.integer({ min: 0, max: 50 }).map((i) => testKey(`m${i}`)), { maxLength: 5 })
    .map((managed) => JSON.stringify({ version: 1, interface: 'wg0', managed }, null, 2) + '\n')

  it(`${TEXT_RUNS} mutated and arbitrary files: the managed keys or a one-line WgnatError naming the file`, () => {
    fc.assert(fc.property(mutated(valid), (text) => {
      const r = returnsOrOwnError(() => parseStateFile(text, '/var/lib/wgnat/wg0.json', 'wg0'))
      if (r instanceof WgnatError) expect(r.message).toContain("'/var/lib/wgnat/wg0.json'")
      else for (const k of r) expect(k).toMatch(/^[A-Za-z0-9+/]{43}=$/)
    }), { numRuns: TEXT_RUNS })
  })

  it('a file for another interface is refused', () => {
    expect(() => parseStateFile(JSON.stringify({ version: 1, interface: 'wg1', managed: [] }), 'f', 'wg0')).toThrow(/not a wgnat state file for 'wg0'/)
  })
})

describe('command-line options (property)', { timeout: 300_000 }, () => {
  const words = fc.constantFrom('-i', 'wg0', '-r', KEY, '-t', '1m', '--interval', '--keepalive', '25', '--registry-address', '100.64.0.1',
    '--registry-port', '51820', '--state-dir', '/tmp/x', '--direct-timeout', '10s', '--no-push', '--stun', '198.18.1.2:3478',
    '--hub-stun-port', '0', '--punch-ttl', '2', '--nat-check', '5s', '--no-raw', '--log-level', 'debug', '--log-format', 'json',
    '--port', '--poll', '--relay', '--no-stun', '--stun-port', '--help', '-h', '--', '-', '=', '--interval=5s', '-t5s')
  const argv = fc.array(fc.oneof({ weight: 3, arbitrary: words }, { weight: 1, arbitrary: fc.string({ maxLength: 20, unit: 'binary' }) }), { maxLength: 10 })

  for (const [name, program] of [['client', clientProgram], ['server', serverProgram]] as const) {
    it(`${name}: ${TEXT_RUNS} arbitrary argument lists: starts (0), help (0) or one usage line (64); never a crash`, async () => {
      await fc.assert(fc.asyncProperty(argv, async (args) => {
        const err: string[] = []
        const code = await runDaemon(program(), ['node', name, ...args], async () => ({ async stop () {} }), {
          stderr: (l) => err.push(l),
          stdout: () => {},
          stopSignal: Promise.resolve('test')
        })
        expect([0, 64]).toContain(code)
        if (code === 64) {
          expect(err.length).toBeGreaterThan(0)
          for (const l of err) expect(l).not.toMatch(/\n|at .*\.(ts|js):\d/)
        }
      }), { numRuns: TEXT_RUNS })
    })
  }
})
