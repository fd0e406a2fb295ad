import { Command, Option } from 'commander'
import { addCommonOptions, durationArg, intArg, runDaemon, type Daemon, type RunIo } from '../shared/cli.js'
import { WgnatError, quote } from '../shared/errors.js'
import { interfaceAddresses } from '../shared/interface-addresses.js'
import type { Logger } from '../shared/log.js'
import { wgCli, type WgControl } from '../shared/wg.js'
import { closeAll, listenOn, registryHandler } from './registry-http.js'
import { RegistryService } from './registry-service.js'
import { enableRelay, type RelayHandle } from './relay.js'
import { createStunServer, STUN_PORT, type StunServer } from './stun-server.js'
import { loadPolicy } from './policy/load-policy.js'
import { nftCli } from '../shared/nft.js'
import { PolicyReloader } from './policy/policy-reloader.js'
import { RelayFilter } from './policy/relay-filter.js'
import { relayTableName } from './policy/relay-ruleset.js'

export interface ServerOptions {
  interface: string
  port?: number
  pollMs: number
  relay: boolean
  stun: boolean
  stunPort: number
  /** Access policy file (docs/policy.md); none: everyone reaches everyone. */
  policy?: string
  stateDir: string
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
    .addOption(new Option('--policy <file>', 'access policy (JSON, docs/policy.md): who may reach whom; enforced by the registry, by an nftables forward filter on the interface (relayed traffic, whatever the spokes run) and by the clients. Reloaded on SIGHUP and when the file changes').env('WGNAT_POLICY'))
    .addOption(new Option('--state-dir <dir>', 'where wgnat keeps its state (peer names, ...)').default('/var/lib/wgnat').env('WGNAT_STATE_DIR'))
  return addCommonOptions(program)
}

/** Start the registry: read the interface, then serve on its tunnel addresses. */
export async function startServer (opts: ServerOptions, logger: Logger, wg: WgControl = wgCli()): Promise<Daemon> {
  // A bad policy file stops the start (exit 64) before anything is set up.
  const policy = opts.policy === undefined ? undefined : await loadPolicy(opts.policy, opts.stateDir, opts.interface)
  let filter: RelayFilter | undefined
  const service = new RegistryService({ iface: opts.interface, pollMs: opts.pollMs }, {
    wg,
    logger,
    onPolicy: (evaluation, peers) => filter?.update(evaluation, peers)
  })
  if (policy !== undefined) service.setPolicy(policy)
  else {
    // A policy table left by a run that was killed would go on filtering without a policy: everyone reaches
    // everyone. Removed in the background, off the start-up path (one `nft` call; nothing when nft is missing).
    void nftCli().removeStale('inet', relayTableName(opts.interface)).then((removed) => {
      if (removed) logger.info(`removed a stale relay policy filter (table inet ${relayTableName(opts.interface)})`)
    })
  }
  await service.start()
  let reloader: PolicyReloader | undefined
  if (policy !== undefined && opts.policy !== undefined) {
    const relayFilter = new RelayFilter({ iface: opts.interface }, { nft: nftCli(), logger })
    try {
      await relayFilter.start(service.policyEvaluation!, [...service.table.peers()])
    } catch (err) {
      service.stop()
      throw err
    }
    filter = relayFilter
    reloader = new PolicyReloader({ file: opts.policy, stateDir: opts.stateDir, iface: opts.interface }, policy, { logger, apply: (next) => service.setPolicy(next) })
    reloader.start()
    logger.info({ rules: policy.policy.rules.length }, `access policy ${opts.policy} in force: ${policy.policy.rules.length} rules`)
  }
  const stopPolicy = async (): Promise<void> => {
    await reloader?.stop()
    await filter?.stop()
  }
  const addresses = interfaceAddresses(opts.interface).map((a) => a.address)
  if (addresses.length === 0) {
    service.stop()
    await stopPolicy()
    throw new WgnatError(`interface ${quote(opts.interface)} has no IP address: the registry serves only on tunnel addresses`, 69)
  }
  const port = opts.port ?? service.device.listenPort
  if (port === 0) {
    service.stop()
    await stopPolicy()
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
    servers = await listenOn(addresses, port, registryHandler(service, logger, { relay: opts.relay }))
  } catch (err) {
    service.stop()
    await relay?.stop()
    await stun?.stop()
    await stopPolicy()
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
      await stopPolicy()
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
  policy: async () => (await import('./policy/policy-command.js')).runPolicy,
}

export async function run (argv: string[], io?: RunIo): Promise<number> {
  const name = argv[2]
  const load = name !== undefined && Object.hasOwn(SUBCOMMANDS, name) ? SUBCOMMANDS[name] : undefined
  if (load !== undefined) return await (await load())([argv[0] ?? 'node', `wgnat-server ${name}`, ...argv.slice(3)], io)
  return await runDaemon(serverProgram(), argv, async (opts, logger) => await startServer(opts as unknown as ServerOptions, logger), io)
}
