import { mkdirSync } from 'node:fs'
import { quote } from '../../src/shared/errors.js'
import { inNs, run, spawnBuffered, type SpawnedProcess } from './command.js'
import { registerLab, unregisterLab } from './exit-hooks.js'
import { configScripts, linkScripts, sysctls, wgLines } from './ip-script.js'
import { LabError } from './lab-error.js'
import { applyNetem } from './netem.js'
import { parsePing, pingArgv, pingDurationMs } from './ping.js'
import { LAB_STUN_PORT, startMiniupnpd, startStunServer } from './miniupnpd.js'
import { HUB_GATEWAY_IP, HUB_UNDERLAY_IP, PERSISTENT_KEEPALIVE_S, hubAllowedIpsOf, planLab, randomLabId, type HostPlan, type LabPlan } from './plan.js'
import { processStartTime } from './process-info.js'
import { routerRules } from './router-rules.js'
import { routerRules6 } from './router-rules6.js'
import { labTmpDir, writeState, type LabState, type LabSummary } from './state-file.js'
import { assertIdFree, sweepStaleLabs } from './sweep.js'
import { teardown } from './teardown.js'
import { PING_SLACK_MS } from './timings.js'
import type { ExecOptions, ExecResult, Lab, LabHost, LabSpec, PingOptions, PingResult } from './types.js'
import { generateKeyPair, startWireguardGo, wgSetWithKey, type KeyPair } from './wireguard.js'

export type { ClientSpec, ExecOptions, ExecResult, Lab, LabHost, LabRouter, LabSpec, PingOptions, PingResult, RouterKind, SiteSpec } from './types.js'
export { labSupport, type LabSupport } from './support.js'
export { LabError, LabSpecError, NetemUnsupportedError } from './lab-error.js'
export { downAll, downLab, sweepStaleLabs } from './sweep.js'

/**
 * Build a lab: an `inet` router namespace, a hub, and one NAT router per site with its clients, all
 * joined by veth pairs, with wireguard-go on the hub and every client. On any failure everything
 * created so far is removed before the error is rethrown.
 */
export async function createLab (spec: LabSpec): Promise<Lab> {
  const id = spec.id ?? randomLabId()
  const plan = planLab(spec, id)
  await sweepStaleLabs()
  assertIdFree(id)

  const state: LabState = {
    version: 1,
    id,
    owner: plan.persistent ? null : { pid: process.pid, startTime: processStartTime(process.pid) ?? '' },
    createdAt: new Date().toISOString(),
    namespaces: plan.namespaces,
    wgInterfaces: plan.wgInterfaces,
    pids: [],
    tmpDir: labTmpDir(id)
  }
  // The state file is written before anything exists, so even a crash halfway leaves a complete list.
  writeState(state)
  if (!plan.persistent) registerLab(id, () => state)
  const spawned = new Set<SpawnedProcess>()
  const track = (pid: number | undefined): void => {
    if (pid === undefined) return
    state.pids.push(pid)
    writeState(state)
  }

  let destroying: Promise<void> | undefined
  const destroy = async (): Promise<void> => {
    destroying ??= (async () => {
      unregisterLab(id)
      const problems = await teardown(state)
      // Let execa settle the spawned processes' promises (they never reject).
      await Promise.all([...spawned].map(async p => await p))
      if (problems.length > 0) throw new LabError(`destroy lab ${quote(id)}: ${problems.join('; ')}`)
    })()
    await destroying
  }

  let summary: LabSummary
  try {
    summary = await build(plan, state, track)
  } catch (err) {
    await destroy().catch(() => {})
    throw err
  }
  state.summary = summary
  writeState(state)

  const nsOf = (host: string): string => resolveNs(plan, host)
  const lab: Lab = {
    id,
    hub: summary.hub,
    clients: summary.clients,
    routers: Object.fromEntries(Object.entries(summary.routers).map(([name, r]) => [name, { ns: r.ns, wanIf: r.wanIf, lanIf: r.lanIf, wanIp: r.wanIp }])),
    async exec (host: string, argv: string[], opts?: ExecOptions): Promise<ExecResult> {
      return await run(inNs(nsOf(host), argv), opts)
    },
    spawn (host: string, argv: string[], opts?: { env?: Record<string, string> }): SpawnedProcess {
      if (destroying !== undefined) throw new LabError(`lab ${quote(id)}: spawn after destroy`)
      const proc = spawnBuffered(inNs(nsOf(host), argv), opts?.env)
      spawned.add(proc)
      track(proc.pid)
      return proc
    },
    async ping (from: string, toIp: string, opts?: PingOptions): Promise<PingResult> {
      const result = await run(inNs(nsOf(from), pingArgv(toIp, opts)), { reject: false, timeoutMs: pingDurationMs(opts) + PING_SLACK_MS })
      return parsePing(result.stdout, result.stderr, toIp)
    },
    async netem (host: string, ifname: string, spec: string): Promise<void> {
      await applyNetem(nsOf(host), ifname, spec)
    },
    destroy
  }
  return lab
}

