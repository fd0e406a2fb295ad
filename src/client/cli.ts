import { Command, InvalidArgumentError, Option } from 'commander'
import { createRequire } from 'node:module'
import { addCommonOptions, durationArg, intArg, preflight, runCommand, socketPathArg, runDaemon, type RunIo } from '../shared/cli.js'
import { UsageError, messageOf, quote } from '../shared/errors.js'
import { parseIp, type Endpoint } from '../shared/ip.js'
import type { Logger } from '../shared/log.js'
import type { WgControl } from '../shared/wg.js'
import { isWgKey } from '../shared/wg-dump.js'
import { HTTP_OPTION_HELP, httpAddressArg, type HttpAddress } from '../shared/metrics/http-option.js'
import type { MeshClient } from './mesh-client.js'
import { defaultStatusSocket } from './observe/status-socket-path.js'

export interface ClientOptions {
  interface: string
  registry: string
  interval: number
  keepalive: number
  registryAddress?: string
  registryPort?: number
  stateDir: string
  directTimeout: number
  push: boolean
  statusSocket?: string
  stun: string[]
  hubStunPort: number
  raw: boolean
  punchTtl?: number
  natCheck: number
  portMapping: boolean
  http?: HttpAddress
}

/** Every field of ClientOptions, each an attribute of one of clientProgram's options (see SERVER_OPTION_FIELDS). */
export const CLIENT_OPTION_FIELDS: Record<keyof ClientOptions, true> = {
  interface: true, registry: true, interval: true, keepalive: true, registryAddress: true, registryPort: true, stateDir: true, directTimeout: true, push: true, statusSocket: true, stun: true, hubStunPort: true, raw: true, punchTtl: true, natCheck: true, portMapping: true, http: true
}

function keyArg (value: string): string {
  if (!isWgKey(value)) throw new InvalidArgumentError(`${quote(value)} is not a WireGuard public key (44 characters of base64)`)
  return value
}

/** `--stun host:port`, repeatable; one value (WGNAT_STUN, say) may list several, comma-separated: each is checked. */
function collectStun (value: string, previous: string[]): string[] {
  const items = value.split(',').map((v) => v.trim())
  for (const item of items) {
    if (!/^(\[[^\]]+\]|[^:\s,]+):\d{1,5}$/.test(item) || Number(item.slice(item.lastIndexOf(':') + 1)) > 65535) {
      throw new InvalidArgumentError(`${quote(item)} is not host:port`)
    }
  }
  return [...previous, ...items]
}

/** Resolve `--stun` values to IPv4 endpoints (STUN from the WireGuard port is IPv4 only). */
async function resolveStun (values: string[]): Promise<Endpoint[]> {
  if (values.length === 0) return []
  // Loaded only when needed: not for `--help`, not for a client without --stun. (Through require: the bundle runs
  // under vm.Script, which has no dynamic import().)
  const { lookup } = createRequire(import.meta.url)('node:dns/promises') as typeof import('node:dns/promises')
  return await Promise.all(values.map(async (value) => {
    const i = value.lastIndexOf(':')
    const host = value.slice(0, i).replace(/^\[|\]$/g, '')
    const port = Number(value.slice(i + 1))
    try {
      const { address } = await lookup(host, { family: 4 })
      return { address, port }
    } catch (err) {
      throw new UsageError(`--stun ${quote(value)}: cannot resolve ${quote(host)} to an IPv4 address: ${messageOf(err)}`)
    }
  }))
}

function ipArg (value: string): string {
  try { return parseIp(value).toString() } catch { throw new InvalidArgumentError(`${quote(value)} is not an IP address`) }
}

