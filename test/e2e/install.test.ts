/**
 * A fresh install as a user does it on a real machine: `npm pack`, then `npm install -g <tarball>` into a temporary
 * prefix with the native addons' build scripts allowed (npm 11 runs them only when told). Uses the npm cache
 * (offline preferred), so it needs no network once the dependencies have been installed here once.
 * Needs no root: nothing outside the temporary directory is touched.
 */
import { execa } from 'execa'
import { existsSync } from 'node:fs'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const REPO = resolve(import.meta.dirname, '../..')
/** The install command the README documents. */
const INSTALL = ['install', '-g', '--allow-scripts=raw-socket,netlink', '--prefer-offline', '--no-audit', '--no-fund']

const haveBuild = existsSync(join(REPO, 'dist/bin/wgnat-client.cjs'))
if (!haveBuild) console.warn('SKIPPING install e2e test: no dist/bin (run npm run build)')

describe.skipIf(!haveBuild)('npm pack, then a global install into a fresh prefix', () => {
  let dir: string
  let tarball: string

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wgnat-install-'))
    await execa('npm', ['pack', '--pack-destination', dir, '--silent'], { cwd: REPO })
    const packed = (await readdir(dir)).filter((f) => f.endsWith('.tgz'))
    expect(packed).toHaveLength(1)
    tarball = join(dir, packed[0]!)
  }, 120_000)
  afterAll(async () => { if (dir !== undefined) await rm(dir, { recursive: true, force: true }) })

  it('installs with the addons built and no warning, and both CLIs run from the prefix\'s bin', async () => {
    const prefix = join(dir, 'prefix')
    const r = await execa('npm', [...INSTALL, '--prefix', prefix, tarball], { cwd: dir, all: true })
    expect(r.all).not.toMatch(/warn/i)
    const pkg = join(prefix, 'lib/node_modules/wgnat')
    expect(existsSync(join(pkg, 'node_modules/raw-socket/build/Release/raw.node'))).toBe(true)
    // Both addons load from where the CLIs will look for them.
    const load = await execa(process.execPath, ['-e', "const r = require('raw-socket'); const n = require('netlink'); console.log(typeof r.createSocket, typeof n.createRtNetlink)"], { cwd: pkg })
    expect(load.stdout.trim()).toBe('function function')
    for (const bin of ['wgnat-client', 'wgnat-server']) {
      const help = await execa(join(prefix, 'bin', bin), ['--help'])
      expect(help.stdout).toContain(`Usage: ${bin}`)
      expect(help.stdout).toContain('--interface')
      expect(help.stderr).toBe('')
    }
    // The entry of earlier versions, which units they installed still run, starts the same CLI.
    const earlier = await execa(process.execPath, [join(pkg, 'dist/bin/wgnat-client.mjs'), '--help'])
    expect(earlier.stdout).toContain('Usage: wgnat-client')
    // The packed package carries the systemd units install-service installs.
    expect(existsSync(join(pkg, 'systemd/wgnat-client@.service'))).toBe(true)
    expect(existsSync(join(pkg, 'systemd/wgnat-server@.service'))).toBe(true)
  }, 240_000)

  it('without the build scripts the addon is missing, and the command the client prints builds it', async () => {
    const prefix = join(dir, 'noscripts')
    await execa('npm', ['install', '-g', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund', '--prefix', prefix, tarball], { cwd: dir })
    const pkg = join(prefix, 'lib/node_modules/wgnat')
    const raw = join(pkg, 'node_modules/raw-socket/build/Release/raw.node')
    expect(existsSync(raw)).toBe(false)
    // What the client reports at start and in `status` (rawSocketFix): cd <package> && npm rebuild raw-socket.
    await execa('npm', ['rebuild', 'raw-socket'], { cwd: pkg })
    expect(existsSync(raw)).toBe(true)
  }, 240_000)
})