/** host: 'hub' | 'inet' | client name | site name (its router) | 'router:<site>'. Clients win over sites of the same name. */
export function resolveNs (plan: LabPlan, host: string): string {
  if (host === 'hub') return plan.hub.ns
  if (host === 'inet') return plan.inetNs
  const client = plan.clients.find(c => c.name === host)
  if (client !== undefined) return client.ns
  const siteName = host.startsWith('router:') ? host.slice('router:'.length) : host
  const site = plan.sites.find(s => s.name === siteName)
  if (site !== undefined) return site.ns
  throw new LabError(`lab ${quote(plan.id)}: no host ${quote(host)} (hosts: hub, inet, ${[...plan.clients.map(c => c.name), ...plan.sites.map(s => `router:${s.name}`)].join(', ')})`)
}

async function build (plan: LabPlan, state: LabState, track: (pid: number | undefined) => void): Promise<LabSummary> {
  mkdirSync(state.tmpDir, { recursive: true, mode: 0o700 })

  // Namespaces. The first `ip netns add` may set up the /run/netns mount; do it alone to avoid racing on that.
  const [first, ...rest] = plan.namespaces
  if (first !== undefined) await run(['ip', 'netns', 'add', first])
  await settleAll(rest.map(async ns => await run(['ip', 'netns', 'add', ns])))

  // Underlay links, then in parallel: addresses and routes, sysctls, router firewalls, keys, wireguard-go.
  await settleAll([...linkScripts(plan)].map(async ([ns, lines]) => await ipBatch(ns, lines)))
  const wgHosts = plan.bare ? [] : [plan.hub, ...plan.clients]
  const [keys] = await settleAll([
    settleAll(wgHosts.map(async () => await generateKeyPair())),
    ...[...configScripts(plan)].map(async ([ns, lines]) => await ipBatch(ns, lines)),
    ...[...sysctls(plan)].map(async ([ns, assignments]) => await run(inNs(ns, ['sysctl', '-q', '-e', '-w', ...assignments]))),
    ...plan.sites.map(async site => {
      if (site.portMapping) return // nftables rules, loaded with miniupnpd below
      const rules = routerRules(site.kind, { wanIf: site.wanIf, lanIf: site.lanIf, hubIp: HUB_UNDERLAY_IP })
      if (rules !== '') await run(inNs(site.ns, ['iptables-restore', '-w']), { input: rules })
      const rules6 = site.ipv6 === null ? '' : routerRules6(site.kind, { wanIf: site.wanIf, lanIf: site.lanIf })
      if (rules6 !== '') await run(inNs(site.ns, ['nft', '-f', '-']), { input: rules6 })
    }),
    ...wgHosts.map(async host => {
      track((await startWireguardGo(host.ns, host.wgIf, state.tmpDir)).pid)
    })
  ])
  const hostOf = (h: HostPlan, key: KeyPair): LabHost => ({
    name: h.name, ns: h.ns, wgIf: h.wgIf, tunnelIp: h.tunnelIp, underlayIp: h.underlayIp, publicKey: key.publicKey, listenPort: h.listenPort,
    ...(h.underlayIp6 === undefined ? {} : { ipv6: h.underlayIp6 })
  })
  const summaryOf = (hubKey: KeyPair, clientKeys: KeyPair[]): LabSummary => ({
    hub: hostOf(plan.hub, hubKey),
    clients: Object.fromEntries(plan.clients.map((c, i) => [c.name, hostOf(c, clientKeys[i] ?? hubKey)])),
    routers: Object.fromEntries(plan.sites.map(s => [s.name, { ns: s.ns, wanIf: s.wanIf, lanIf: s.lanIf, wanIp: s.wanIp, kind: s.kind, lanSubnet: s.lanSubnet }])),
    hubForwarding: plan.hubForwarding,
    hubAllowedIps: plan.hubAllowedIps
  })
  if (plan.bare) {
    const none = { privateKey: '', publicKey: '' }
    return summaryOf(none, plan.clients.map(() => none))
  }
  const keyOf = (i: number): KeyPair => {
    const key = keys[i]
    if (key === undefined) throw new LabError(`lab ${quote(plan.id)}: missing key ${i}`)
    return key
  }
  // Port-mapping routers: a STUN server on the internet side for miniupnpd's check, then miniupnpd itself.
  const mappers = plan.sites.filter(s => s.portMapping)
  if (mappers.length > 0) {
    track((await startStunServer(plan.inetNs, HUB_GATEWAY_IP, state.tmpDir)).pid)
    await settleAll(mappers.map(async site => { track((await startMiniupnpd(site, { host: HUB_GATEWAY_IP, port: LAB_STUN_PORT }, state.tmpDir)).pid) }))
  }
  const hubKey = keyOf(0)
  const clientKeys = plan.clients.map((_, i) => keyOf(i + 1))

  // WireGuard: hub peers are the clients (no endpoint); each client's one peer is the hub.
  const hubPeers = plan.clients.flatMap((c, i) => ['peer', clientKeys[i]?.publicKey ?? '', 'allowed-ips', `${c.tunnelIp}/32`])
  const hubAllowed = hubAllowedIpsOf(plan)
  await settleAll([
    configureWg(plan.hub, hubKey, state.tmpDir, hubPeers),
    ...plan.clients.map(async (c, i) => await configureWg(c, clientKeys[i] ?? hubKey, state.tmpDir, [
      'peer', hubKey.publicKey,
      'endpoint', `${HUB_UNDERLAY_IP}:${plan.hub.listenPort}`,
      'persistent-keepalive', String(PERSISTENT_KEEPALIVE_S),
      'allowed-ips', hubAllowed
    ]))
  ])

  return summaryOf(hubKey, clientKeys)
}

/**
 * Like Promise.all, but waits for every step to settle before rethrowing the first failure, so that
 * teardown never races a step still creating something (a wireguard-go started after the pid sweep).
 */
async function settleAll<T extends readonly unknown[]> (promises: { [K in keyof T]: Promise<T[K]> }): Promise<T> {
  const results = await Promise.allSettled(promises)
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
  if (failed !== undefined) throw failed.reason
  return results.map(r => (r as PromiseFulfilledResult<unknown>).value) as unknown as T
}

async function configureWg (host: HostPlan, key: KeyPair, keyDir: string, peers: string[]): Promise<void> {
  await wgSetWithKey(host.wgIf, key.privateKey, keyDir, ['listen-port', String(host.listenPort), ...peers])
  await ipBatch(host.ns, wgLines(host))
}

async function ipBatch (ns: string, lines: string[]): Promise<void> {
  if (lines.length === 0) return
  await run(['ip', '-n', ns, '-batch', '-'], { input: lines.join('\n') + '\n' })
}
