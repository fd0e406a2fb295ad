import { access, rm } from 'node:fs/promises'
import { Option } from 'commander'
import { execa } from 'execa'
import { runCommand, intArg, type RunIo } from '../../shared/cli.js'
import { EXIT_CANTCREAT, UsageError, WgnatError, quote } from '../../shared/errors.js'
import { wgCli, type WgControl } from '../../shared/wg.js'
import { parseHubAddress } from './address-pool.js'
import { parseHubEndpoint } from './endpoint-arg.js'
import { DEFAULT_HUB_ADDRESS, DEFAULT_LISTEN_PORT, hubConfig } from './hub-config.js'
import { hubProgram, type HubCommandOptions } from './hub-options.js'
import { removeHubState, writeHubState } from './hub-state.js'
import { configPath, saveConfig } from './hub-store.js'
import { generateKeyPair } from './key-pair.js'
import { lockState } from './state-lock.js'
import { wgQuickUp } from './wg-quick.js'

interface InitOptions extends HubCommandOptions {
  endpoint: string
  address: string
  listenPort: number
  forward: boolean
  up: boolean
}

export interface InitComponents {
  wg: WgControl
  /** Bring the interface up from its saved config. @default `wg-quick up` */
  up: (path: string) => Promise<void>
}

export function initProgram () {
  return hubProgram('wgnat-server init', 'Create a WireGuard hub: a fresh key, <config-dir>/<interface>.conf for plain wg-quick, and the interface up.')
    .addOption(new Option('--endpoint <host[:port]>', 'the hub\'s public address as spokes reach it (port: the listen port)').makeOptionMandatory())
    .addOption(new Option('--address <ip/len>', 'the hub\'s tunnel address and the mesh subnet').default(DEFAULT_HUB_ADDRESS))
    .addOption(new Option('--listen-port <port>', 'WireGuard UDP port (open it to the internet)').argParser(intArg(1, 65535)).default(DEFAULT_LISTEN_PORT))
    .addOption(new Option('--no-forward', 'no forwarding in the hub\'s config: spokes without a direct path cannot reach each other, no --full-tunnel peers'))
    .addOption(new Option('--no-up', 'write the config and state only; bring the interface up yourself (wg-quick up)'))
}

/** `wgnat-server init`: refuses to overwrite an existing config or interface (exit 73); undoes itself if wg-quick fails. */
export async function runInit (argv: string[], io?: RunIo, components: Partial<InitComponents> = {}): Promise<number> {
  const wg = components.wg ?? wgCli()
  const up = components.up ?? (async (path: string) => { await wgQuickUp(path) })
  return await runCommand(initProgram(), argv, async (raw, out) => {
    const opts = raw as unknown as InitOptions
    const stderr = io?.stderr ?? ((line: string) => process.stderr.write(line + '\n'))
    const hub = parseHubAddress(opts.address)
    // The forwarding hooks (sysctl, iptables) and the spokes' full-tunnel route are IPv4.
    if (hub.subnet.address.kind() !== 'ipv4') throw new UsageError(`--address ${quote(opts.address)}: the mesh subnet must be IPv4 (IPv6 is not supported by init yet)`)
    const endpoint = parseHubEndpoint(opts.endpoint, opts.listenPort)
    const iface = opts.interface
    const path = configPath(opts.configDir, iface)
    if (opts.forward && opts.up && !await hasTool('iptables')) throw new WgnatError('iptables not found: the hub\'s forwarding rules need it (install iptables, or pass --no-forward)', 69)

    const lock = await lockState(opts.stateDir, iface)
    try {
      // Checked under the lock, so two init at once cannot both find the place free.
      if (await exists(path)) throw new WgnatError(`${quote(path)} already exists: not overwriting it (remove it, or pick another -i)`, EXIT_CANTCREAT)
      if (await interfaceExists(iface, wg)) throw new WgnatError(`interface ${quote(iface)} already exists: not touching it`, EXIT_CANTCREAT)
      const keys = generateKeyPair()
      const config = hubConfig({ privateKey: keys.privateKey, address: opts.address, listenPort: opts.listenPort, forward: opts.forward })
      await saveConfig(opts.configDir, iface, config)
      await writeHubState(opts.stateDir, { version: 1, interface: iface, endpoint, relay: opts.forward })
      if (opts.up) {
        try {
          await up(path)
        } catch (err) {
          await rm(path, { force: true })
          await removeHubState(opts.stateDir, iface)
          throw err
        }
      }
      stderr(`wgnat-server init: hub ${iface} ${hub.address} in ${hub.subnet.text}, key ${keys.publicKey}, endpoint ${endpoint}${opts.up ? ', up' : ''}`)
      out([
        `Hub ${iface} is ${opts.up ? 'up' : 'configured (not up)'}: ${opts.forward ? 'forwarding between spokes, ' : ''}public key ${keys.publicKey}`,
        `Config: ${path} (plain wg-quick: \`wg-quick up ${iface}\`; at boot: \`systemctl enable wg-quick@${iface}\`)`,
        '',
        'Next:',
        `  wgnat-server add-peer -i ${iface} <name>      # a spoke: prints its wg-quick config`,
        `  wgnat-server -i ${iface}                      # the registry (open UDP ${opts.listenPort} on the firewall)`,
        ''
      ].join('\n'))
    } finally {
      await lock.release()
    }
  }, io)
}

async function exists (path: string): Promise<boolean> {
  try { await access(path); return true } catch { return false }
}

/** A network interface of that name here, or a WireGuard interface `wg` can reach (a userspace one's socket). */
async function interfaceExists (iface: string, wg: WgControl): Promise<boolean> {
  const link = await execa('ip', ['link', 'show', 'dev', iface], { reject: false })
  if (link.exitCode === 0) return true
  try { await wg.show(iface); return true } catch { return false }
}

async function hasTool (name: string): Promise<boolean> {
  const r = await execa(name, ['--version'], { reject: false })
  return r.exitCode === 0
}
