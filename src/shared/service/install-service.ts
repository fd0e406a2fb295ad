import { execa } from 'execa'
import { Command, Option } from 'commander'
import { existsSync, realpathSync } from 'node:fs'
import { open, readFile, rename } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runCommand, type RunIo } from '../cli.js'
import { WgnatError, messageOf, quote } from '../errors.js'
import { isWgKey } from '../wg-dump.js'
import { renderUnit, upsertEnv } from './unit-file.js'
import { makeDirSync } from '../make-dir.js'
import { IFACE_RE } from '../interface-name.js'

export type ServiceKind = 'server' | 'client'

/** The value systemd gives `name` from EnvironmentFile text: its last assignment, unquoted and trimmed ('' if none). */
function lastValue (text: string, name: string): string {
  let value = ''
  for (const m of text.matchAll(new RegExp(`^[ \\t]*${name}[ \\t]*=(.*)$`, 'gm'))) value = (m[1] ?? '').trim().replace(/^"(.*)"$|^'(.*)'$/, '$1$2').trim()
  return value
}

/** The option that sets a required variable, for the error that asks for it. */
const REQUIRED_OPTION: Record<string, string> = { WGNAT_REGISTRY: '-r <hub public key>' }

export interface InstallServiceInit {
  kind: ServiceKind
  iface: string
  unitDir: string
  envDir: string
  /** Variables to set in `<envDir>/<iface>.env`. */
  env: Record<string, string>
  /** Run `systemctl daemon-reload` and `systemctl enable --now`. */
  start: boolean
  /** The command the unit runs: node and this CLI's script. @default process.execPath, process.argv[1] */
  execStart?: string[]
  /** Variables the service cannot start without, set here or already in the env file; nothing is written otherwise. */
  required?: string[]
}

export interface InstallServiceResult {
  unitPath: string
  envPath: string
  instance: string
  started: boolean
}

/** Find the shipped unit (`systemd/wgnat-<kind>@.service` at the package root), from the bundle or the sources. */
export function shippedUnitPath (kind: ServiceKind): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'systemd', `wgnat-${kind}@.service`)
    if (existsSync(candidate)) return candidate
    dir = dirname(dir)
  }
  throw new WgnatError(`wgnat-${kind}@.service not found in this installation (the package's systemd/ folder)`, 69)
}

/** Write a file atomically (temporary file, fsync, rename). */
async function writeAtomic (path: string, text: string, mode: number): Promise<void> {
  makeDirSync(dirname(path), 0o755)
  const tmp = `${path}.${process.pid}.tmp`
  const fh = await open(tmp, 'w', mode)
  try {
    await fh.writeFile(text)
    await fh.sync()
  } finally {
    await fh.close()
  }
  await rename(tmp, path)
}

function writeError (path: string, err: unknown): WgnatError {
  const code = (err as NodeJS.ErrnoException).code
  return new WgnatError(`cannot write ${quote(path)}: ${messageOf(err)}${code === 'EACCES' || code === 'EPERM' ? ' (run as root)' : ''}`, code === 'EACCES' || code === 'EPERM' ? 77 : 73)
}

/** Install the unit template and the instance's env file, then (unless `start` is false) enable and start it. */
export async function installService (init: InstallServiceInit): Promise<InstallServiceResult> {
  const name = `wgnat-${init.kind}@.service`
  const instance = `wgnat-${init.kind}@${init.iface}.service`
  const script = process.argv[1] === undefined ? '' : realpathSync(process.argv[1])
  const unit = renderUnit(await readFile(shippedUnitPath(init.kind), 'utf8'), init.execStart ?? [process.execPath, script])
  const unitPath = join(init.unitDir, name)
  const envPath = join(init.envDir, `${init.iface}.env`)
  let env = ''
  try {
    env = await readFile(envPath, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new WgnatError(`cannot read ${quote(envPath)}: ${messageOf(err)}`, 65)
    env = `# Options of ${instance}: WGNAT_* variables, as listed by \`wgnat-${init.kind} --help\`.\n`
  }
  const envText = upsertEnv(env, init.env)
  // Nothing is written for a client that could not start: it needs the hub's key, given now or already in the file.
  for (const name of init.required ?? []) {
    if (lastValue(envText, name) === '') throw new WgnatError(`${quote(envPath)} has no ${name}: give it (${REQUIRED_OPTION[name] ?? name})`, 64)
  }
  try { await writeAtomic(unitPath, unit, 0o644) } catch (err) { throw writeError(unitPath, err) }
  try { await writeAtomic(envPath, envText, 0o600) } catch (err) { throw writeError(envPath, err) }
  if (init.start) {
    for (const args of [['daemon-reload'], ['enable', '--now', instance]]) {
      const r = await execa('systemctl', args, { reject: false })
      if ((r as { code?: string }).code === 'ENOENT') throw new WgnatError('systemctl not found: is this a systemd machine? The unit is written; start it yourself', 69)
      if (r.exitCode !== 0) throw new WgnatError(`systemctl ${args.join(' ')} failed: ${quote(String(r.stderr).split('\n')[0] ?? '')}`, 1)
    }
  }
  return { unitPath, envPath, instance, started: init.start }
}

/** `wgnat-<kind> install-service`: the command line around installService. */
export function installServiceProgram (kind: ServiceKind): Command {
  const program = new Command(`wgnat-${kind} install-service`)
    .description(`Install wgnat-${kind}@.service (instance = interface) with its options in <env-dir>/<interface>.env, then enable and start it.`)
    .addOption(new Option('-i, --interface <name>', 'WireGuard interface: the unit instance').makeOptionMandatory())
    .addOption(new Option('--unit-dir <dir>', 'where the unit file goes').default('/etc/systemd/system'))
    .addOption(new Option('--env-dir <dir>', 'where the instance\'s EnvironmentFile goes').default('/etc/wgnat'))
    .addOption(new Option('--no-start', 'only write the files; do not run systemctl'))
  if (kind === 'client') program.addOption(new Option('-r, --registry <public-key>', 'public key of the hub peer (written as WGNAT_REGISTRY)'))
  return program
}

export async function installServiceCommand (kind: ServiceKind, argv: string[], io?: RunIo): Promise<number> {
  return await runCommand(installServiceProgram(kind), argv, async (opts, out) => {
    const iface = opts.interface as string
    // wg-quick's rule for interface names, and Linux's: not . or .. either (the name is also a file's here).
    if (!IFACE_RE.test(iface) || iface === '.' || iface === '..') throw new WgnatError(`${quote(iface)} is not an interface name`, 64)
    const env: Record<string, string> = {}
    if (typeof opts.registry === 'string') {
      if (!isWgKey(opts.registry)) throw new WgnatError(`${quote(opts.registry)} is not a WireGuard public key`, 64)
      env.WGNAT_REGISTRY = opts.registry
    }
    const r = await installService({ kind, iface, unitDir: opts.unitDir as string, envDir: opts.envDir as string, env, start: opts.start as boolean, required: kind === 'client' ? ['WGNAT_REGISTRY'] : [] })
    out(`wrote ${r.unitPath}\nwrote ${r.envPath} (options as WGNAT_* variables)\n`)
    out(r.started ? `enabled and started ${r.instance}; logs: journalctl -u ${r.instance}\n` : `start it with: systemctl daemon-reload && systemctl enable --now ${r.instance}\n`)
  }, io)
}
