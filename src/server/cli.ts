import { Command, Option } from 'commander'
import { addCommonOptions, durationArg, intArg, runDaemon, type Daemon, type RunIo } from '../shared/cli.js'
import { WgnatError, quote } from '../shared/errors.js'
import { interfaceAddresses } from '../shared/interface-addresses.js'
import type { Logger } from '../shared/log.js'
import { wgCli, type WgControl } from '../shared/wg.js'
import { closeAll, listenOn, registryHandler } from './registry-http.js'
import { RegistryService } from './registry-service.js'
import { enableRelay, type RelayHandle } from './relay.js'
import { forwardingProbe } from './forwarding-probe.js'
import { createStunServer, STUN_PORT, type StunServer } from './stun-server.js'

export interface ServerOptions {
  interface: string
  port?: number
  pollMs: number
  relay: boolean
  stun: boolean
  stunPort: number
}

export function serverProgram (): Command {
  const program = new Command('wgnat-server')
    .description('Registry for a WireGuard hub: serves each peer\'s endpoint to the other peers, over the tunnel only.')
    .addOption(new Option('-i, --interface <name>', 'WireGuard interface of the hub').env('WGNAT_INTERFACE').makeOptionMandatory())
    .addOption(new Option('--port <port>', 'TCP port on the tunnel addresses (default: the WireGuard listen port)').argParser(intArg(1, 65535)).env('WGNAT_PORT'))
    .addOption(new Option('--poll <duration>', 'how often the interface is read, Go syntax').argParser(durationArg(50)).default(1000, '1s').env('WGNAT_POLL'))
    .addOption(new Option('--stun-port <port>', 'UDP port of the STUN server on the hub\'s public addresses').argParser(intArg(1, 65535)).default(STUN_PORT).env('WGNAT_STUN_PORT'))
    .addOption(new Option('--no-stun', 'do not run the STUN server').env('WGNAT_NO_STUN'))
    .addOption(new Option('--relay', 'forward between peers (IP forwarding and a FORWARD rule, undone on exit), so pairs without a direct path keep working through the hub').default(false).env('WGNAT_RELAY'))
  return addCommonOptions(program)
}

/** Start the registry: read the interface, then serve on its tunnel addresses. */
export async function startServer (opts: ServerOptions, logger: Logger, wg: WgControl = wgCli()): Promise<Daemon> {
  const service = new RegistryService({ iface: opts.interface, pollMs: opts.pollMs }, { wg, logger })
  await service.start()
  const addresses = interfaceAddresses(opts.interface).map((a) => a.address)
  if (addresses.length === 0) {
    service.stop()
    throw new WgnatError(`interface ${quote(opts.interface)} has no IP address: the registry serves only on tunnel addresses`, 69)
  }
  const port = opts.port ?? service.device.listenPort
  if (port === 0) {
    service.stop()
    throw new WgnatError(`interface ${quote(opts.interface)} has no listen port: set one or pass --port`, 64)
  }
  let relay: RelayHandle | undefined
  let stun: StunServer | undefined
  let servers
  try {
    if (opts.stun) {
      stun = createStunServer({ port: opts.stunPort }, { logger })
      await stun.start()
    }
    if (opts.relay) relay = await enableRelay(opts.interface, logger)
    servers = await listenOn(addresses, port, registryHandler(service, logger, { relay: forwardingProbe({ relay: opts.relay }) }))
  } catch (err) {
    service.stop()
    await relay?.stop()
    await stun?.stop()
    if (err instanceof WgnatError) throw err
    throw new WgnatError(`cannot listen on ${addresses.join(', ')} port ${port}: ${(err as Error).message}`)
  }
  logger.info({ addresses, port }, `registry listening on ${addresses.map((a) => `${a.includes(':') ? `[${a}]` : a}:${port}`).join(', ')}`)
  return {
    async stop () {
      service.stop()
      await closeAll(servers)
      await relay?.stop()
      await stun?.stop()
    }
  }
}

/** A `wgnat-server <name> ...` subcommand: its own module, loaded only when called. */
export type Subcommand = (argv: string[], io?: RunIo) => Promise<number>

/**
 * Subcommands by name. Each receives argv with the subcommand removed (`[node, 'wgnat-server <name>', ...rest]`).
 * Without one, `wgnat-server` runs the registry daemon.
 */
export const SUBCOMMANDS: Record<string, () => Promise<Subcommand>> = {
}

export async function run (argv: string[], io?: RunIo): Promise<number> {
  const name = argv[2]
  const load = name !== undefined && Object.hasOwn(SUBCOMMANDS, name) ? SUBCOMMANDS[name] : undefined
  if (load !== undefined) return await (await load())([argv[0] ?? 'node', `wgnat-server ${name}`, ...argv.slice(3)], io)
  return await runDaemon(serverProgram(), argv, async (opts, logger) => await startServer(opts as unknown as ServerOptions, logger), io)
}
