import type { RouterKind } from './types.js'

/** Pure: the iptables-restore input that makes a router namespace behave like a router of the given kind. */

export interface RouterInterfaces {
  wanIf: string
  lanIf: string
  /** The hub's public address: the one UDP destination a `udpblock` router lets through. */
  hubIp: string
}

export function routerRules (kind: RouterKind, { wanIf, lanIf, hubIp }: RouterInterfaces): string {
  if (kind === 'public') return ''
  const masquerade = kind === 'hard'
    ? `-A POSTROUTING -o ${wanIf} -j MASQUERADE --random-fully`
    : `-A POSTROUTING -o ${wanIf} -j MASQUERADE`
  const filter: string[] = []
  if (kind !== 'clash') {
    // The usual home router: replies come back in, nothing new does.
    filter.push(
      `-A INPUT -i ${wanIf} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT`,
      `-A INPUT -i ${wanIf} -j DROP`,
      `-A FORWARD -i ${wanIf} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT`,
      `-A FORWARD -i ${wanIf} -j DROP`
    )
  }
  if (kind === 'udpblock') {
    filter.push(`-A FORWARD -i ${lanIf} -o ${wanIf} -p udp ! -d ${hubIp}/32 -j DROP`)
  }
  return [
    '*nat',
    masquerade,
    'COMMIT',
    '*filter',
    ...filter,
    'COMMIT',
    ''
  ].join('\n')
}
