import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { installService } from '../../src/shared/service/install-service.js'

const KEY = 'xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg='

describe('install-service: a client unit needs the hub key, in the env file as systemd will read it', () => {
  let dir: string
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'wgnat-install-')) })
  afterEach(() => { rmSync(dir, { recursive: true, force: true }) })
  const install = async (): Promise<unknown> => await installService({ kind: 'client', iface: 'wg0', unitDir: join(dir, 'units'), envDir: dir, env: {}, start: false, execStart: ['/usr/bin/node', '/x.cjs'], required: ['WGNAT_REGISTRY'] })

  it.each([
    ['no such line', 'WGNAT_INTERVAL=30s\n'],
    ['an empty value followed by another line', 'WGNAT_REGISTRY=\nWGNAT_INTERVAL=30s\n'],
    ['an empty quoted value', 'WGNAT_REGISTRY=""\n'],
    ['a key, then an empty assignment (systemd takes the last)', `WGNAT_REGISTRY=${KEY}\n  WGNAT_REGISTRY=\n`]
  ])('refuses %s, writing no unit', async (_what, text) => {
    writeFileSync(join(dir, 'wg0.env'), text)
    await expect(install()).rejects.toMatchObject({ exitCode: 64, message: expect.stringMatching(/wg0\.env' has no WGNAT_REGISTRY: give it \(-r <hub public key>\)$/) })
    expect(existsSync(join(dir, 'units'))).toBe(false)
  })

  it('takes a key already in the file', async () => {
    writeFileSync(join(dir, 'wg0.env'), `WGNAT_REGISTRY="${KEY}"\n`)
    await install()
    expect(existsSync(join(dir, 'units', 'wgnat-client@.service'))).toBe(true)
  })
})
