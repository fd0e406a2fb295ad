import { Command, Option } from 'commander'
import { addCommonOptions, durationArg, intArg, runDaemon, type Daemon, type RunIo } from '../shared/cli.js'
import { WgnatError, quote } from '../shared/errors.js'
import { interfaceAddresses } from '../shared/interface-addresses.js'
import type { Logger } from '../shared/log.js'
import { wgCli, type WgControl } from '../shared/wg.js'
import { closeAll, listenOn, registryHandler } from './registry-http.js'
import { defaultServerStatusSocket } from './admin/server-status.js'
import { RegistryService } from './registry-service.js'
import { HTTP_OPTION_HELP, httpAddressArg, type HttpAddress } from '../shared/metrics/http-option.js'
import type { HttpListener } from '../shared/metrics/http-listener.js'
import { enableRelay, readRelayCounters, type RelayHandle } from './relay.js'
import { buildMeshView } from './mesh/mesh-view.js'
import { PathReports } from './mesh/path-reports.js'
import { serveJson } from '../shared/json-socket.js'
import { messageOf } from '../shared/errors.js'
import { createStunServer, STUN_PORT, type StunServer } from './stun-server.js'

export interface ServerOptions {
  interface: string
  port?: number
  pollMs: number
  relay: boolean
  stun: boolean
  stunPort: number
  http?: HttpAddress
  statusSocket?: string
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
    .addOption(new Option('--http <addr:port>', HTTP_OPTION_HELP).argParser(httpAddressArg).env('WGNAT_HTTP'))
    .addOption(new Option('--status-socket <path>', 'Unix socket for `wgnat-server status` (default: /run/wgnat/<interface>-server.sock)').env('WGNAT_SERVER_STATUS_SOCKET'))
    .addHelpText('after', '\nThe whole mesh, as the clients report it: wgnat-server status -i <interface> [--json]\nRun as a systemd service: wgnat-server install-service -i <interface>')
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
  let http: HttpListener | undefined
  let statusServer: { close: () => Promise<void> } | undefined
  const reports = new PathReports()
  const meshView = () => {
    const peers = [...service.table.peers()]
    reports.retain(new Set(peers.map((p) => p.publicKey)))
    return buildMeshView({ iface: opts.interface, publicKey: service.device.publicKey ?? '', relay: opts.relay, nowS: service.table.now }, peers, reports)
  }
  // prom-client and the page are loaded only with --http: they would slow every start otherwise.
  const metrics = opts.http === undefined
    ? undefined
    : (await import('./server-metrics.js')).createServerMetrics({
      peers: () => service.table.size,
      longPolls: () => service.waiting,
      stun: opts.stun ? () => stun?.stats() ?? { answered: 0, ignored: 0, rateLimited: 0, sendErrors: 0 } : undefined,
      relay: opts.relay ? async () => await readRelayCounters(opts.interface) : undefined
    })
  try {
    if (opts.stun) {
      stun = createStunServer({ port: opts.stunPort }, { logger })
      await stun.start()
    }
    if (opts.relay) relay = await enableRelay(opts.interface, logger)
    servers = await listenOn(addresses, port, registryHandler(service, logger, { relay: opts.relay, onResponse: metrics?.request, reports }))
    if (opts.http !== undefined && metrics !== undefined) {
      const [{ startHttpListener }, { meshRoutes }] = await Promise.all([import('../shared/metrics/http-listener.js'), import('./mesh/mesh-page.js')])
      http = await startHttpListener(opts.http, metrics.registry, logger, [meshRoutes(meshView)])
    }
  } catch (err) {
    service.stop()
    if (servers !== undefined) await closeAll(servers)
    await relay?.stop()
    await stun?.stop()
    if (err instanceof WgnatError) throw err
    throw new WgnatError(`cannot listen on ${addresses.join(', ')} port ${port}: ${(err as Error).message}`)
  }
  const statusPath = opts.statusSocket ?? defaultServerStatusSocket(opts.interface)
  try {
    statusServer = await serveJson(statusPath, meshView)
  } catch (err) {
    logger.warn(`no status socket at ${quote(statusPath)}: ${messageOf(err)}`)
  }
  logger.info({ addresses, port }, `registry listening on ${addresses.map((a) => `${a.includes(':') ? `[${a}]` : a}:${port}`).join(', ')}`)
  return {
    async stop () {
      await statusServer?.close()
      await http?.close()
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
  'install-service': async () => (await import('./admin/install-service.js')).runInstallService,
  status: async () => (await import('./admin/server-status.js')).runStatus
}

export async function run (argv: string[], io?: RunIo): Promise<number> {
  const name = argv[2]
  const load = name !== undefined && Object.hasOwn(SUBCOMMANDS, name) ? SUBCOMMANDS[name] : undefined
  if (load !== undefined) return await (await load())([argv[0] ?? 'node', `wgnat-server ${name}`, ...argv.slice(3)], io)
  return await runDaemon(serverProgram(), argv, async (opts, logger) => await startServer(opts as unknown as ServerOptions, logger), io)
}
