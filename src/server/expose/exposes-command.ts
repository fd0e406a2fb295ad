import { Command, Option } from 'commander'
import { runCommand, type RunIo } from '../../shared/cli.js'
import { exposeCounters, renderExposeStatus } from './expose-counters.js'
import { exposeTableName } from './expose-ruleset.js'
import { nftCli } from '../../shared/nft.js'

/** `wgnat-server exposes -i wg0 [--json]`: each expose with its connection and byte counters, read from the kernel. */
export async function runExposes (argv: string[], io?: RunIo): Promise<number> {
  const program = new Command('wgnat-server exposes')
    .description('List the ports wgnat-server --expose forwards into the tunnel, with connection and byte counters (read from nftables; needs root).')
    .addOption(new Option('-i, --interface <name>', 'WireGuard interface of the hub').env('WGNAT_INTERFACE').makeOptionMandatory())
    .addOption(new Option('--json', 'print the structure instead of the table').default(false))
  return await runCommand(program, argv, async (opts, out) => {
    const iface = opts.interface as string
    const table = exposeTableName(iface)
    const status = exposeCounters(await nftCli().listTable('inet', table), iface, table)
    out(opts.json === true ? JSON.stringify(status, null, 2) + '\n' : renderExposeStatus(status))
  }, io)
}
