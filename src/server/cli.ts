import { Command, InvalidArgumentError, Option } from 'commander'
import { addCommonOptions, durationArg, intArg, preflight, runDaemon, socketPathArg, type Daemon, type RunIo } from '../shared/cli.js'
import { WgnatError, messageOf, quote } from '../shared/errors.js'
import { interfaceAddresses } from '../shared/interface-addresses.js'
import type { Logger } from '../shared/log.js'
import { wgCli, type WgControl } from '../shared/wg.js'
import { closeAll, listenOn, registryHandler } from './registry/registry-http.js'
import { readHubState } from './bootstrap/hub-state.js'
import { watchPeerNames } from './inventory/peer-names-watch.js'
import { RegistryService } from './registry/registry-service.js'
import { enableRelay, readRelayCounters, type RelayHandle } from './relay.js'
import { defaultServerStatusSocket } from './admin/server-status.js'
import { HTTP_OPTION_HELP, httpAddressArg, type HttpAddress } from '../shared/metrics/http-option.js'
import { buildMeshView } from './mesh/mesh-view.js'
import { PathReports } from './mesh/path-reports.js'
import { serveJson } from '../shared/json-socket.js'
import { forwardingProbe } from './registry/forwarding-probe.js'
import { createStunServer, STUN_PORT, type StunServer } from './stun-server.js'
import { createExposeService, type ExposeService } from './expose/expose-service.js'
import { parseExposeSpec, type ExposeSpec } from './expose/expose-spec.js'
import { procForwarding } from './expose/ip-forwarding.js'
import { readListeningSockets, shadowedPorts } from './expose/listening-ports.js'
import { readPeerNames } from './inventory/peer-names.js'
import { loadPolicy } from './policy/load-policy.js'
import { nftCli } from '../shared/nft.js'
import { PolicyReloader } from './policy/policy-reloader.js'
import { RelayFilter } from './policy/relay-filter.js'
import { relayTableName } from './policy/relay-ruleset.js'


export interface ServerOptions {
  interface: string
  port?: number
  /** `--poll`, in ms (commander names it after the option). */
  poll: number
  /** Undefined: what the hub's state says (`init` records that its config forwards), else off. */
  relay?: boolean
  stun: boolean
  stunPort: number
  /** Peer names (`<state-dir>/<interface>.names.json`) and the hub state of `init`. */
  stateDir: string
  configDir: string
  /** Access policy file (docs/policy.md); none: everyone reaches everyone. */
  policy?: string
  expose: ExposeSpec[]
  exposeFile?: string
  exposePreserveSource: boolean
  http?: HttpAddress
  statusSocket?: string
}

/**
 * Every field of ServerOptions, each the attribute commander gives one of serverProgram's options (a unit test holds
 * the two together; tsc holds this list to the interface). The daemon reads its options through an unchecked cast,
 * which once read `pollMs` for `--poll` and so ignored it.
 */
export const SERVER_OPTION_FIELDS: Record<keyof ServerOptions, true> = {
  interface: true, port: true, poll: true, relay: true, stun: true, stunPort: true, stateDir: true, configDir: true, policy: true, expose: true, exposeFile: true, exposePreserveSource: true, http: true, statusSocket: true
}

/** commander parser for a repeatable `--expose`; the environment variable may hold several, blank- or comma-separated. */
function exposeArg (value: string, previous: ExposeSpec[] = []): ExposeSpec[] {
  const specs: ExposeSpec[] = []
  for (const text of value.split(/[\s,]+/).filter((t) => t !== '')) {
    try { specs.push(parseExposeSpec(text)) } catch (err) { throw new InvalidArgumentError((err as Error).message) }
  }
  if (specs.length === 0) throw new InvalidArgumentError(`${quote(value)} names no port (expected <public-port>[-<end>]/<tcp|udp>=<peer>:<port>)`)
  return [...previous, ...specs]
}

