import { networkInterfaces } from 'node:os'

export interface InterfaceAddress {
  address: string
  family: 'IPv4' | 'IPv6'
  /** Prefix length. */
  bits: number
}

/** The addresses of one network interface of this host (namespace), link-local IPv6 left out. */
export function interfaceAddresses (iface: string): InterfaceAddress[] {
  const entries = networkInterfaces()[iface] ?? []
  return entries
    .filter((e) => !(e.family === 'IPv6' && e.address.toLowerCase().startsWith('fe80:')))
    .map((e) => ({ address: e.address, family: e.family, bits: Number(e.cidr?.split('/')[1] ?? (e.family === 'IPv4' ? 32 : 128)) }))
}
