import { describe, expect, it } from 'vitest'
import { renderUnit, systemdWord, upsertEnv } from '../../src/shared/service/unit-file.js'

describe('renderUnit', () => {
  const template = '[Service]\nEnvironment=WGNAT_INTERFACE=%i\nExecStart=/usr/local/bin/wgnat-server\nRestart=on-failure\n'
  it('points ExecStart at this installation and changes nothing else', () => {
    expect(renderUnit(template, ['/usr/bin/node', '/usr/lib/node_modules/wgnat/dist/bin/wgnat-server.cjs']))
      .toBe('[Service]\nEnvironment=WGNAT_INTERFACE=%i\nExecStart=/usr/bin/node /usr/lib/node_modules/wgnat/dist/bin/wgnat-server.cjs\nRestart=on-failure\n')
  })
  it('quotes paths with spaces and escapes specifiers', () => {
    expect(renderUnit(template, ['/opt/my node/bin/node', '/x/100%/a$b'])).toContain('ExecStart="/opt/my node/bin/node" /x/100%%/a$$b\n')
  })
  it('refuses a template without ExecStart', () => {
    expect(() => renderUnit('[Service]\n', ['/n'])).toThrow(/ExecStart/)
  })
  it.each([['plain', 'plain'], ['a b', '"a b"'], ['say "hi"', '"say \\"hi\\""'], ['%i', '%%i']])('word %j -> %s', (word, out) => {
    expect(systemdWord(word)).toBe(out)
  })
})

describe('upsertEnv', () => {
  const key = 'yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk='
  it('appends to a new file, keeping the comment', () => {
    expect(upsertEnv('# options\n', { WGNAT_REGISTRY: key })).toBe(`# options\nWGNAT_REGISTRY=${key}\n`)
  })
  it('replaces an existing line in place, keeps the others', () => {
    expect(upsertEnv('WGNAT_RELAY=true\nWGNAT_REGISTRY=old\n# note\n', { WGNAT_REGISTRY: key }))
      .toBe(`WGNAT_RELAY=true\nWGNAT_REGISTRY=${key}\n# note\n`)
  })
  it('replaces an indented line and drops later ones for the same name (systemd takes the last)', () => {
    expect(upsertEnv('WGNAT_REGISTRY=old\n  WGNAT_REGISTRY = older\nWGNAT_RELAY=true\n', { WGNAT_REGISTRY: key }))
      .toBe(`WGNAT_REGISTRY=${key}\nWGNAT_RELAY=true\n`)
  })
  it('quotes a value with spaces', () => {
    expect(upsertEnv('', { WGNAT_STUN: 'a b' })).toBe('WGNAT_STUN="a b"\n')
  })
  it.each([[{ PATH: '/x' }, /WGNAT_/], [{ WGNAT_X: 'a\nWGNAT_Y=b' }, /one line/]])('refuses %j', (vars, message) => {
    expect(() => upsertEnv('', vars)).toThrow(message)
  })
})
