import { Command, CommanderError } from 'commander'
import { EXIT_UNAVAILABLE, UsageError, WgnatError } from '../../src/shared/errors.js'
import { describeLab, describeListEntry } from './describe.js'
import { createLab, labSupport } from './lab.js'
import { LabError } from './lab-error.js'
import { isLabId } from './plan.js'
import { parseSiteList } from './site-list.js'
import { listStateIds, readState } from './state-file.js'
import { downAll, downLab, labStatus, sweepStaleLabs, type DownReport } from './sweep.js'

/** The lab CLI as a function: commands throw WgnatError subclasses carrying the exit code. */

export interface CliIo {
  stdout: (text: string) => void
  stderr: (text: string) => void
}

export const CLI_PATH = 'node dist/scripts/lab/cli.js'

const defaultIo: CliIo = {
  stdout: text => { process.stdout.write(text) },
  stderr: text => { process.stderr.write(text) }
}

export async function run (argv: string[], io: CliIo = defaultIo): Promise<void> {
  const program = new Command('wgnat-lab')
    .description('NAT lab: a small internet of network namespaces with a WireGuard hub and NATed clients')
    .exitOverride()
    // Commander's own error line is dropped: the entry point prints the UsageError thrown below.
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr, outputError: () => {} })

  program.command('up')
    .description('create a lab and leave it running (remove it with down)')
    .requiredOption('--sites <list>', 'sites as name:kind[:client+client@port], comma-separated; kinds: public, easy, hard, clash, udpblock; easy+upnp and hard+upnp run miniupnpd on the router; +ipv6 (hard+ipv6, hard+upnp+ipv6) makes a site dual stack')
    .option('--id <id>', 'lab id, 1-8 of [a-z0-9] (default: random)')
    .option('--hub-forwarding', 'let the hub route between clients (ip_forward=1)', false)
    .option('--hub-allowed-ips <scope>', "clients' AllowedIPs for the hub peer: host (100.64.0.1/32) or subnet (100.64.0.0/24)", 'subnet')
    .option('--bare', 'no WireGuard: namespaces, routers and addresses only (make the hub with wgnat-server init)', false)
    .action(async (opts: { sites: string, id?: string, hubForwarding: boolean, hubAllowedIps: string, bare: boolean }) => {
      if (opts.id !== undefined && !isLabId(opts.id)) throw new UsageError(`--id '${opts.id}': expected 1-8 of [a-z0-9]`)
      if (opts.hubAllowedIps !== 'host' && opts.hubAllowedIps !== 'subnet') throw new UsageError(`--hub-allowed-ips '${opts.hubAllowedIps}': expected host or subnet`)
      const sites = parseSiteList(opts.sites)
      const support = await labSupport()
      if (!support.ok) throw new WgnatError(`cannot run a lab here: ${support.reason}`, EXIT_UNAVAILABLE)
      const started = Date.now()
      const lab = await createLab({ id: opts.id, sites, hubForwarding: opts.hubForwarding, hubAllowedIps: opts.hubAllowedIps, persistent: true, bare: opts.bare })
      io.stdout(describeLab(readState(lab.id), CLI_PATH) + '\n')
      io.stderr(`lab ${lab.id} up in ${Date.now() - started} ms\n`)
    })

  program.command('down')
    .description('remove labs: one by id, the stale ones (owner process gone), or all')
    .option('--id <id>', 'the lab to remove')
    .option('--stale', 'labs whose owner process is gone (persistent labs from up are kept)', false)
    .option('--all', 'every lab, and namespaces named like a lab with no state file', false)
    .action(async (opts: { id?: string, stale: boolean, all: boolean }) => {
      const chosen = [opts.id !== undefined, opts.stale, opts.all].filter(Boolean).length
      if (chosen !== 1) throw new UsageError('down: give exactly one of --id <id>, --stale, --all')
      if (opts.id !== undefined && !isLabId(opts.id)) throw new UsageError(`--id '${opts.id}': expected 1-8 of [a-z0-9]`)
      const report = opts.id !== undefined ? await downLab(opts.id) : opts.stale ? await sweepStaleLabs() : await downAll()
      reportDown(report, io)
    })

  program.command('list')
    .description('labs with a state file')
    .option('--json', 'print the state files as JSON', false)
    .action((opts: { json: boolean }) => {
      const states = listStateIds().map(id => readState(id))
      if (opts.json) {
        io.stdout(JSON.stringify(states.map(s => ({ ...s, status: labStatus(s) })), null, 2) + '\n')
        return
      }
      if (states.length === 0) {
        io.stderr('no labs\n')
        return
      }
      for (const state of states) io.stdout(describeListEntry(state, labStatus(state)) + '\n')
    })

  try {
    await program.parseAsync(argv, { from: 'user' })
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) return
      throw new UsageError(`${err.message.replace(/^error: /, '')} (see --help)`)
    }
    throw err
  }
}

function reportDown (report: DownReport, io: CliIo): void {
  for (const id of report.removed) io.stdout(`removed ${id}\n`)
  if (report.removed.length === 0 && report.problems.length === 0) io.stderr('nothing to remove\n')
  if (report.problems.length > 0) throw new LabError(`down: ${report.problems.join('; ')}`)
}