export function serverProgram (): Command {
  const program = new Command('wgnat-server')
    .description('Registry for a WireGuard hub: serves each peer\'s endpoint to the other peers, over the tunnel only.')
    .addOption(new Option('-i, --interface <name>', 'WireGuard interface of the hub').env('WGNAT_INTERFACE').makeOptionMandatory())
    .addOption(new Option('--port <port>', 'TCP port on the tunnel addresses (default: the WireGuard listen port)').argParser(intArg(1, 65535)).env('WGNAT_PORT'))
    .addOption(new Option('--poll <duration>', 'how often the interface is read, Go syntax (over 500 peers: that often only when something suggests a change, else once per 500 peers, at most 20 times it)').argParser(durationArg(50)).default(1000, '1s').env('WGNAT_POLL'))
    .addOption(new Option('--stun-port <port>', 'UDP port of the STUN server on the hub\'s public addresses').argParser(intArg(1, 65535)).default(STUN_PORT).env('WGNAT_STUN_PORT'))
    .addOption(new Option('--no-stun', 'do not run the STUN server').env('WGNAT_NO_STUN'))
    .addOption(new Option('--relay', 'forward between peers (IP forwarding and a FORWARD rule, undone on exit), so pairs without a direct path keep working through the hub; only traffic from the tunnel back into it (default: on for a hub made by `init`, whose config forwards)').env('WGNAT_RELAY'))
    .addOption(new Option('--no-relay', 'do not announce or set up relaying, even on a hub made by `init`'))
    .addOption(new Option('--state-dir <dir>', 'where wgnat keeps its state (peer names, ...)').default('/var/lib/wgnat').env('WGNAT_STATE_DIR'))
    .addOption(new Option('--config-dir <dir>', 'where the wg-quick configs live').default('/etc/wireguard').env('WGNAT_CONFIG_DIR'))
    .addOption(new Option('--policy <file>', 'access policy (JSON, docs/policy.md): who may reach whom; enforced by the registry, by an nftables forward filter on the interface (relayed traffic, whatever the spokes run) and by the clients. Reloaded on SIGHUP and when the file changes').env('WGNAT_POLICY'))
    .addOption(new Option('--expose <spec>', 'forward a public port of the hub to a peer\'s port through the tunnel, in the kernel: <public-port>[-<end>]/<tcp|udp>=<peer>:<port> (peer: name, public key or tunnel address); repeatable. PUBLIC: anyone who reaches the hub\'s address can use it, only on that port, only to that peer and port. Turns IP forwarding on if it is off (then nothing else crosses between the tunnel and other interfaces), undone on exit').argParser(exposeArg).default([], 'none').env('WGNAT_EXPOSE'))
    .addOption(new Option('--expose-file <path>', 'more --expose specs, one per line, # comments; read again on SIGHUP').env('WGNAT_EXPOSE_FILE'))
    .addOption(new Option('--http <addr:port>', HTTP_OPTION_HELP).argParser(httpAddressArg).env('WGNAT_HTTP'))
    .addOption(new Option('--status-socket <path>', 'Unix socket for `wgnat-server status` (default: /run/wgnat/<interface>-server.sock)').argParser(socketPathArg).env('WGNAT_SERVER_STATUS_SOCKET'))
    .addHelpText('after', '\nCommands (each with --help):\n  init, add-peer, remove-peer, peers   build the hub and its spokes (keys, wg-quick configs, addresses)\n  policy check <file>                  check an access policy (docs/policy.md)\n  exposes                              list the exposed ports and who can reach them\n  status -i <interface> [--json]       the whole mesh, as the clients report it\n  install-service -i <interface>       run as a systemd service\n  --version                            the version')
    .addOption(new Option('--expose-preserve-source', 'exposed services see the client\'s real address instead of the hub\'s tunnel address; the spoke must then route its replies through the tunnel (see docs/expose.md)').default(false).env('WGNAT_EXPOSE_PRESERVE_SOURCE'))
  return addCommonOptions(program)
}

/** What start-up set up, undone in reverse order on stop or when a later step fails. */
class Teardown {
  private readonly steps: Array<() => Promise<void> | void> = []
  constructor (private readonly logger: Logger) {}
  add (step: () => Promise<void> | void): void { this.steps.push(step) }
  async run (): Promise<void> {
    for (const step of this.steps.splice(0).reverse()) {
      try { await step() } catch (err) { this.logger.warn(`clean-up: ${(err as Error).message}`) }
    }
  }
}

