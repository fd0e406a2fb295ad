import { Command, InvalidArgumentError, Option } from 'commander'
import { IFACE_RE } from '../../shared/interface-name.js'


function ifaceArg (value: string): string {
  if (!IFACE_RE.test(value)) throw new InvalidArgumentError(`interface name '${value.slice(0, 40)}' is not 1-15 of [a-zA-Z0-9_=+.-] (what wg-quick accepts)`)
  return value
}

/** Options every bootstrap subcommand takes. */
export interface HubCommandOptions {
  interface: string
  configDir: string
  stateDir: string
}

/** A `wgnat-server <name>` program with -i, --config-dir and --state-dir. */
export function hubProgram (name: string, description: string): Command {
  return new Command(name)
    .description(description)
    .addOption(new Option('-i, --interface <name>', 'WireGuard interface of the hub').argParser(ifaceArg).env('WGNAT_INTERFACE').makeOptionMandatory())
    .addOption(new Option('--config-dir <dir>', 'where the wg-quick configs live').default('/etc/wireguard').env('WGNAT_CONFIG_DIR'))
    .addOption(new Option('--state-dir <dir>', 'where wgnat keeps its state (peer names, ...)').default('/var/lib/wgnat').env('WGNAT_STATE_DIR'))
}
