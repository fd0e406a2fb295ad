import { describe, expect, it } from 'vitest'
import { ExposeSpecError, parseExposeFile, parseExposeSpec } from '../../src/server/expose/expose-spec.js'
import { testKey } from '../helpers/keys.js'

const KEY = testKey('nas')

describe('parseExposeSpec', () => {
  it.each([
    ['443/tcp=nas:443', { publicPorts: { from: 443, to: 443 }, proto: 'tcp', peer: 'nas', targetPorts: { from: 443, to: 443 } }],
    ['27015/udp=10.8.0.5:27015', { publicPorts: { from: 27015, to: 27015 }, proto: 'udp', peer: '10.8.0.5', targetPorts: { from: 27015, to: 27015 } }],
    ['8080/tcp=nas:80', { publicPorts: { from: 8080, to: 8080 }, proto: 'tcp', peer: 'nas', targetPorts: { from: 80, to: 80 } }],
    ['8000-8010/tcp=nas:8000', { publicPorts: { from: 8000, to: 8010 }, proto: 'tcp', peer: 'nas', targetPorts: { from: 8000, to: 8010 } }],
    ['8000-8010/tcp=nas:9000', { publicPorts: { from: 8000, to: 8010 }, proto: 'tcp', peer: 'nas', targetPorts: { from: 9000, to: 9010 } }],
    ['8000-8010/udp=nas:9000-9010', { publicPorts: { from: 8000, to: 8010 }, proto: 'udp', peer: 'nas', targetPorts: { from: 9000, to: 9010 } }],
    ['1/tcp=a:65535', { publicPorts: { from: 1, to: 1 }, proto: 'tcp', peer: 'a', targetPorts: { from: 65535, to: 65535 } }],
    ['53/udp=[fd00::5]:53', { publicPorts: { from: 53, to: 53 }, proto: 'udp', peer: 'fd00::5', targetPorts: { from: 53, to: 53 } }],
    [`443/tcp=${KEY}:8443`, { publicPorts: { from: 443, to: 443 }, proto: 'tcp', peer: KEY, targetPorts: { from: 8443, to: 8443 } }],
    ['  443/tcp=nas:443  ', { publicPorts: { from: 443, to: 443 }, proto: 'tcp', peer: 'nas', targetPorts: { from: 443, to: 443 } }]
  ])('accepts %s', (text, want) => {
    expect(parseExposeSpec(text)).toEqual({ text: text.trim(), ...want })
  })

  it.each([
    ['', /not a spec/],
    ['443', /not a spec/],
    ['443/tcp', /not a spec/],
    ['443/tcp=nas', /no :<port>/],
    ['443/tcp=nas:', /target port '' is not a port/],
    ['443/tcp=:443', /no :<port>/],
    ['443/sctp=nas:443', /protocol 'sctp'/],
    ['443/TCP=nas:443', /not a spec/],
    ['0/tcp=nas:443', /public port '0' is not from 1 to 65535/],
    ['65536/tcp=nas:443', /public port '65536'/],
    ['443/tcp=nas:0', /target port '0'/],
    ['443/tcp=nas:65536', /target port '65536'/],
    ['0443/tcp=nas:443', /public port '0443'/],
    ['99999999999/tcp=nas:1', /public port/],
    ['-443/tcp=nas:443', /not a spec/],
    ['8010-8000/tcp=nas:8000', /runs backwards/],
    ['8000-8010/tcp=nas:9000-9005', /differ in length/],
    ['65530-65535/tcp=nas:65534', /runs past port 65535/],
    ['1-5000/tcp=nas:1', /longer than 4096/],
    ['443/tcp=fd00::5:443', /IPv6 peer is written \[address\]:port/],
    ['443/tcp=[fd00::5:443', /IPv6 peer is written/],
    ['443/tcp=[10.0.0.1]:443', /not an IPv6 address/],
    ['443/tcp=na s:443', /blanks/],
    ['443/tcp=nas:44x', /target port '44x'/],
    ['443 /tcp=nas:443', /not a spec/]
  ])('refuses %j, quoting it', (text, why) => {
    let error: unknown
    try { parseExposeSpec(text) } catch (err) { error = err }
    expect(error).toBeInstanceOf(ExposeSpecError)
    const e = error as ExposeSpecError
    expect(e.exitCode).toBe(64)
    expect(e.message).toContain(`'${text.trim()}'`)
    expect(e.message).toMatch(why)
    expect(e.message).not.toContain('\n')
  })
})

describe('parseExposeFile', () => {
  it('reads one spec per line, skipping blanks and comments', () => {
    const specs = parseExposeFile('# web\n443/tcp=nas:443   # https\n\n   \n27015/udp=10.8.0.5:27015\n#8080/tcp=x:1\n', '/etc/x')
    expect(specs.map((s) => s.text)).toEqual(['443/tcp=nas:443', '27015/udp=10.8.0.5:27015'])
  })

  it('an empty file is no exposes', () => {
    expect(parseExposeFile('', 'f')).toEqual([])
  })

  it('names the file and line of a bad spec', () => {
    expect(() => parseExposeFile('443/tcp=nas:443\n\n80/tcp=nas\n', '/etc/wgnat/wg0.expose')).toThrow(/^expose file '\/etc\/wgnat\/wg0.expose' line 3: expose '80\/tcp=nas': no :<port>/)
  })
})
