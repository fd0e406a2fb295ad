import { describe, expect, it } from 'vitest'
import { run } from '../../src/server/cli.js'

async function capture (args: string[]): Promise<{ code: number, err: string[] }> {
  const err: string[] = []
  const code = await run(['node', 'x', ...args], { stderr: (l) => err.push(l), stdout: () => {}, stopSignal: Promise.resolve('test') })
  return { code, err }
}

describe('wgnat-server --expose on the command line', () => {
  it.each([
    ['80/tcp=nas', /'80\/tcp=nas': no :<port>/],
    ['70000/tcp=nas:80', /public port '70000' is not from 1 to 65535/],
    ['80/icmp=nas:80', /protocol 'icmp'/],
    ['80-70/udp=nas:80', /runs backwards/],
    ['0443/tcp=nas:443', /public port '0443' has a leading zero/],
    ['', /'' names no port/],
    [' , ', /' , ' names no port/]
  ])('refuses %j before touching anything: one line, exit 64', async (spec, why) => {
    const r = await capture(['-i', 'wg0', '--expose', '443/tcp=nas:443', '--expose', spec])
    expect(r.code).toBe(64)
    expect(r.err).toHaveLength(1)
    expect(r.err[0]).toMatch(why)
    expect(r.err[0]).toContain('--expose')
  })

  it('exposes -i needs an interface', async () => {
    const r = await capture(['exposes'])
    expect(r.code).toBe(64)
    expect(r.err.join('\n')).toMatch(/--interface/)
  })
})
