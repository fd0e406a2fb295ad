/**
 * The shipped units, as `install-service` writes them, pass `systemd-analyze verify`; and the one-command install
 * writes the unit and the instance's env file (here into temporary directories, without systemctl: no root needed).
 */
import { execa } from 'execa'
import { existsSync } from 'node:fs'
import { copyFile, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const REPO = resolve(import.meta.dirname, '../..')
const BIN = (kind: string): string => join(REPO, `dist/bin/wgnat-${kind}.cjs`)
const HUB_KEY = 'yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk='

const analyze = await execa('systemd-analyze', ['--version'], { reject: false })
const haveAnalyze = analyze.exitCode === 0
if (!haveAnalyze) console.warn('SKIPPING systemd unit verification: no systemd-analyze (apt-get install systemd)')

describe.skipIf(!haveAnalyze)('systemd units', () => {
  let dir: string
  beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'wgnat-units-')) })
  afterAll(async () => { if (dir !== undefined) await rm(dir, { recursive: true, force: true }) })

  it.each([
    ['server', [] as string[], null],
    ['client', ['-r', HUB_KEY], `WGNAT_REGISTRY=${HUB_KEY}`]
  ])('wgnat-%s install-service writes a unit that passes systemd-analyze verify', async (kind, extra, envLine) => {
    const unitDir = join(dir, kind, 'units')
    const envDir = join(dir, kind, 'env')
    const r = await execa(process.execPath, [BIN(kind), 'install-service', '-i', 'wg0', '--unit-dir', unitDir, '--env-dir', envDir, '--no-start', ...extra])
    expect(r.stdout).toContain(`systemctl daemon-reload && systemctl enable --now wgnat-${kind}@wg0.service`)
    const unitPath = join(unitDir, `wgnat-${kind}@.service`)
    const unit = await readFile(unitPath, 'utf8')
    expect(unit).toContain(`ExecStart=${process.execPath} ${BIN(kind)}\n`)
    // Not restarted on bad options (64), nor the client on a state file that is not its own (65).
    expect(unit).toContain(kind === 'client' ? 'RestartPreventExitStatus=64 65\n' : 'RestartPreventExitStatus=64\n')
    for (const line of ['BindsTo=wg-quick@%i.service', 'EnvironmentFile=-/etc/wgnat/%i.env',
      'CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW', 'NoNewPrivileges=yes', 'ProtectSystem=strict', 'StateDirectory=wgnat', 'RuntimeDirectory=wgnat',
      // No CA bundle parsed at each start (wgnat makes no TLS connection; BENCHMARKS.md).
      'UnsetEnvironment=NODE_EXTRA_CA_CERTS']) {
      expect(unit).toContain(line + '\n')
    }
    expect(unit).toMatch(/^After=wg-quick@%i\.service/m)
    const env = await readFile(join(envDir, 'wg0.env'), 'utf8')
    if (envLine !== null) expect(env).toContain(envLine + '\n')
    expect((await stat(join(envDir, 'wg0.env'))).mode & 0o777).toBe(0o600)
    // Verify the template and an instance of it (a copy named like one).
    const instance = join(unitDir, `wgnat-${kind}@wg0.service`)
    await copyFile(unitPath, instance)
    for (const file of [unitPath, instance]) {
      const v = await execa('systemd-analyze', ['verify', '--man=no', file], { reject: false, all: true })
      expect({ file, rc: v.exitCode, out: v.all }).toEqual({ file, rc: 0, out: '' })
    }
  })

  it('the check catches a broken unit (control: verify is not a no-op here)', async () => {
    const bad = join(dir, 'bad@.service')
    await writeFile(bad, '[Service]\nExecStart=/nonexistent/wgnat\n')
    const v = await execa('systemd-analyze', ['verify', '--man=no', bad], { reject: false, all: true })
    expect(v.exitCode).not.toBe(0)
    expect(v.all).toMatch(/nonexistent/)
  })

  it('install-service keeps the options already in the env file', async () => {
    const envDir = join(dir, 'keep')
    await execa(process.execPath, [BIN('client'), 'install-service', '-i', 'wg1', '--unit-dir', join(dir, 'keep-units'), '--env-dir', envDir, '--no-start', '-r', HUB_KEY])
    await writeFile(join(envDir, 'wg1.env'), `WGNAT_INTERVAL=30s\nWGNAT_REGISTRY=${HUB_KEY}\n`)
    const other = 'xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg='
    await execa(process.execPath, [BIN('client'), 'install-service', '-i', 'wg1', '--unit-dir', join(dir, 'keep-units'), '--env-dir', envDir, '--no-start', '-r', other])
    expect(await readFile(join(envDir, 'wg1.env'), 'utf8')).toBe(`WGNAT_INTERVAL=30s\nWGNAT_REGISTRY=${other}\n`)
  })

  it.each([
    [['-i', 'wg0;rm'], /not an interface name/],
    [['-i', '..'], /'\.\.' is not an interface name/],
    [['-i', 'wg0', '-r', 'nokey'], /not a WireGuard public key/],
    // A client unit that could not start (no hub key, none in an env file yet): nothing is written.
    [['-i', 'wg9'], /wg9\.env' has no WGNAT_REGISTRY: give it \(-r <hub public key>\)/]
  ])('refuses bad input %j with exit 64, writing nothing', async (args, message) => {
    const out = join(dir, `refused-${args.join('').replace(/\W/g, '_')}`)
    const r = await execa(process.execPath, [BIN('client'), 'install-service', '--unit-dir', out, '--env-dir', out, '--no-start', ...args], { reject: false })
    expect(r.exitCode).toBe(64)
    expect(r.stderr).toMatch(message)
    expect(existsSync(out)).toBe(false)
  })
})