export function clientProgram (): Command {
  const program = new Command('wgnat-client')
    .description('Mesh client for a WireGuard spoke: learns the other peers from the hub\'s registry and talks to them directly.')
    .addOption(new Option('-i, --interface <name>', 'WireGuard interface of this spoke').env('WGNAT_INTERFACE').makeOptionMandatory())
    .addOption(new Option('-r, --registry <public-key>', 'public key of the hub peer that runs wgnat-server').argParser(keyArg).env('WGNAT_REGISTRY').makeOptionMandatory())
    .addOption(new Option('-t, --interval <duration>', 'with --no-push, poll this often, Go syntax (300ms, 30s, 1m, 1h30m); with push, changes arrive at once').argParser(durationArg(100)).default(60_000, '1m').env('WGNAT_INTERVAL'))
    .addOption(new Option('--keepalive <seconds>', 'persistent keepalive on mesh peers: keeps NAT holes open and lets a dead direct path be noticed').argParser(intArg(1, 65535)).default(25).env('WGNAT_KEEPALIVE'))
    .addOption(new Option('--registry-address <ip>', 'registry address in the tunnel (default: first host of the registry peer\'s allowed IPs)').argParser(ipArg).env('WGNAT_REGISTRY_ADDRESS'))
    .addOption(new Option('--registry-port <port>', 'registry TCP port (default: the port of the registry peer\'s endpoint)').argParser(intArg(1, 65535)).env('WGNAT_REGISTRY_PORT'))
    .addOption(new Option('--state-dir <dir>', 'where the client records the peers it added').default('/var/lib/wgnat').env('WGNAT_STATE_DIR'))
    .addOption(new Option('--direct-timeout <duration>', 'give up a direct attempt without handshake after this long, Go syntax').argParser(durationArg(500)).default(10_000, '10s').env('WGNAT_DIRECT_TIMEOUT'))
    .addOption(new Option('--no-push', 'do not long-poll the registry; fetch once per interval like wg-nat').env('WGNAT_NO_PUSH'))
    .addOption(new Option('--status-socket <path>', 'Unix socket for `wgnat-client status` (default: /run/wgnat/<interface>.sock)').argParser(socketPathArg).env('WGNAT_STATUS_SOCKET'))
    .addOption(new Option('--stun <host:port>', 'also ask this STUN server for our mapping (repeatable)').argParser(collectStun).default([]).env('WGNAT_STUN'))
    .addOption(new Option('--hub-stun-port <port>', 'STUN port of wgnat-server on the hub\'s public address (0: do not ask the hub)').argParser(intArg(0, 65535)).default(3478).env('WGNAT_HUB_STUN_PORT'))
    .addOption(new Option('--punch-ttl <hops>', 'punch from the WireGuard port with this TTL before each attempt: enough hops to open our own NAT, too few to reach the far one (for routers that clash on simultaneous open)').argParser(intArg(1, 255)).env('WGNAT_PUNCH_TTL'))
    .addOption(new Option('--nat-check <duration>', 'check the NAT mapping (STUN from the WireGuard port) this often (every 10 s, if longer, while every peer is parked on the hub); a rebooted router is noticed within it').argParser(durationArg(500)).default(2000, '2s').env('WGNAT_NAT_CHECK'))
    .addOption(new Option('--no-raw', 'no raw sockets: no STUN from the WireGuard port, no punching').env('WGNAT_NO_RAW'))
    .addOption(new Option('--no-port-mapping', 'do not ask the router to map the WireGuard port (PCP, NAT-PMP, UPnP IGD); a mapping lets anyone on the internet send to that port, as WireGuard\'s own listen port on a public address does').env('WGNAT_NO_PORT_MAPPING'))
    .addOption(new Option('--http <addr:port>', HTTP_OPTION_HELP).argParser(httpAddressArg).env('WGNAT_HTTP'))
    .addHelpText('after', '\nCommands (each with --help):\n  status -i <interface> [--json]                     what a running client knows, per peer\n  install-service -i <interface> -r <hub public key>  run as a systemd service\n  --version                                          the version')
  return addCommonOptions(program)
}

export function statusProgram (): Command {
  return new Command('wgnat-client status')
    .description('Show what a running wgnat-client knows: per peer, its path (direct / trying / via hub / unreachable) and why.')
    .addOption(new Option('-i, --interface <name>', 'WireGuard interface of the running client').env('WGNAT_INTERFACE').makeOptionMandatory())
    .addOption(new Option('--status-socket <path>', 'the client\'s status socket (default: /run/wgnat/<interface>.sock)').argParser(socketPathArg).env('WGNAT_STATUS_SOCKET'))
    .option('--json', 'print the status as JSON, the structure the daemon holds')
}

