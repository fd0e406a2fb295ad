import { describe, expect, it } from 'vitest'
import { CLIENT_OPTION_FIELDS, clientProgram } from '../../src/client/cli.js'
import { SERVER_OPTION_FIELDS, serverProgram } from '../../src/server/cli.js'
import { applyOnOffEnv, unsetEmptyEnv } from '../../src/shared/cli.js'
import { testKey } from '../helpers/keys.js'
import type { Command } from 'commander'

const KEY = testKey('hub')

/** Parse `args` with `program` under `env` (commander reads process.env), then the on/off fix-up; its error or options. */
function parse (program: Command, args: string[], env: Record<string, string>): { error?: string, opts: Record<string, unknown> } {
  const saved = { ...process.env }
  Object.assign(process.env, env)
  try {
    program.exitOverride()
    const restore = unsetEmptyEnv(program, process.env)
    try {
      program.parse(['node', 'x', ...args])
      const error = applyOnOffEnv(program, process.env)
      return { error, opts: program.opts() }
    } finally {
      restore()
    }
  } finally {
    for (const k of Object.keys(env)) delete process.env[k]
    Object.assign(process.env, saved)
  }
}

describe('on/off options from the environment take its value', () => {
  it.each([
    ['WGNAT_RELAY=false turns relaying off, not on', serverProgram, { WGNAT_RELAY: 'false' }, 'relay', false],
    ['WGNAT_RELAY=true turns it on', serverProgram, { WGNAT_RELAY: 'true' }, 'relay', true],
    ['WGNAT_RELAY=Yes turns it on (any case)', serverProgram, { WGNAT_RELAY: 'Yes' }, 'relay', true],
    ['WGNAT_RELAY= (empty) is as if unset: the hub\'s own default', serverProgram, { WGNAT_RELAY: '' }, 'relay', undefined],
    ['WGNAT_NO_PUSH=  (blank) is as if unset: push stays on', clientProgram, { WGNAT_NO_PUSH: '  ' }, 'push', true],
    ['WGNAT_NO_STUN=0 keeps the STUN server', serverProgram, { WGNAT_NO_STUN: '0' }, 'stun', true],
    ['WGNAT_NO_STUN=1 turns it off', serverProgram, { WGNAT_NO_STUN: '1' }, 'stun', false],
    ['WGNAT_NO_PUSH=false keeps push', clientProgram, { WGNAT_NO_PUSH: 'false' }, 'push', true],
    ['WGNAT_NO_PUSH=on turns push off', clientProgram, { WGNAT_NO_PUSH: 'on' }, 'push', false],
    ['WGNAT_NO_RAW=no keeps raw sockets', clientProgram, { WGNAT_NO_RAW: 'no' }, 'raw', true]
  ])('%s', (_what, program, env, key, value) => {
    const args = program === clientProgram ? ['-i', 'wg0', '-r', KEY] : ['-i', 'wg0']
    const r = parse(program(), args, env)
    expect(r.error).toBeUndefined()
    expect(r.opts[key]).toBe(value)
  })

  it('refuses a value that is neither, naming the variable and quoting the value', () => {
    expect(parse(serverProgram(), ['-i', 'wg0'], { WGNAT_RELAY: 'maybe' }).error).toBe("WGNAT_RELAY='maybe': not on or off (1, true, yes, on / 0, false, no, off)")
  })

  it('an option given on the command line wins over its variable, which is then not checked', () => {
    const r = parse(serverProgram(), ['-i', 'wg0', '--no-relay'], { WGNAT_RELAY: 'maybe' })
    expect(r.error).toBeUndefined()
    expect(r.opts.relay).toBe(false)
  })
})

describe('option names as the daemons read them', () => {
  it.each([
    ['wgnat-server', serverProgram, SERVER_OPTION_FIELDS],
    ['wgnat-client', clientProgram, CLIENT_OPTION_FIELDS]
  ])('every field the %s daemon reads is the name commander gives one of its options', (_name, program, fields) => {
    const attributes = new Set(program().options.map((o) => o.attributeName()))
    expect(Object.keys(fields).filter((f) => !attributes.has(f))).toEqual([])
  })

  it('--poll reaches the server as `poll`, in ms (it was read as `pollMs` and ignored)', () => {
    expect(parse(serverProgram(), ['-i', 'wg0', '--poll', '2s'], {}).opts.poll).toBe(2000)
    expect(parse(serverProgram(), ['-i', 'wg0'], { WGNAT_POLL: '250ms' }).opts.poll).toBe(250)
  })
})

describe('values the audit found let through', () => {
  it('a duration too long for a timer is refused (it fired at once, with a multi-line warning)', () => {
    expect(() => parse(clientProgram(), ['-i', 'wg0', '-r', KEY, '--no-push', '-t', '99999h'], {})).toThrow(/'99999h' is over the maximum of 596h/)
    expect(parse(clientProgram(), ['-i', 'wg0', '-r', KEY, '-t', '596h'], {}).opts.interval).toBe(596 * 3600_000)
  })

  it('--stun checks each of a comma-separated list, quoting the bad one', () => {
    expect(() => parse(clientProgram(), ['-i', 'wg0', '-r', KEY, '--stun', 'a,b:3478'], {})).toThrow(/'a' is not host:port/)
    expect(() => parse(clientProgram(), ['-i', 'wg0', '-r', KEY, '--stun', '1.2.3.4x,127.0.0.1:3478'], {})).toThrow(/'1.2.3.4x' is not host:port/)
    expect(parse(clientProgram(), ['-i', 'wg0', '-r', KEY, '--stun', 'a:3478, b:3479', '--stun', 'c:1'], {}).opts.stun).toEqual(['a:3478', 'b:3479', 'c:1'])
  })

  it('an empty variable for an option with a value is as if unset (an env file\'s WGNAT_EXPOSE= means none)', () => {
    const r = parse(serverProgram(), ['-i', 'wg0'], { WGNAT_EXPOSE: '', WGNAT_SERVER_STATUS_SOCKET: ' ', WGNAT_POLL: '' })
    expect(r.error).toBeUndefined()
    expect(r.opts).toMatchObject({ expose: [], poll: 1000 })
    expect(r.opts.statusSocket).toBeUndefined()
  })

  it('an empty or over-long --status-socket is refused', () => {
    expect(() => parse(serverProgram(), ['-i', 'wg0', '--status-socket', ''], {})).toThrow(/the socket path is empty/)
    expect(() => parse(clientProgram(), ['-i', 'wg0', '-r', KEY, '--status-socket', '/run/' + 'x'.repeat(110)], {})).toThrow(/longer than a Unix socket path may be/)
  })
})