/** Start the registry: read the interface, then serve on its tunnel addresses. */
export async function startServer (opts: ServerOptions, logger: Logger, wg: WgControl = wgCli({ reuseUnchangedPeers: true, persistent: true })): Promise<Daemon> {
  // A bad policy file stops the start (exit 64) before anything is set up.
  const policy = opts.policy === undefined ? undefined : await loadPolicy(opts.policy, opts.stateDir, opts.interface)
  const hubState = await readHubState(opts.stateDir, opts.interface)
  const relayOn = opts.relay ?? hubState?.relay ?? false
  if (opts.relay === undefined && relayOn) logger.info(`relaying: ${opts.interface} was made by \`wgnat-server init\`, whose config forwards (--no-relay to turn off)`)
  let filter: RelayFilter | undefined
  const service = new RegistryService({ iface: opts.interface, pollMs: opts.poll }, {
    wg,
    logger,
    names: watchPeerNames(opts.stateDir, opts.interface, logger),
    onPolicy: (evaluation, peers) => filter?.update(evaluation, peers)
  })
  const nft = nftCli()
  if (policy !== undefined) await service.setPolicy(policy)
  else {
    // A policy table left by a run that was killed would go on filtering without a policy: everyone reaches
    // everyone. Removed in the background, off the start-up path (one `nft` call; nothing when nft is missing).
    void nft.removeStale('inet', relayTableName(opts.interface)).then((removed) => {
      if (removed) logger.info(`removed a stale relay policy filter (table inet ${relayTableName(opts.interface)})`)
    })
  }
  await service.start()
  const teardown = new Teardown(logger)
  // The registry stops polling first, so nothing (the policy filter's updates) re-applies what is being undone.
  const stop = async (): Promise<void> => {
    service.stop()
    await teardown.run()
  }
  try {
    if (policy !== undefined && opts.policy !== undefined) {
      const relayFilter = new RelayFilter({ iface: opts.interface }, { nft, logger })
      await relayFilter.start(service.policyEvaluation!, [...service.table.peers()])
      filter = relayFilter
      teardown.add(async () => await relayFilter.stop())
      const reloader = new PolicyReloader({ file: opts.policy, stateDir: opts.stateDir, iface: opts.interface }, policy, { logger, apply: async (next) => { await service.setPolicy(next) } })
      reloader.start()
      teardown.add(async () => await reloader.stop())
      logger.info({ rules: policy.policy.rules.length }, `access policy ${opts.policy} in force: ${policy.policy.rules.length} rules`)
    }
    const addresses = interfaceAddresses(opts.interface).map((a) => a.address)
    if (addresses.length === 0) throw new WgnatError(`interface ${quote(opts.interface)} has no IP address: the registry serves only on tunnel addresses`, 69)
    const port = opts.port ?? service.device.listenPort
    if (port === 0) throw new WgnatError(`interface ${quote(opts.interface)} has no listen port: set one or pass --port`, 64)
    if (opts.expose.length > 0 || opts.exposeFile !== undefined) {
      // Before --relay, so it sees whether forwarding was off (then only the exposes may cross to other interfaces).
      await startExposes(opts, port, addresses, service, logger, teardown)
    }
    let stun: StunServer | undefined
    if (opts.stun) {
      const server = stun = createStunServer({ port: opts.stunPort }, { logger })
      await server.start()
      teardown.add(async () => await server.stop())
    }
    if (relayOn) {
      const relay: RelayHandle = await enableRelay(opts.interface, logger)
      teardown.add(async () => await relay.stop())
    }
    const reports = new PathReports()
    const meshView = () => {
      const peers = [...service.table.peers()]
      reports.retain(new Set(peers.map((p) => p.publicKey)))
      return buildMeshView({ iface: opts.interface, publicKey: service.device.publicKey ?? '', relay: relayOn, nowS: service.table.now }, peers, reports)
    }
    // prom-client and the page are loaded only with --http: they would slow every start otherwise.
    const metrics = opts.http === undefined
      ? undefined
      : (await import('./server-metrics.js')).createServerMetrics({
          peers: () => service.table.size,
          longPolls: () => service.waiting,
          stun: stun === undefined ? undefined : () => stun?.stats() ?? { answered: 0, ignored: 0, rateLimited: 0, sendErrors: 0 },
          relay: relayOn ? async () => await readRelayCounters(opts.interface) : undefined
        })
    let servers
    try {
      servers = await listenOn(addresses, port, registryHandler(service, logger, { relay: forwardingProbe({ relay: relayOn }), onResponse: metrics?.request, reports }))
    } catch (err) {
      if (err instanceof WgnatError) throw err
      throw new WgnatError(`cannot listen on ${addresses.join(', ')} port ${port}: ${(err as Error).message}`)
    }
    teardown.add(async () => await closeAll(servers))
    if (opts.http !== undefined && metrics !== undefined) {
      const [{ startHttpListener }, { meshRoutes }] = await Promise.all([import('../shared/metrics/http-listener.js'), import('./mesh/mesh-page.js')])
      const http = await startHttpListener(opts.http, metrics.registry, logger, [meshRoutes(meshView)])
      teardown.add(async () => await http.close())
    }
    const statusPath = opts.statusSocket ?? defaultServerStatusSocket(opts.interface)
    try {
      const statusServer = await serveJson(statusPath, meshView)
      teardown.add(async () => await statusServer.close())
    } catch (err) {
      logger.warn(`no status socket at ${quote(statusPath)}: ${messageOf(err)}`)
    }
    logger.info({ addresses, port }, `registry listening on ${addresses.map((a) => `${a.includes(':') ? `[${a}]` : a}:${port}`).join(', ')}`)
  } catch (err) {
    await stop()
    throw err
  }
  return { stop }
}