export async function startClient (opts: ClientOptions, logger: Logger, wg?: WgControl): Promise<{ client: MeshClient, stop: () => Promise<void> }> {
  // The daemon's code is loaded once the options are good: `--help` and usage errors need none of it.
  const { wgCli } = await import('../shared/wg.js')
  const control = wg ?? wgCli({ reuseUnchangedPeers: true, persistent: true }, { logger })
  // The first read of the interface (a `wg` process) runs while the rest of the daemon's code loads.
  const firstRead = control.show(opts.interface)
  firstRead.catch(() => { /* start() reports it */ })
  const [{ MeshClient }, { PathReporter }] = await Promise.all([import('./mesh-client.js'), import('./observe/path-reporter.js')])
  let client: MeshClient | undefined
  // prom-client is loaded only with --http: it adds about a tenth of a second to every start otherwise.
  const metrics = opts.http === undefined ? undefined : (await import('./observe/client-metrics.js')).createClientMetrics(() => (client as MeshClient).status())
  client = new MeshClient({
    iface: opts.interface,
    registryKey: opts.registry,
    intervalMs: opts.interval,
    keepaliveS: opts.keepalive,
    registryAddress: opts.registryAddress,
    registryPort: opts.registryPort,
    stateDir: opts.stateDir,
    push: opts.push,
    statusSocket: opts.statusSocket ?? defaultStatusSocket(opts.interface),
    stunServers: await resolveStun(opts.stun),
    hubStunPort: opts.hubStunPort,
    raw: opts.raw,
    punchTtl: opts.punchTtl,
    natCheckMs: opts.natCheck,
    portMapping: opts.portMapping,
    timing: { directTimeoutMs: opts.directTimeout }
  }, { wg: control, logger, observer: metrics?.observer })
  await client.start(firstRead)
  let http
  try {
    http = opts.http === undefined || metrics === undefined ? undefined : await (await import('../shared/metrics/http-listener.js')).startHttpListener(opts.http, metrics.registry, logger)
  } catch (err) {
    await client.stop()
    throw err
  }
  const started = client
  const reporter = new PathReporter({}, { status: () => started.status(), version: () => started.pathsVersion, notified: true, send: async (r, signal) => { await started.registryClient.report(r, signal) }, logger, observer: metrics?.observer })
  // The first report waits until the first attempts are answered (or 2 s): a report would only compete with them
  // for the CPU and the hub's tunnel, and the registry has nothing to show before them.
  let reporting = false
  let stopping = false
  started.onPathsChanged = () => { if (reporting) reporter.changed() }
  void started.settled.then(() => { if (!stopping) { reporting = true; reporter.start() } })
  return { client, async stop () { stopping = true; await reporter.stop(); await http?.close(); await started.stop() } }
}

export async function run (argv: string[], io?: RunIo): Promise<number> {
  if (argv[2] === 'help') argv = [...argv.slice(0, 2), '--help']
  const early = preflight(argv, 'wgnat-client', ['status', 'install-service'], io)
  if (early !== undefined) return early
  if (argv[2] === 'status') {
    return await runCommand(statusProgram(), [argv[0] ?? 'node', argv[1] ?? 'wgnat-client', ...argv.slice(3)], async (opts, out) => {
      const iface = opts.interface as string
      const [{ renderStatus }, { fetchStatus }] = await Promise.all([import('./observe/status.js'), import('./observe/status-socket.js')])
      const status = await fetchStatus((opts.statusSocket as string | undefined) ?? defaultStatusSocket(iface))
      out(opts.json === true ? JSON.stringify(status, null, 2) + '\n' : renderStatus(status, Math.floor(Date.now() / 1000)))
    }, io)
  }
  if (argv[2] === 'install-service') {
    const { installServiceCommand } = await import('../shared/service/install-service.js')
    return await installServiceCommand('client', [argv[0] ?? 'node', 'wgnat-client install-service', ...argv.slice(3)], io)
  }
  return await runDaemon(clientProgram(), argv, async (opts, logger) => await startClient(opts as unknown as ClientOptions, logger), io)
}
