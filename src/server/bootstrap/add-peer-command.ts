import { Option } from 'commander'
import { runCommand, type RunIo } from '../../shared/cli.js'
import { EXIT_DATAERR, UsageError, WgnatError, quote } from '../../shared/errors.js'
import { isWgKey, shortKey } from '../../shared/wg-dump.js'
import { wgCli, type WgControl } from '../../shared/wg.js'
import { interfaceSection, peersOf, renderWgQuickConfig, valuesOf } from '../../shared/wg-quick-config.js'
import { PEER_NAME_RE, readPeerNames } from '../inventory/peer-names.js'
import { allocateAddress, checkAddress } from './address-pool.js'
import { parseHubEndpoint } from './endpoint-arg.js'
import { FORWARD_UP, fullTunnelHooks, hubFacts, spokeConfig, takenAddresses } from './hub-config.js'
import { hubProgram, type HubCommandOptions } from './hub-options.js'
import { hubStatePath, readHubState } from './hub-state.js'
import { HubStore, configPath, loadConfig } from './hub-store.js'
import { generateKeyPair, publicKeyOf } from './key-pair.js'
import { qrForTerminal } from './qr-terminal.js'
import { lockState } from './state-lock.js'

interface AddPeerOptions extends HubCommandOptions {
  address?: string
  publicKey?: string
  fullTunnel: boolean
  qr: boolean
  endpoint?: string
}

export function addPeerProgram () {
  return hubProgram('wgnat-server add-peer', 'Add a spoke: allocate its address, add it to the live interface and the saved config, print its wg-quick config.')
    .argument('<name>', 'the spoke\'s name: a lowercase letter, then up to 31 of [a-z0-9-]')
    .addOption(new Option('--address <ip>', 'the spoke\'s tunnel address (default: the next free one in the hub\'s subnet)'))
    .addOption(new Option('--public-key <key>', 'the device made its own key pair: use its public key (the printed config then has a placeholder for the private key)'))
    .addOption(new Option('--full-tunnel', 'route all the spoke\'s traffic through the hub, which masquerades its internet traffic').default(false))
    .addOption(new Option('--qr', 'print the config as a terminal QR code (for phones) instead of text').default(false))
    .addOption(new Option('--endpoint <host[:port]>', 'the hub\'s endpoint for the spoke (default: the one given to init)'))
}

/** `wgnat-server add-peer`. The spoke's private key is printed once and kept nowhere. */
export async function runAddPeer (argv: string[], io?: RunIo, components: { wg?: WgControl } = {}): Promise<number> {
  const wg = components.wg ?? wgCli()
  const program = addPeerProgram()
  return await runCommand(program, argv, async (raw, out) => {
    const opts = raw as unknown as AddPeerOptions
    const name = program.args[0] ?? ''
    const stderr = io?.stderr ?? ((line: string) => process.stderr.write(line + '\n'))
    const iface = opts.interface
    if (!PEER_NAME_RE.test(name)) throw new UsageError(`name ${quote(name)}: use a lowercase letter, then up to 31 of [a-z0-9-], not ending in '-'`)
    if (opts.publicKey !== undefined && !isWgKey(opts.publicKey)) throw new UsageError(`--public-key ${quote(opts.publicKey)}: not a WireGuard public key (44 characters of base64)`)

    const lock = await lockState(opts.stateDir, iface)
    try {
      const store = new HubStore({ iface, configDir: opts.configDir, stateDir: opts.stateDir }, { wg, notice: (l) => stderr(`wgnat-server add-peer: ${l}`) })
      await store.repair()
      const path = configPath(opts.configDir, iface)
      const config = await loadConfig(opts.configDir, iface)
      const facts = hubFacts(config, path)
      if (facts.privateKey === undefined) throw new WgnatError(`${path}: [Interface] has no PrivateKey`, EXIT_DATAERR)
      const state = await readHubState(opts.stateDir, iface)
      const endpointText = opts.endpoint ?? state?.endpoint
      if (endpointText === undefined) throw new UsageError(`no endpoint known for ${quote(iface)} (the hub was not made by init): pass --endpoint <host[:port]>`)
      // An endpoint from the hub's state is named as such: no --endpoint was given to blame.
      const endpoint = parseHubEndpoint(endpointText, facts.listenPort === 0 ? 51820 : facts.listenPort, opts.endpoint === undefined ? `the endpoint in ${hubStatePath(opts.stateDir, iface)}` : '--endpoint')

      const names = await readPeerNames(opts.stateDir, iface)
      const saved = new Set(peersOf(config).map((p) => p.publicKey))
      for (const [key, taken] of names) {
        if (taken === name && saved.has(key)) throw new WgnatError(`name ${quote(name)} is taken by peer ${shortKey(key)}`, EXIT_DATAERR)
      }
      if (opts.publicKey !== undefined && saved.has(opts.publicKey)) throw new WgnatError(`--public-key ${quote(opts.publicKey)} is already a peer of ${iface}`, EXIT_DATAERR)
      if (opts.publicKey !== undefined && opts.publicKey === publicKeyOf(facts.privateKey)) throw new UsageError(`--public-key ${quote(opts.publicKey)} is the hub's own key, not a spoke's`)
      const taken = [facts.address, ...takenAddresses(config)]
      const address = opts.address === undefined ? allocateAddress(facts.subnet, taken) : checkAddress(facts.subnet, opts.address, taken)
      const forwards = valuesOf(interfaceSection(config), 'PostUp').includes(FORWARD_UP)
      if (opts.fullTunnel && !forwards) throw new WgnatError(`--full-tunnel: ${path} does not forward (made with --no-forward, or by hand): the hub cannot carry the spoke's internet traffic`, EXIT_DATAERR)

      const keys = opts.publicKey === undefined ? generateKeyPair() : { privateKey: undefined, publicKey: opts.publicKey }
      const hostLen = facts.subnet.address.kind() === 'ipv4' ? 32 : 128
      await store.apply({
        op: 'add-peer',
        publicKey: keys.publicKey,
        name,
        allowedIps: [`${address}/${hostLen}`],
        hooks: opts.fullTunnel ? fullTunnelHooks(address) : undefined
      })

      const hubKey = publicKeyOf(facts.privateKey)
      const text = renderWgQuickConfig(spokeConfig({ name, privateKey: keys.privateKey, address, subnet: facts.subnet, hubPublicKey: hubKey, endpoint, fullTunnel: opts.fullTunnel }))
      out(opts.qr ? await qrForTerminal(text) : text)
      stderr(`wgnat-server add-peer: added ${name} ${address} (key ${keys.publicKey})${opts.fullTunnel ? ', full tunnel' : ''}`)
      stderr(`On ${name}: save the config as /etc/wireguard/${iface}.conf (mode 0600), then run:`)
      stderr(`  wg-quick up ${iface} && wgnat-client -i ${iface} -r ${hubKey} -t 1m`)
      if (keys.privateKey !== undefined) stderr('The private key above is printed once and not kept on the hub.')
    } finally {
      await lock.release()
    }
  }, io)
}
