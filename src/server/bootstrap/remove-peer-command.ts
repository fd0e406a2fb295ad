import { runCommand, type RunIo } from '../../shared/cli.js'
import { shortKey } from '../../shared/wg-dump.js'
import { wgCli, type WgControl } from '../../shared/wg.js'
import { interfaceSection, peersOf, valuesOf } from '../../shared/wg-quick-config.js'
import { readPeerNames } from '../inventory/peer-names.js'
import { fullTunnelHooks, hostAddressOf } from './hub-config.js'
import { hubProgram, type HubCommandOptions } from './hub-options.js'
import { HubStore, loadConfig } from './hub-store.js'
import { resolvePeer } from './resolve-peer.js'
import { lockState } from './state-lock.js'

export function removePeerProgram () {
  return hubProgram('wgnat-server remove-peer', 'Remove a spoke from the live interface and the saved config; the registry stops serving it and the other spokes drop it.')
    .argument('<peer>', 'the spoke: its name, public key or tunnel address')
}

/** `wgnat-server remove-peer`. */
export async function runRemovePeer (argv: string[], io?: RunIo, components: { wg?: WgControl } = {}): Promise<number> {
  const wg = components.wg ?? wgCli()
  const program = removePeerProgram()
  return await runCommand(program, argv, async (raw) => {
    const opts = raw as unknown as HubCommandOptions
    const spec = program.args[0] ?? ''
    const stderr = io?.stderr ?? ((line: string) => process.stderr.write(line + '\n'))
    const iface = opts.interface
    const lock = await lockState(opts.stateDir, iface)
    try {
      const store = new HubStore({ iface, configDir: opts.configDir, stateDir: opts.stateDir }, { wg, notice: (l) => stderr(`wgnat-server remove-peer: ${l}`) })
      await store.repair()
      const config = await loadConfig(opts.configDir, iface)
      const names = await readPeerNames(opts.stateDir, iface)
      const peer = resolvePeer(spec, peersOf(config), names, iface)
      const address = hostAddressOf(peer.allowedIps)
      const hooks = address === undefined ? undefined : fullTunnelHooks(address)
      const fullTunnel = hooks !== undefined && valuesOf(interfaceSection(config), 'PostUp').includes(hooks.up)
      await store.apply({ op: 'remove-peer', publicKey: peer.publicKey, name: names.get(peer.publicKey), allowedIps: peer.allowedIps, hooks: fullTunnel ? hooks : undefined })
      stderr(`wgnat-server remove-peer: removed ${names.get(peer.publicKey) ?? shortKey(peer.publicKey)} ${address ?? ''} (key ${peer.publicKey})`.trimEnd())
    } finally {
      await lock.release()
    }
  }, io)
}
