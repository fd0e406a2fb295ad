import { EXIT_DATAERR, WgnatError } from '../../shared/errors.js'
import { parsePrefix, type Prefix } from '../../shared/ip.js'
import { interfaceSection, makeSection, peersOf, valuesOf, type WgQuickConfig } from '../../shared/wg-quick-config.js'

/** Keepalive the spoke sends to the hub: keeps its NAT mapping open, so the hub (and the mesh) can reach it. */
export const SPOKE_KEEPALIVE_S = 25
export const DEFAULT_LISTEN_PORT = 51820
export const DEFAULT_HUB_ADDRESS = '10.8.0.1/24'

/**
 * The hub's forwarding, as wg-quick hooks (`%i` is the interface): IP forwarding on and one FORWARD accept from the
 * interface to itself, so spokes without a direct path reach each other through the hub. Only traffic that arrives
 * through the tunnel (from a peer's key) is forwarded, and only back into the tunnel. Forwarding stays on at
 * `wg-quick down` (other things on the host may rely on it); the rule goes.
 */
export const FORWARD_UP = 'sysctl -q -w net.ipv4.ip_forward=1; iptables -w -I FORWARD -i %i -o %i -j ACCEPT'
export const FORWARD_DOWN = 'iptables -w -D FORWARD -i %i -o %i -j ACCEPT'

/**
 * A `--full-tunnel` spoke's internet traffic: accepted from the tunnel to anywhere, replies accepted back, and
 * masqueraded behind the hub's own address. Scoped to the spoke's tunnel address (its key, by cryptokey routing).
 */
export function fullTunnelHooks (address: string): { up: string, down: string } {
  const nat = `POSTROUTING -s ${address}/32 ! -o %i -j MASQUERADE`
  const out = `FORWARD -i %i -s ${address}/32 -j ACCEPT`
  const back = `FORWARD -o %i -d ${address}/32 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`
  return {
    up: `iptables -w -t nat -A ${nat}; iptables -w -I ${out}; iptables -w -I ${back}`,
    down: `iptables -w -t nat -D ${nat}; iptables -w -D ${out}; iptables -w -D ${back}`
  }
}

export interface HubConfigInit {
  privateKey: string
  /** The hub's address with the subnet length, e.g. `10.8.0.1/24`. */
  address: string
  listenPort: number
  forward: boolean
}

/** The hub's wg-quick config as `init` writes it. */
export function hubConfig (init: HubConfigInit): WgQuickConfig {
  return {
    head: [
      { kind: 'comment', text: ' WireGuard hub made by `wgnat-server init`. Works with plain wg-quick.' },
      { kind: 'comment', text: ' Add and remove spokes with `wgnat-server add-peer` / `remove-peer` (they edit this file and the live interface).' }
    ],
    sections: [makeSection('Interface', [
      ['Address', init.address],
      ['ListenPort', init.listenPort],
      ['PrivateKey', init.privateKey],
      ...(init.forward ? [['PostUp', FORWARD_UP], ['PostDown', FORWARD_DOWN]] as Array<[string, string]> : [])
    ])]
  }
}

export interface SpokeConfigInit {
  name: string
  /** The spoke's private key; undefined when the device brought its own key (a placeholder is printed). */
  privateKey: string | undefined
  address: string
  subnet: Prefix
  hubPublicKey: string
  endpoint: string
  fullTunnel: boolean
}

/** The placeholder for a spoke that keeps its own private key. */
export const OWN_KEY_PLACEHOLDER = '<the private key of this device>'

/** The spoke's complete wg-quick config, printed once by `add-peer`. */
export function spokeConfig (init: SpokeConfigInit): WgQuickConfig {
  const allowed = init.fullTunnel
    ? (init.subnet.address.kind() === 'ipv4' ? '0.0.0.0/0' : '::/0')
    : init.subnet.text
  return {
    head: [{ kind: 'comment', text: ` ${init.name}: spoke of the wgnat hub at ${init.endpoint}` }],
    sections: [
      makeSection('Interface', [
        ['PrivateKey', init.privateKey ?? OWN_KEY_PLACEHOLDER],
        ['Address', `${init.address}/${init.subnet.bits}`]
      ]),
      makeSection('Peer', [
        ['PublicKey', init.hubPublicKey],
        ['Endpoint', init.endpoint],
        ['AllowedIPs', allowed],
        ['PersistentKeepalive', SPOKE_KEEPALIVE_S]
      ])
    ].map((s, i) => i === 0 ? { ...s, lines: [...s.lines, { kind: 'comment' as const }] } : s)
  }
}

/** What the bootstrap commands read of the hub's saved config. */
export interface HubFacts {
  /** The hub's own address in the mesh. */
  address: string
  subnet: Prefix
  listenPort: number
  privateKey: string | undefined
}

/** The hub's address, subnet and port from its config; a config `init` did not make must still have them. */
export function hubFacts (config: WgQuickConfig, source: string): HubFacts {
  const iface = interfaceSection(config)
  const addresses = valuesOf(iface, 'Address')
  const v4 = addresses.find((a) => !a.includes(':')) ?? addresses[0]
  if (v4 === undefined || !v4.includes('/')) throw new WgnatError(`${source}: [Interface] needs an Address with a prefix length (e.g. 10.8.0.1/24) to allocate from`, EXIT_DATAERR)
  const port = valuesOf(iface, 'ListenPort')[0]
  return {
    address: v4.slice(0, v4.indexOf('/')),
    subnet: parsePrefix(v4),
    listenPort: port === undefined ? 0 : Number(port),
    privateKey: valuesOf(iface, 'PrivateKey')[0]
  }
}

/** What the config's peers route: host addresses (/32, /128) as plain addresses, wider prefixes as `ip/len`. */
export function takenAddresses (config: WgQuickConfig): string[] {
  const out: string[] = []
  for (const p of peersOf(config)) {
    for (const a of p.allowedIps) {
      const prefix = parsePrefix(a)
      out.push(prefix.bits === (prefix.address.kind() === 'ipv4' ? 32 : 128) ? prefix.address.toString() : prefix.text)
    }
  }
  return out
}

/** Does a config's [Interface] run this hook line? */
export function hasHook (config: WgQuickConfig, key: 'PostUp' | 'PostDown', value: string): boolean {
  return valuesOf(interfaceSection(config), key).includes(value)
}

/** The peer's tunnel address: its first host prefix, if it has one. */
export function hostAddressOf (allowedIps: string[]): string | undefined {
  for (const a of allowedIps) {
    const p = parsePrefix(a)
    if (p.bits === (p.address.kind() === 'ipv4' ? 32 : 128)) return p.address.toString()
  }
  return undefined
}
