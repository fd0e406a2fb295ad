import type { LabState } from './state-file.js'
import type { LabStatus } from './sweep.js'

/** Pure: the human view of a lab, rendered from its state file. */

export function describeLab (state: LabState, cliPath: string): string {
  const s = state.summary
  const id = state.id
  if (s === undefined) return `lab ${id}: incomplete (no summary; creation failed or is in progress)`
  const rows: string[][] = [['host', 'namespace', 'underlay', 'tunnel', 'wg if', 'port']]
  rows.push(['hub', s.hub.ns, s.hub.underlayIp, s.hub.tunnelIp, s.hub.wgIf, String(s.hub.listenPort)])
  for (const c of Object.values(s.clients)) rows.push([c.name, c.ns, c.ipv6 === undefined ? c.underlayIp : `${c.underlayIp} ${c.ipv6}`, c.tunnelIp, c.wgIf, String(c.listenPort)])
  const routerRows: string[][] = [['site', 'kind', 'namespace', 'wan', 'lan']]
  for (const [name, r] of Object.entries(s.routers)) {
    routerRows.push([name, r.kind, r.ns, `${r.wanIf} ${r.wanIp}/24`, `${r.lanIf} ${r.lanSubnet}`])
  }
  const clients = Object.values(s.clients)
  const [first, second] = clients
  const examples = [`wg show ${s.hub.wgIf}`]
  if (first !== undefined) {
    examples.push(
      `ip netns exec ${first.ns} ping -c 3 ${s.hub.tunnelIp}     # ${first.name} -> hub through the tunnel`,
      `ip netns exec ${first.ns} wg show ${first.wgIf}`
    )
    if (second !== undefined) {
      examples.push(`ip netns exec ${first.ns} ping -c 3 ${second.tunnelIp}     # ${first.name} -> ${second.name}: ${s.hubForwarding ? 'relayed by the hub' : 'fails until a direct path exists (hub forwarding off)'}`)
    }
  }
  const firstRouter = Object.values(s.routers)[0]
  if (firstRouter !== undefined) examples.push(`ip netns exec ${firstRouter.ns} iptables -t nat -S`)
  return [
    `lab ${id}: hub forwarding ${s.hubForwarding ? 'on' : 'off'}, clients' hub AllowedIPs ${s.hubAllowedIps === 'host' ? s.hub.tunnelIp + '/32' : '100.64.0.0/24'}`,
    `internet router: ${state.namespaces[0] ?? '?'} (198.18.1.1 towards the hub, 198.18.(10+k).1 towards site k)`,
    '',
    ...table(rows),
    '',
    ...table(routerRows),
    '',
    'try:',
    ...examples.map(e => `  ${e}`),
    '',
    `remove: ${cliPath} down --id ${id}`
  ].join('\n')
}

export function describeListEntry (state: LabState, status: LabStatus): string {
  const sites = state.summary === undefined
    ? 'incomplete'
    : Object.entries(state.summary.routers).map(([name, r]) => `${name}:${r.kind}`).join(',')
  const owner = state.owner === null ? 'no owner' : `owner pid ${state.owner.pid}`
  return `${state.id}\t${status}\t${owner}\t${state.createdAt}\t${state.namespaces.length} namespaces\t${sites}`
}

function table (rows: string[][]): string[] {
  const widths: number[] = []
  for (const row of rows) row.forEach((cell, i) => { widths[i] = Math.max(widths[i] ?? 0, cell.length) })
  return rows.map(row => row.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ').trimEnd())
}