/** `--expose`: the kernel forwards public ports into the tunnel; SIGHUP reloads `--expose-file`. */
async function startExposes (opts: ServerOptions, port: number, addresses: string[], service: RegistryService, logger: Logger, teardown: Teardown): Promise<void> {
  const exposes: ExposeService = createExposeService({
    iface: opts.interface,
    specs: opts.expose,
    file: opts.exposeFile,
    preserveSource: opts.exposePreserveSource,
    reserved: [
      { port: service.device.listenPort, proto: 'udp', what: 'WireGuard\'s listen port' },
      { port, proto: 'tcp', what: 'the registry\'s port' },
      ...(opts.stun ? [{ port: opts.stunPort, proto: 'udp' as const, what: 'the STUN server\'s port' }] : [])
    ]
  }, {
    logger,
    nft: nftCli(),
    forwarding: procForwarding(),
    peers: () => service.table.peers(),
    names: async () => await readPeerNames(opts.stateDir, opts.interface),
    busyPorts: async () => shadowedPorts(await readListeningSockets(), addresses)
  })
  // Caught from before start (Node's default for SIGHUP is to exit, which would leave the rules in);
  // reloads wait for start and for each other.
  const onHangup = (): void => { logger.info('SIGHUP: reloading exposes'); void exposes.reload() }
  process.on('SIGHUP', onHangup)
  teardown.add(async () => {
    process.off('SIGHUP', onHangup)
    await exposes.stop()
  })
  await exposes.start()
}

/** A `wgnat-server <name> ...` subcommand: its own module, loaded only when called. */
export type Subcommand = (argv: string[], io?: RunIo) => Promise<number>

/**
 * Subcommands by name. Each receives argv with the subcommand removed (`[node, 'wgnat-server <name>', ...rest]`).
 * Without one, `wgnat-server` runs the registry daemon.
 */
export const SUBCOMMANDS: Record<string, () => Promise<Subcommand>> = {
  init: async () => (await import('./bootstrap/init-command.js')).runInit,
  'add-peer': async () => (await import('./bootstrap/add-peer-command.js')).runAddPeer,
  'remove-peer': async () => (await import('./bootstrap/remove-peer-command.js')).runRemovePeer,
  peers: async () => (await import('./bootstrap/peers-command.js')).runPeers,
  policy: async () => (await import('./policy/policy-command.js')).runPolicy,
  exposes: async () => (await import('./expose/exposes-command.js')).runExposes,
  'install-service': async () => (await import('./admin/install-service.js')).runInstallService,
  status: async () => (await import('./admin/server-status.js')).runStatus
}

export async function run (argv: string[], io?: RunIo): Promise<number> {
  if (argv[2] === 'help') argv = [...argv.slice(0, 2), '--help']
  const early = preflight(argv, 'wgnat-server', Object.keys(SUBCOMMANDS), io)
  if (early !== undefined) return early
  const name = argv[2]
  const load = name !== undefined && Object.hasOwn(SUBCOMMANDS, name) ? SUBCOMMANDS[name] : undefined
  if (load !== undefined) return await (await load())([argv[0] ?? 'node', `wgnat-server ${name}`, ...argv.slice(3)], io)
  return await runDaemon(serverProgram(), argv, async (opts, logger) => await startServer(opts as unknown as ServerOptions, logger), io)
}
