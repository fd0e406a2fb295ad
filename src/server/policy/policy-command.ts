import { readFile } from 'node:fs/promises'
import { Command, Option } from 'commander'
import { runCommand, type RunIo } from '../../shared/cli.js'
import { EXIT_USAGE, messageOf } from '../../shared/errors.js'
import { wgCli } from '../../shared/wg.js'
import { readPeerNames } from '../inventory/peer-names.js'
import { nftCli } from '../../shared/nft.js'
import { parsePolicy } from './parse-policy.js'
import { PolicyError } from './policy-error.js'
import { reachReport, renderReach, type ReachReport } from './reach-report.js'
import { readDenied } from './relay-filter.js'

export function policyCheckProgram (): Command {
  return new Command('wgnat-server policy check')
    .description('Check an access policy file and print who may open connections to whom; with a running hub, also the relayed traffic it denied.')
    .argument('<file>', 'the policy file (JSON, docs/policy.md)')
    .addOption(new Option('-i, --interface <name>', 'the hub\'s WireGuard interface: its peers and peer names are checked against').env('WGNAT_INTERFACE').makeOptionMandatory())
    .addOption(new Option('--state-dir <dir>', 'where wgnat keeps its state (peer names, ...)').default('/var/lib/wgnat').env('WGNAT_STATE_DIR'))
    .option('--json', 'print the report as JSON')
}

/** `wgnat-server policy check <file> -i <if>`: exit 0 valid, 64 with one line when the file is refused. */
export async function runPolicy (argv: string[], io?: RunIo): Promise<number> {
  const [node = 'node', name = 'wgnat-server policy', sub, ...rest] = argv
  // `policy --help` (or `help`): the help of its one subcommand.
  if (sub === '--help' || sub === '-h' || sub === 'help') return await runPolicy([node, name, 'check', '--help'], io)
  if (sub !== 'check') {
    const stderr = io?.stderr ?? ((line: string) => process.stderr.write(line + '\n'))
    stderr(`${name}: ${sub === undefined ? 'missing subcommand' : `unknown subcommand '${sub}'`}: use '${name} check <file> -i <interface>'`)
    return EXIT_USAGE
  }
  const program = policyCheckProgram()
  return await runCommand(program, [node, `${name} check`, ...rest], async (opts, out) => {
    const file = program.args[0] as string
    const iface = opts.interface as string
    let text: string
    try { text = await readFile(file, 'utf8') } catch (err) { throw new PolicyError(`policy ${file}: cannot read: ${messageOf(err)}`) }
    const names = await readPeerNames(opts.stateDir as string, iface)
    const policy = parsePolicy(text, file, names)
    // The interface's peers when it can be read here (the hub), otherwise the members the file names.
    const device = await wgCli().show(iface).catch(() => undefined)
    const report: ReachReport = reachReport(policy, names, device?.peers)
    if (device !== undefined) report.denied = await readDenied(nftCli(), iface).catch(() => undefined)
    out(opts.json === true ? JSON.stringify(report, null, 2) + '\n' : renderReach(report, iface))
  }, io)
}
